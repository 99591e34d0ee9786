"""ResNet-8 (CIFAR-style, He et al. 2016: a 3x3 stem and three stages of one basic block,
16-32-64 channels, GroupNorm) on Fashion-MNIST, Adam 1e-3 cosine, batch 128; any rule
with `--config.rule=NAME` (bp by default), each beside its backprop twin.

Command:
  python -m experiments.train --config=experiments/configs/resnet8.py --workdir=runs/r8 \
      [--config.rule=dfa] [--config.epochs=20]

Expected at a CPU budget cut to 10,000 training images and 3 epochs (`--config.train_limit=
10000 --config.epochs=3 --config.validation_examples=2000 --config.num_seeds=3`): bp
73.80 ± 1.18 %, usf 71.89 ± 1.04 % (BENCHMARKS.md `blocks.resnet8.*`), about 2 min per
rule and seed on 2 CPU cores; a full 60,000-image epoch takes about 100 s for bp.
"""
from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.model.name = 'resnet'
    config.model.depth = 8
    config.optimizer.schedule = 'cosine'
    return config
