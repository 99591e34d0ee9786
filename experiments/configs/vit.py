"""A Vision Transformer for 28x28 images (Dosovitskiy et al. 2021: 4x4 patches, a class
token, 4 pre-LayerNorm encoder blocks of width 64 with 4 heads) on Fashion-MNIST, AdamW
1e-3 with weight decay 0.05 and warmup-cosine, batch 128; any rule with
`--config.rule=NAME` (bp by default), each beside its backprop twin.

Command:
  python -m experiments.train --config=experiments/configs/vit.py --workdir=runs/vit \
      [--config.rule=dfa]

Expected at a CPU budget cut to 10,000 training images and 3 epochs (`--config.train_limit=
10000 --config.epochs=3 --config.validation_examples=2000 --config.num_seeds=3`) with the
learning rate picked on the held-out split (`--config.optimizer.learning_rate=3e-3`): bp
80.45 ± 0.55 %, every other rule in BENCHMARKS.md `blocks.vit.*`; about 50 s per seed for
bp on 2 CPU cores (a full 60,000-image epoch about 1 min).
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
