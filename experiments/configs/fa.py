"""Feedback alignment (Lillicrap et al. 2016): LeNet, Adam 1e-3 cosine, batch 128, 15 epochs, Fashion-MNIST.

Command:
  python -m experiments.train --config=experiments/configs/fa.py --workdir=/tmp/runs/fa \
      --config.num_seeds=3

Expected (measured 2026-11-23 on a 2-core CPU, `python -m experiments.benchmarks.fa
--part=accuracy --rules=bp,fa,dfa,usf`): LeNet F-MNIST, 15 epochs, cosine decay, 3 seeds: 84.88 ± 0.08 %
mean test accuracy against the BP twin's 89.91 ± 0.32 % (same init, data order, optimizer). The
acceptance figure (>= 87.0 %, BioTorch's table) is not reached at this budget: SHORT.
With `--config.epochs=50` (measured 2026-11-29 on an NVIDIA H200, `python -m
experiments.benchmarks.fa --part=accuracy --rules=bp,fa,dfa --epochs=50`, 12 s of training):
87.34 ± 0.84 % (>= 87.0: PASS) against the BP twin's 90.70 ± 0.29 %.
"""
import ml_collections

from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'fa'
    config.rule_kwargs = ml_collections.ConfigDict(
        {'loss': 'cross_entropy', 'feedback_scale': 1.0, 'alignment_metrics': False})
    config.model.name = 'lenet'
    config.epochs = 15
    config.optimizer.schedule = 'cosine'
    return config
