"""Equilibrium propagation (Scellier & Bengio 2017, the symmetric nudge of Laborieux et al.
2021): one hidden layer of 500 units, hard-sigmoid states, 40 free and 2 x 15 nudged
relaxation steps (beta 0.5), Adam 3e-3, batch 128, 20 epochs, Fashion-MNIST.

Command:
  python -m experiments.train --config=experiments/configs/ep.py --workdir=runs/ep

Expected: Scellier & Bengio report about 97-98 % on MNIST with such networks (unverified);
a step costs about the 70 relaxation steps (beyond.speed.ep). neurokit's Fashion-MNIST
figure is beyond.fmnist.ep in BENCHMARKS.md.
"""
from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'ep'
    config.model.hidden = (500,)
    config.optimizer.learning_rate = 3e-3
    return config
