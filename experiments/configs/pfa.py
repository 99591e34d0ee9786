"""Product feedback alignment (Li & Benna 2024): LeNet, Adam 1e-3 cosine, batch 128, 15 epochs, Fashion-MNIST.

Command:
  python -m experiments.train --config=experiments/configs/pfa.py --workdir=/tmp/runs/pfa \
      --config.num_seeds=3

Expected (measured 2026-11-23 on a 2-core CPU, `python -m experiments.benchmarks.fa
--part=accuracy --rules=pfa --epochs=15 --seeds=3`): LeNet F-MNIST, 15 epochs, cosine decay,
3 seeds: 84.94 ± 2.75 % against the BP twin's 89.91 ± 0.32 %. It starts slowly (13-23 % after
~80 steps): Adam rescales each element of the update, which slows the tracking of W by r @ b
that PFA relies on. The authors use SGD lr 0.01, momentum 0.9, weight decay (pulls r @ b
towards W); with that recipe a 10k-image trial reached 49-59 % after 2 epochs, like FA's.
"""
import ml_collections

from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'pfa'
    config.rule_kwargs = ml_collections.ConfigDict(
        {'loss': 'cross_entropy', 'ratio': 10, 'alignment_metrics': False})
    config.model.name = 'lenet'
    config.epochs = 15
    config.optimizer.schedule = 'cosine'
    return config
