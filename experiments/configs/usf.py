"""Uniform sign-concordant feedback (uSF, Liao et al. 2016): LeNet, Adam 1e-3 cosine, batch 128, 15 epochs, Fashion-MNIST.

Command:
  python -m experiments.train --config=experiments/configs/usf.py --workdir=/tmp/runs/usf \
      --config.num_seeds=3

Expected (measured 2026-11-23 on a 2-core CPU, `python -m experiments.benchmarks.fa
--part=accuracy --rules=bp,fa,dfa,usf`): LeNet F-MNIST, 15 epochs, cosine decay, 3 seeds: 89.51 ± 0.34 %
mean test accuracy against the BP twin's 89.91 ± 0.32 % (same init, data order, optimizer). The
acceptance figure (>= 90.4 %, BioTorch's table) is not reached at this budget: SHORT.
With `--config.epochs=30` (measured 2026-11-23 on a 2-core CPU, `python -m
experiments.benchmarks.fa --part=accuracy --rules=usf --epochs=30`): 90.49 ± 0.22 % (PASS).
"""
import ml_collections

from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'usf'
    config.rule_kwargs = ml_collections.ConfigDict(
        {'loss': 'cross_entropy', 'scaled': True, 'alignment_metrics': False})
    config.model.name = 'lenet'
    config.epochs = 15
    config.optimizer.schedule = 'cosine'
    return config
