"""LLS (Apolinario, Roy & Roy, WACV 2025): every hidden layer learns from a fixed
sinusoidal basis, on F-MNIST with a CNN close to the authors' SmallConv (conv 32, 64, 128
with 2x2 max-pooling, dense 512, LeakyReLU), AdamW lr 5e-3 without weight decay, batch
128, 100 epochs: their script.sh line for FashionMNIST / LLS_SmallConv (its AdamW is
schedule-free, which neurokit does not have; plain AdamW here). SmallConv's third conv is
not max-pooled but average-pooled to 2x2 before the dense layer, and it has BatchNorm;
this CNN max-pools and has none.

Command:
  python -m experiments.train --config=experiments/configs/lls.py --workdir=runs/lls \
      --config.num_seeds=3

Expected: the paper's figure for this setting is not recorded here (its tables have not
been checked against the PDF); the authors report the best test accuracy over epochs, this
config the last epoch's. neurokit's figure: see BENCHMARKS.md.
"""
from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'lls'
    config.model.name = 'cnn'
    config.model.channels = (32, 64, 128)
    config.model.dense_widths = (512,)
    config.model.activation = 'leaky_relu'
    config.epochs = 100
    config.optimizer.name = 'adamw'
    config.optimizer.learning_rate = 5e-3
    return config
