"""Incremental predictive coding (PCX's iPC setting): MLP 784-128-128-128-10, F-MNIST.

T=8 steps, each one activity step (lr 0.8, momentum 0.25) and one AdamW weight
step (lr 2.7e-4, weight decay 0.0116) from the same energy gradient; leaky-ReLU;
batch 128, 25 epochs, as in PCX (Pinchetti et al., "Benchmarking Predictive Coding
Networks -- Made Simple", ICLR 2025; code liukidar/pcx). The weight steps are
`config.optimizer`'s, taken T times per batch: its step count advances by T per
batch, so this config keeps a constant learning rate (a schedule laid out in
batches would end after 1/T of the run).
The activity step is per example (the energy is summed over the batch), as PCX's
tuned steps are (docs/design.md, "Predictive coding (`pc`, `ipc`)"); 0.8 is PCX's iPC value. It
was not tuned here on a validation split.

Command:
  python -m experiments.train --config=experiments/configs/ipc.py --workdir=/tmp/ipc

Expected (BENCHMARKS.md, `pc.mlp128.ipc`): test accuracy 89.73 +- 0.18 over 3 seeds
(`--config.num_seeds=3`), against pc's 88.85 +- 0.12 with the same network size,
epochs and batch; about 27 s per epoch for 3 vmapped seeds on a 2-core CPU.
With `--config.model.hidden=1000,1000 --config.epochs=5`: 88.31 +- 0.41 (pc 87.73).
"""
import ml_collections

from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'ipc'
    config.rule_kwargs = ml_collections.ConfigDict(dict(
        inference_lr=0.8,
        inference_momentum=0.25,
    ))
    config.epochs = 25
    config.model.hidden = (128, 128, 128)
    config.model.activation = 'leaky_relu'
    config.optimizer.name = 'adamw'
    config.optimizer.learning_rate = 2.7e-4
    config.optimizer.weight_decay = 0.0116
    config.optimizer.schedule = 'constant'  # T optimizer steps per batch (see above)
    return config
