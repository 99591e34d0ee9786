"""Product feedback alignment (Li & Benna 2024): LeNet, Adam 1e-3 cosine, batch 128, 15 epochs,
Fashion-MNIST.

Command:
  python -m experiments.train --config=experiments/configs/pfa.py --workdir=runs/pfa \
      --config.num_seeds=3

Expected: 84.94 ± 2.75 % test accuracy over 3 seeds (BP at the same settings 89.91 ±
0.32 %), about 7 min on 2 CPU cores (measured for dfa.py at these settings); it starts
slowly (13-23 % after ~80 steps).
"""
from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'pfa'
    config.model.name = 'lenet'
    config.epochs = 15
    config.optimizer.schedule = 'cosine'
    return config
