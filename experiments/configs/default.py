"""Any registered rule with its constructor's defaults: MLP 784-1000-1000-10, Adam 1e-3,
batch 128, 20 epochs, Fashion-MNIST (`base_config()` as it is; the rule is bp unless
`--config.rule` names another).

Command:
  python -m experiments.train --config=experiments/configs/default.py --workdir=runs/bp \
      [--config.rule=NAME] [--config.rule_kwargs.HPARAM=VALUE]

Expected: bp about 0.89-0.90 test accuracy, about 4 s per epoch on 2 CPU cores; on digits
(`--config.dataset=digits`) about 0.98 in seconds. A rule with its own tuned settings
has its own file here (experiments/configs/<rule>.py).
"""
from neurokit.experiment.config import base_config


def get_config():
    return base_config()
