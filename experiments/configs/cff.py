"""Collaborative forward-forward (Lorberbom et al. 2024): MLP 784-1000-1000, Fashion-MNIST.

As `ff.py`, but each layer's loss uses `G_i + sum_{t != i} stop_gradient(G_t)`
(`--config.rule_kwargs.earlier_only=True`: only the earlier layers).

Command:
  python -m experiments.train --config=experiments/configs/cff.py --workdir=/tmp/cff_run

Expected (measured 2026-11-30 on 2 CPU cores, experiments/benchmarks/results/ff.md):
step time 1.42x BP's (ff 1.40x); digits MLP 256-256, 30 epochs: 0.975 (ff
0.975); MNIST-1D MLP 512-512, 40 epochs: 0.507 (ff 0.499); Fashion-MNIST
2x1000, 5 epochs, 3 seeds: 85.57 ± 0.09 % (ff 85.61 ± 0.12 %, BP 89.14 ± 0.04 %). MLP 4x2000, 60 epochs, 3 seeds
(2026-11-29, NVIDIA H200): 89.55 ± 0.10 % and 89.48 ± 0.16 % in two runs (ff 89.51 and 89.50).
"""
import ml_collections

from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'cff'
    config.rule_kwargs = ml_collections.ConfigDict({
        'earlier_only': False, 'mode': 'auto', 'goodness': 'mean', 'loss': 'symba', 'alpha': 40.0,
        'threshold': 2.0, 'normalize': 'rms', 'negatives': 'random', 'label_scale': 1.0,
        'predict': 'goodness', 'predict_from': 0, 'greedy_steps_per_layer': 0,
        'class_goodness': 'auto', 'blur_steps': 6})
    config.epochs = 20
    config.optimizer.schedule = 'cosine'
    return config
