"""Collaborative forward-forward (Lorberbom et al. 2024): as ff.py, but each layer's loss uses
`G_i + sum_{t != i} stop_gradient(G_t)` (`--config.rule_kwargs.earlier_only=True`: only the
earlier layers). MLP 784-1000-1000, Adam 1e-3 cosine, batch 128, 20 epochs, Fashion-MNIST.

Command:
  python -m experiments.train --config=experiments/configs/cff.py --workdir=runs/cff

Expected: with `--config.epochs=5 --config.num_seeds=3`, 85.57 ± 0.09 % test accuracy (ff
85.61 ± 0.12 %, BP 89.14 ± 0.04 %), step time 1.42x BP's on 2 CPU cores. MLP 4x2000, 60
epochs, 3 seeds: 89.55 ± 0.10 % (NVIDIA H200). Digits, MLP 256-256, 30 epochs: 0.975.
"""
from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'cff'
    config.optimizer.schedule = 'cosine'
    return config
