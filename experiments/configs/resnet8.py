"""ResNet-8 (CIFAR-style, He et al. 2016: a 3x3 stem and three stages of one basic block,
16-32-64 channels, GroupNorm) on Fashion-MNIST, Adam 1e-3 cosine, batch 128; any rule
with `--config.rule=NAME` (bp by default), each beside its backprop twin.

Command:
  python -m experiments.train --config=experiments/configs/resnet8.py --workdir=runs/r8 \
      [--config.rule=dfa] [--config.epochs=20]

Expected at a CPU budget cut to 10,000 training images and 3 epochs (`--config.train_limit=
10000 --config.epochs=3 --config.validation_examples=2000 --config.num_seeds=3`) with the
learning rate picked on the held-out split (`--config.optimizer.learning_rate=3e-3`): bp
76.77 ± 1.58 %, usf 74.58 ± 0.32 %, every other rule in BENCHMARKS.md `blocks.resnet8.*`;
about 1 min per rule and seed on 2 CPU cores; a full 60,000-image epoch takes about 100 s
for bp.
"""
from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.model.name = 'resnet'
    config.model.depth = 8
    config.optimizer.schedule = 'cosine'
    return config
