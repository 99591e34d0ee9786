"""The one result record every benchmark writes, and what is derived from it.

A record is one line of `results/records.jsonl`:

  id        the figure's id in `definitions.FIGURES`
  values    the measured values, one per seed (accuracies, in %) or per repeat
  mean, std the mean and the SAMPLE standard deviation (ddof=1; None for one value)
  n         len(values)
  unit      '%', 'x' (a ratio), 'MiB', 'min', 'rel. error', ...
  config    what ran, fully resolved: a training run's whole config (the command is
            derived from it by `command`), or a measurement's parameters
  command   the command that reproduces the figure (derived, never typed)
  machine, date, commit, wall_s
  rows      optional: the figure's own table (one dict per row)
  extra     optional: side numbers (seconds to 89 %, step times, ...)
  curve     optional, training figures: the test accuracy (%) after each epoch, one
            list of per-seed values per epoch (a number where a migrated record's old
            file kept only the mean over seeds); plots.py draws it beside the bp twin's
  migrated  optional: for figures measured on earlier code and converted from the
            old per-family result files: {from, date, machine, command}; `command`
            is then the one that was recorded, not a derived one
"""
from __future__ import annotations

import datetime
import json
import math
import os
import platform
import shlex
import subprocess

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
RECORDS = os.path.join(RESULTS, 'records.jsonl')
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = 'python -m experiments.train'
FIELDS = ('id', 'values', 'mean', 'std', 'n', 'unit', 'config', 'command', 'machine', 'date',
          'commit', 'wall_s')


def stats(values) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1, as papers report; None for n < 2)."""
    values = [float(v) for v in values]
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def machine() -> str:
    """One line naming where this process computes."""
    import jax
    dev = jax.devices()[0]
    if dev.platform == 'cpu':
        return f'{os.cpu_count()}-core CPU ({platform.machine()}), no GPU'
    return f'{dev.device_kind} ({dev.platform})'


def commit() -> str | None:
    """The checked-out commit, with '+dirty' when the working tree differs from it."""
    try:
        head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, text=True,
                              capture_output=True, check=True).stdout.strip()
        # the suite's own outputs (records, plots, BENCHMARKS.md) do not make the code dirty
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no', '--', '.',
                                ':!experiments/benchmarks/results', ':!BENCHMARKS.md'], cwd=REPO,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ('+dirty' if dirty else '')


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')


def make(fig_id: str, values, unit: str, config: dict, *, wall_s: float | None = None,
         command: str | None = None, **optional) -> dict:
    """A record of a figure measured now, on this machine and commit.

    Args:
      fig_id: the figure's id in `definitions.FIGURES`.
      values: one number per seed or repeat.
      unit: the values' unit.
      config: the resolved config (a training run's `summary['config']`) or the
        measurement's parameters.
      wall_s: seconds the measurement took.
      command: the reproducing command; by default derived from `config` (training runs).
      **optional: rows, extra, curve.

    Returns:
      The record dict (see the module docstring).
    """
    mean, std = stats(values)
    rec = {'id': fig_id, 'values': [float(v) for v in values], 'mean': mean, 'std': std,
           'n': len(values), 'unit': unit, 'config': config,
           'command': command or train_command(config), 'machine': machine(), 'date': now(),
           'commit': commit(), 'wall_s': wall_s}
    rec.update({k: v for k, v in optional.items() if v is not None})
    return rec


def load(path: str | None = None) -> dict:
    """The newest record of every id (a later line replaces an earlier one), from `path`
    (default: results/records.jsonl)."""
    path = path or RECORDS
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    rec = json.loads(line)
                    out[rec['id']] = rec
    return out


def save(new: list[dict], path: str | None = None) -> None:
    """Replaces the records of the same ids and rewrites the file sorted by id, so that
    a re-measured figure leaves one line and the file diffs cleanly."""
    path = path or RECORDS
    recs = load(path)
    recs.update({r['id']: r for r in new})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        for key in sorted(recs):
            f.write(json.dumps(recs[key]) + '\n')  # key order kept: it is a table's column order


# ------------------------------------------------------------------ config <-> command


def _flatten(d: dict, prefix: str = '') -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f'{prefix}{k}.'))
        else:
            out[f'{prefix}{k}'] = v
    return out


def _flag_value(v) -> str:
    if isinstance(v, (list, tuple)):
        return ','.join(_flag_value(x) for x in v)
    return repr(v) if isinstance(v, float) else str(v)


def normal(config) -> dict:
    """A config as plain JSON values (tuples become lists), for comparing and storing."""
    if hasattr(config, 'to_dict'):
        config = config.to_dict()
    return json.loads(json.dumps(config))


def file_config(rule: str) -> dict:
    """The resolved config of experiments/configs/<rule>.py: the file's values, and the
    rule constructor's defaults for the hyperparameters it does not set."""
    from neurokit.experiment import cli
    path = os.path.join(REPO, 'experiments', 'configs', f'{rule}.py')
    return normal(cli.for_rule(cli.load_config(path), rule))


def train_command(config: dict) -> str:
    """`python -m experiments.train` with the rule's config file and one override for
    every key where `config` differs from that file: the command that reruns it."""
    config = normal(config)
    base = _flatten(file_config(config['rule']))
    flags = [f'--config.{k}={_flag_value(v)}' for k, v in sorted(_flatten(config).items())
             if base.get(k, object()) != v]
    return ' '.join([TRAIN, f'--config=experiments/configs/{config["rule"]}.py', '--workdir=DIR']
                    + [shlex.quote(f) for f in flags])


def parse_command(command: str) -> dict:
    """The config that `experiments.train` would build from `command` (its own parser:
    the config file, the rule's defaults, the `--config.KEY=VALUE` overrides)."""
    from neurokit.experiment import cli
    argv = shlex.split(command)
    if argv[:3] != TRAIN.split():
        raise ValueError(f'not an experiments.train command: {command[:60]}')
    return normal(cli.config_from_flags(['train'] + argv[3:]))
