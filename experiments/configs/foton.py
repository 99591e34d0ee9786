"""FOTON (Caillon et al. 2025): the authors' config.yaml on Fashion-MNIST: MLP 784-256-256-10,
ReLU, plain SGD lr 0.5, batch 256, 100 epochs, the feedback refreshed and the weights
orthonormalised (20 Björck iterations) every step. Not built: dropout 0.1, input
standardisation, and the test-epoch model selection of the authors' code.

Command:
  python -m experiments.train --config=experiments/configs/foton.py --workdir=runs/foton

Expected: no published figure was recorded (the paper's tables were not read); the
Björck projection dominates a CPU step (about 25x a bp step on 5x256, beyond.speed.foton).
neurokit's figures are in BENCHMARKS.md (beyond.*.foton).
"""
from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'foton'
    config.model.hidden = (256, 256)
    config.batch_size = 256
    config.epochs = 100
    config.optimizer.name = 'sgd'
    config.optimizer.learning_rate = 0.5
    config.optimizer.momentum = 0.0
    return config
