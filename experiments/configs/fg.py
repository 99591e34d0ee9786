"""Forward gradient with local losses (Ren et al., ICLR 2023), FG-A with one tangent per
step (their num_passes=1): MLP 784-1000-1000-10, Fashion-MNIST, batch 128, 20 epochs,
Adam 3e-4.

Not Ren et al.'s SGD (momentum 0.9, lr 0.05, weight decay 1e-4, warm-up cosine): their
blocks are LayerNormed, so noisy weight steps cannot blow up the activations; this MLP
has no normalisation and that optimizer diverged in the short run below (loss 85.7,
accuracy 0.10; SGD momentum 0.9 at a constant 0.01: loss 23.1, accuracy 0.19).

Command:
  python -m experiments.train --config=experiments/configs/fg.py --workdir=runs/fg

Expected: only a short CPU run has been measured, `--config.epochs=1
--config.train_limit=6000` (47 steps): test accuracy 0.483 (BP's config in the same run:
0.764; Adam 1e-3: 0.420). The full 20-epoch run has not been measured.
"""
from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'fg'
    config.optimizer.learning_rate = 3e-4  # measured above 1e-3 in the short run
    return config
