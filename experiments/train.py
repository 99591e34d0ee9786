"""Train one configuration.

  python -m experiments.train --config=experiments/configs/bp.py --workdir=runs/bp \
      [--config.KEY=VALUE ...]
"""
import sys

from absl import app, flags
from ml_collections import config_flags

from neurokit.cli import run_main

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file with get_config().',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder (metrics.jsonl, summary.json).')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
    if len(argv) > 1:
        sys.exit(f'error: unexpected arguments {argv[1:]}')
    run_main(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
    app.run(main)
