"""Feedback alignment (Lillicrap et al. 2016): LeNet, Adam 1e-3, batch 128, 15 epochs, Fashion-MNIST.

Command:
  python -m experiments.train --config=experiments/configs/fa.py --workdir=/tmp/runs/fa \
      --config.num_seeds=3

Expected (measured 2026-11-23): LeNet F-MNIST, 3 seeds, --config.epochs=3
--config.train_limit=10000 (the most the shared 2-core CPU allowed): 61.3% mean test accuracy (BP
twin 79.7%). Full 15 epochs not measured yet (acceptance: >= 87.0%).
"""
import ml_collections

from neurokit.config import base_config


def get_config():
    config = base_config()
    config.rule = 'fa'
    config.rule_kwargs = ml_collections.ConfigDict(
        {'loss': 'cross_entropy', 'feedback_scale': 1.0, 'alignment_metrics': False})
    config.model.name = 'lenet'
    config.epochs = 15
    return config
