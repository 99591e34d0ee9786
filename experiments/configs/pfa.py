"""Product feedback alignment (Li & Benna 2024): LeNet, Adam 1e-3 cosine, batch 128, 15 epochs, Fashion-MNIST.

Command:
  python -m experiments.train --config=experiments/configs/pfa.py --workdir=/tmp/runs/pfa \
      --config.num_seeds=3

Expected (measured 2026-11-23): LeNet on F-MNIST not measured yet; the 2x1000 MLP (5 epochs, constant lr) is in experiments/benchmarks/results/fa.md; trains on digits
(see tests). The authors use SGD lr 0.01, momentum 0.9, weight decay (pulls r @ b towards W).
"""
import ml_collections

from neurokit.config import base_config


def get_config():
    config = base_config()
    config.rule = 'pfa'
    config.rule_kwargs = ml_collections.ConfigDict(
        {'loss': 'cross_entropy', 'ratio': 10, 'alignment_metrics': False})
    config.model.name = 'lenet'
    config.epochs = 15
    config.optimizer.schedule = 'cosine'
    return config
