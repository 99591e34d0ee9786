"""Train one configuration (resumable: re-run the same command to continue).

  python -m experiments.train --config=experiments/configs/default.py --workdir=runs/bp \
      [--config.rule=NAME] [--config.KEY=VALUE ...]

Devices: every visible device by default (`--config.mesh=data=4`, `--config.fsdp=True`,
`--config.parallel=pmap|none`; several hosts: `--config.distributed.enabled=True`).
Exit codes: 0 done (or already done), 2 bad input or a run that cannot go on (stderr's
last line is `error: ...`), 3 stopped by SIGTERM or Ctrl-C after a checkpoint (re-run to
resume), 130 a second Ctrl-C, or one before training started (stopped without saving).
"""
from absl import app, flags
from ml_collections import config_flags

from neurokit.experiment import cli

_CONFIG = config_flags.DEFINE_config_file('config', None, cli.CONFIG_HELP)
_WORKDIR = flags.DEFINE_string('workdir', None, cli.WORKDIR_HELP)
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
    cli.train(argv, _CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
    app.run(main, flags_parser=cli.parse_config_flags)
