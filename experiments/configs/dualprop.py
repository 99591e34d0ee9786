"""Dual propagation (Høier, Staudt & Zach, ICML 2023): the authors' MNIST MLP setting on
Fashion-MNIST: MLP 784-1000x4-10, Adam lr 3e-5, batch 100, 100 epochs, the sweep form with
each example nudged by beta = 0.1 times its own loss gradient.

Command:
  python -m experiments.train --config=experiments/configs/dualprop.py --workdir=runs/dp

Expected: the paper's accuracy tables were not read (the card has none); neurokit's
Fashion-MNIST figure beside bp at one budget is beyond.fmnist.dualprop in BENCHMARKS.md.
"""
from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'dualprop'
    config.model.hidden = (1000, 1000, 1000, 1000)
    config.batch_size = 100
    config.epochs = 100
    config.optimizer.learning_rate = 3e-5
    return config
