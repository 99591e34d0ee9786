"""Fixed-random-magnitude sign-concordant feedback (frSF): LeNet, Adam 1e-3 cosine, batch 128, 15 epochs, Fashion-MNIST.

Command:
  python -m experiments.train --config=experiments/configs/frsf.py --workdir=/tmp/runs/frsf \
      --config.num_seeds=3

Expected (measured 2026-11-23 on a 2-core CPU, `python -m experiments.benchmarks.fa
--part=accuracy --rules=frsf`): LeNet F-MNIST, 15 epochs, cosine decay, 3 seeds: 89.21 ± 0.28 % mean test
accuracy (BP twin 89.91 ± 0.32 %, same init, data order and optimizer). The 2x1000 MLP figure
(5 epochs, constant lr) is in experiments/benchmarks/results/fa.md.
"""
import ml_collections

from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'frsf'
    config.rule_kwargs = ml_collections.ConfigDict(
        {'loss': 'cross_entropy', 'feedback_scale': 1.0, 'alignment_metrics': False})
    config.model.name = 'lenet'
    config.epochs = 15
    config.optimizer.schedule = 'cosine'
    return config
