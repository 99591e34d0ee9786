"""Train one configuration (resumable: re-run the same command to continue).

  python -m experiments.train --config=experiments/configs/bp.py --workdir=runs/bp \
      [--config.KEY=VALUE ...]

Devices: by default a run uses every visible device, the batch split over a
`data` mesh axis (`--config.mesh=data=4` picks 4 of them, `data=1` one;
`--config.fsdp=True` also splits large weights; `--config.parallel=pmap` or
`none`). Several hosts: the same command on each, plus
`--config.distributed.enabled=True` (TPU pods and SLURM fill in the rest; else
`--config.distributed.coordinator_address=HOST:PORT --config.distributed.num_processes=N
--config.distributed.process_id=I`). summary.json says how many devices a run used.

Exit codes: 0 done (or already done), 2 bad input or a run that cannot go on, e.g. a
non-finite loss (stderr's last line is `error: ...`), 3 stopped by SIGTERM or Ctrl-C
after a checkpoint (re-run to resume), 130 a second Ctrl-C, or one before training
started: stopped without saving (a SIGTERM then ends the process at once, 143).
"""

import os
import runpy

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from neurokit.experiment.cli import fail, run_main

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file with get_config().',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder (metrics.jsonl, checkpoints, '
                               'summary.json); an unfinished run there is resumed.')
flags.mark_flags_as_required(['config', 'workdir'])


def _last_line(e):
    """The last non-blank line of an exception's message (a config file's own error)."""
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    return lines[-1] if lines else str(e)


def _check_config_file(argv):
    """One `error:` line when --config names a file without a usable `get_config()`;
    else its config (None when absl will report a missing file or flag)."""
    spec = next((a.split('=', 1)[1] for a in argv[1:] if a.startswith('--config=')), None)
    path, colon, arg = (spec or '').partition(':')
    if not os.path.isfile(path):
        return None  # absl reports a missing file or flag itself
    try:
        get_config = runpy.run_path(path).get('get_config')
        if not callable(get_config):
            fail(f'config file {path} defines no get_config(); write one that returns '
                 'neurokit.experiment.config.base_config() with your changes')
        config = get_config(arg) if colon else get_config()
    except Exception as e:  # noqa: BLE001 - any error of the file itself
        fail(f'cannot load the config {path}: {type(e).__name__}: {_last_line(e)}')
    if not isinstance(config, ml_collections.ConfigDict):
        fail(f'get_config() of {path} returned {type(config).__name__}, not a ConfigDict; '
             'return neurokit.experiment.config.base_config() with your changes')
    return config


def _check_repeated(argv, config):
    """A repeated tuple override is appended to, not replaced (ml_collections): refuse it.
    (A repeated scalar override replaces the earlier one, as absl flags do.)"""
    seen = set()
    for a in argv[1:]:
        if not a.startswith('--config.'):
            continue
        flag = a.split('=', 1)[0]
        try:
            value = config
            for part in flag[len('--config.'):].split('.'):
                value = value[part]
        except (KeyError, TypeError, AttributeError):
            continue  # an unknown key: the parser names it
        if isinstance(value, (tuple, list)) and flag in seen:
            fail(f'{flag} is given twice, and ml_collections would join the two tuples; give it '
                 f'once (e.g. {flag}=8,8)')
        seen.add(flag)


def _parse_flags(argv):
    """absl's flag parsing, with every failure (a missing config file, an unknown
    `--config.key`, a value of the wrong type) turned into one `error:` line."""
    config = _check_config_file(argv)
    if config is not None:
        _check_repeated(argv, config)
    try:
        return flags.FLAGS(argv)
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
        overrides = [a.split('=')[0] for a in argv[1:] if a.startswith('--config.')]
        lines = [l.strip() for l in str(e).splitlines() if l.strip()]
        if any(l.startswith('Traceback') for l in lines):  # an error inside the config file
            lines = [lines[0], lines[-1]]
        msg = ' '.join(' '.join(lines).split())
        if isinstance(e, (AttributeError, KeyError)) and overrides:
            fail(_unknown_key_message(e, overrides))
        fail(f'bad flags: {msg}')
    except Exception as e:  # an exception raised by the config file itself
        fail(f'cannot load the config: {type(e).__name__}: {e}')


def _unknown_key_message(e, overrides):
    """One line for an override naming a key the config does not have."""
    raw = str(e.args[0] if isinstance(e, KeyError) and e.args else e)
    raw = raw.replace('\\n', '\n').replace("\\'", "'")  # a KeyError's repr inside the message
    first, *rest = [l.strip() for l in str(raw).splitlines() if l.strip()] or ['?']
    name = first.strip(chr(34) + chr(39))
    flag = next((o for o in overrides if o.split('.')[-1] == name), None)
    key = flag[len('--config.'):] if flag else name
    hint = ' '.join(rest).strip(chr(34) + chr(39))  # ml_collections' "Did you mean ...?", if any
    if key.startswith('rule_kwargs.'):
        fix = ("rule_kwargs holds only the hyperparameters the config file sets; start from the "
               "rule's own config (experiments/configs/<rule>.py) or add the key to your config "
               'file (valid names: neurokit.rules.registry.hyperparameters(rule))')
    else:
        fix = 'see neurokit/config.py base_config() for valid keys'
    return f'unknown config key {key}{" (" + hint + ")" if hint else ""}; {fix}'


def main(argv):
    if not flags.FLAGS['verbosity'].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    if len(argv) > 1:
        fail(f'unexpected arguments {" ".join(argv[1:])}; flags look like --config.KEY=VALUE')
    try:
        config = _CONFIG.value
        config.keys()  # the file is loaded lazily: its errors surface on first use
    except Exception as e:  # a missing file (the file's own errors stop _check_config_file)
        fail(f'cannot load --config: {type(e).__name__}: {_last_line(e)}')
    run_main(config, _WORKDIR.value)


if __name__ == '__main__':
    app.run(main, flags_parser=_parse_flags)
