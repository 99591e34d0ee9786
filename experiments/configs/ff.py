"""Forward-forward (Hinton 2022), supervised: MLP 784-1000-1000, Adam 1e-3 cosine, batch 128,
20 epochs, Fashion-MNIST, with the defaults of `neurokit.rules.ff` (SymBa loss on mean
goodness, the label in the first 10 pixels, random wrong labels as negatives, prediction
by goodness over both hidden layers).

Command:
  python -m experiments.train --config=experiments/configs/ff.py --workdir=runs/ff

Expected: with `--config.epochs=5 --config.num_seeds=3`, 85.61 ± 0.12 % test accuracy (BP
89.14 ± 0.04 %), step time 1.40x BP's on 2 CPU cores. The published setting
(`--config.model.hidden=2000,2000,2000,2000 --config.epochs=60 --config.num_seeds=3`):
89.51 ± 0.15 % (published FF 89.63 %), 0.29 s per epoch on an NVIDIA H200. Digits, MLP
256-256, batch 64, 30 epochs: 0.975.
Variants: `--config.rule_kwargs.mode=unsupervised`, `--config.rule_kwargs.predict=head`,
`--config.model.name=cnn`; greedy layer-by-layer training
(`--config.rule_kwargs.greedy_steps_per_layer=N`) needs `--config.layerwise_updates=True`.
"""
from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'ff'
    config.optimizer.schedule = 'cosine'
    return config
