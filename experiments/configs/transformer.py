"""A small transformer encoder over MNIST-1D's 40-step signals (a per-step Dense embedding
to width 64, learned positions, 2 pre-LayerNorm encoder blocks with 4 heads, mean pool),
AdamW 1e-3 with weight decay 0.05 and warmup-cosine, batch 128, 60 epochs; any rule with
`--config.rule=NAME` (bp by default).

Command:
  python -m experiments.train --config=experiments/configs/transformer.py \
      --workdir=runs/transformer [--config.rule=dfa]

Expected: see BENCHMARKS.md `blocks.transformer.*` at the budget measured there.
"""
from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.dataset = 'mnist1d'
    config.model.name = 'transformer'
    config.epochs = 60
    config.optimizer.name = 'adamw'
    config.optimizer.weight_decay = 0.05
    config.optimizer.schedule = 'warmup_cosine'
    config.optimizer.warmup_epochs = 1.0
    return config
