"""Backprop baseline: MLP 784-1000-1000-10, Adam 1e-3, batch 128, 20 epochs, Fashion-MNIST.

Command:
  python -m experiments.train --config=experiments/configs/bp.py --workdir=runs/bp

Expected: test accuracy 89.65 ± 0.26 % (3 seeds), about 4 s per epoch on 2 CPU cores.
Digits (`--config.dataset=digits`): about 0.98; MNIST-1D (`--config.dataset=mnist1d`):
about 0.6.
"""
from neurokit.experiment.config import base_config


def get_config():
    return base_config()  # bp is base_config's rule
