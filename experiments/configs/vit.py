"""A Vision Transformer for 28x28 images (Dosovitskiy et al. 2021: 4x4 patches, a class
token, 4 pre-LayerNorm encoder blocks of width 64 with 4 heads) on Fashion-MNIST, AdamW
1e-3 with weight decay 0.05 and warmup-cosine, batch 128; any rule with
`--config.rule=NAME` (bp by default), each beside its backprop twin.

Command:
  python -m experiments.train --config=experiments/configs/vit.py --workdir=runs/vit \
      [--config.rule=dfa]

Expected: see BENCHMARKS.md `blocks.vit.*` for every rule at the budget measured there.
"""
from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.model.name = 'vit'
    config.optimizer.name = 'adamw'
    config.optimizer.weight_decay = 0.05
    config.optimizer.schedule = 'warmup_cosine'
    config.optimizer.warmup_epochs = 1.0
    return config
