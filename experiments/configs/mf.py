"""Mono-Forward: MLP 784-1000-1000-10, Adam 1e-3 cosine, batch 128, 8 epochs, Fashion-MNIST,
each block's Adam step taken inside the forward pass (`layerwise_updates`: the same numbers
as one update after the pass, with one layer's gradient alive at a time).

Command:
  python -m experiments.train --config=experiments/configs/mf.py --workdir=runs/mf

Expected: with `--config.num_seeds=5 --config.epochs=15`, 90.18 ± 0.11 % test accuracy (BP
90.45 ± 0.13 %), about 30 s per epoch for the 5 vmapped seeds on 2 CPU cores. CNN
(`--config.model.name=cnn --config.rule_kwargs.conv_scores=flatten --config.num_seeds=3`):
91.69 ± 0.07 % (BP 92.11 ± 0.03 %). With `--config.epochs=40
--config.optimizer.learning_rate=5e-4 --config.rule_kwargs.prediction=combine
--config.num_seeds=5`: 90.57 ± 0.16 % (BP 90.68 ± 0.11 %), 12 min on 2 CPU cores.
"""
from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'mf'
    config.epochs = 8
    config.optimizer.schedule = 'cosine'
    config.layerwise_updates = True
    return config
