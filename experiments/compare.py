"""Train backprop and every registered rule on one embedded data set; print a table.

  python -m experiments.compare                       # digits, all rules, 10 epochs
  python -m experiments.compare --dataset=mnist1d --epochs=30 --rules=bp,mf

Each rule runs with its own config file (experiments/configs/<rule>.py), or, for a rule
without one, experiments/configs/default.py with the constructor's defaults, on the same
MLP, data and epoch budget; results go to --workdir/<rule>/.

Exit codes: 0 done, 2 bad input (every flag and rule config is checked before
anything is trained or written; stderr's last line is `error: ...`), 3 stopped by
SIGTERM or Ctrl-C after a checkpoint, 130 a second Ctrl-C: re-run with the same
--workdir to resume (finished rules are not trained again).
"""
import os
import sys
import tempfile

from absl import app, flags, logging

from neurokit.experiment import cli
from neurokit.experiment.cli import EXIT_PREEMPTED, USER_ERRORS, fail, flags_parser, interrupted

CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configs')
DATASETS = ('digits', 'mnist1d')  # embedded: no --config.data_dir needed

_DATASET = flags.DEFINE_string('dataset', 'digits',
                               f'Embedded data set: one of {", ".join(DATASETS)}.')
_EPOCHS = flags.DEFINE_integer('epochs', 10, 'Epochs per rule (>= 1).')
_HIDDEN = flags.DEFINE_list('hidden', ['256', '256'], 'Hidden widths of the shared MLP.')
_RULES = flags.DEFINE_list('rules', [], 'Rules to compare (default: every registered rule).')
_SEEDS = flags.DEFINE_integer('num_seeds', 1, 'Seeds per rule (one vmapped program each; >= 1).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder (default: a new temp folder).')


def rule_config(name):
    """The config of rule `name`: experiments/configs/<name>.py, else default.py set to
    `name`, with every hyperparameter of the rule in `rule_kwargs`.

    Raises:
      ConfigError: the file cannot be loaded.
    """
    own = os.path.join(CONFIGS, f'{name}.py')
    path = own if os.path.isfile(own) else os.path.join(CONFIGS, 'default.py')
    return cli.for_rule(cli.load_config(path), name)


def _hidden():
    """--hidden as a tuple of positive ints, or `fail`."""
    try:
        hidden = tuple(int(h) for h in _HIDDEN.value)
    except ValueError:
        hidden = ()
    if not hidden or any(h < 1 for h in hidden):
        fail(f'--hidden={",".join(_HIDDEN.value)} must be comma-separated positive integers '
             '(the MLP\'s hidden widths), e.g. --hidden=256,256')
    return hidden


def _configs():
    """Checks every flag; returns `[(rule, config)]`, each config validated, or `fail`s."""
    from neurokit.experiment import config as config_lib
    from neurokit.rules import RULES
    if _DATASET.value not in DATASETS:
        fail(f'unknown --dataset {_DATASET.value!r}; valid names: {", ".join(DATASETS)} (for '
             'other data sets use experiments.train with --config.data_dir)')
    if _EPOCHS.value < 1:
        fail(f'--epochs must be >= 1, got {_EPOCHS.value}')
    if _SEEDS.value < 1:
        fail(f'--num_seeds must be >= 1, got {_SEEDS.value}')
    hidden = _hidden()
    base = config_lib.base_config().rule  # the baseline first
    names = [n for n in _RULES.value if n] or [base] + sorted(n for n in RULES if n != base)
    unknown = [n for n in names if n not in RULES]
    if unknown:
        fail(f'unknown rule {unknown[0]!r} in --rules; valid names: {", ".join(sorted(RULES))}')
    twice = [n for i, n in enumerate(names) if n in names[:i]]
    if twice:
        fail(f'--rules names {twice[0]!r} twice; list each rule once')
    out = []
    for name in names:
        try:
            config = rule_config(name)
        except USER_ERRORS as e:
            fail(f'{name}: {e}')
        config.dataset = _DATASET.value
        config.epochs = _EPOCHS.value
        config.num_seeds = _SEEDS.value
        config.batch_size = 64
        config.model.name = 'mlp'
        config.model.hidden = hidden
        try:
            config_lib.validate(config)
        except USER_ERRORS as e:
            fail(f'{name}: {e}')
        out.append((name, config))
    return out


def main(argv):
    if not flags.FLAGS['verbosity'].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    if len(argv) > 1:
        fail(f'unexpected arguments {" ".join(argv[1:])}; flags look like --rules=bp,ff')
    configs = _configs()  # before anything is written
    from neurokit import experiment
    from neurokit.experiment import fs, workdir as wd
    root = _WORKDIR.value or tempfile.mkdtemp(prefix='neurokit-compare-')
    for name, config in configs:  # every rule's workdir, before any rule trains
        try:
            wd.check(fs.path(root) / name, config)
        except USER_ERRORS as e:
            fail(f'{name}: {e}')
    from neurokit.experiment.checkpoint import Preempted
    resume = f'run the same command with --workdir={root} to resume'
    rows, failed = [], []
    for name, config in configs:
        try:
            s = experiment.run(config, fs.path(root) / name)
        except Preempted as e:  # SIGTERM or a first Ctrl-C: saved at the epoch's end
            print(f'preempted: {name}: {" ".join(str(e).split())}; {resume}', file=sys.stderr)
            sys.exit(EXIT_PREEMPTED)
        except KeyboardInterrupt:  # a second Ctrl-C, or one before training started
            interrupted(f'stopped during {name} without saving; the finished rules\' results '
                        f'and saved checkpoints are in {root}: {resume}')
        except USER_ERRORS as e:  # e.g. a non-finite loss: the other rules still run
            failed.append(name)
            print(f'{name}: failed: {" ".join(str(e).split())}', file=sys.stderr)
            rows.append((name, None, None, None, None))
            continue
        rows.append((name, s['test_accuracy_mean'], s['test_accuracy_std'], s['train_seconds'],
                     s['samples_per_second']))
        print(f'{name}: test accuracy {100 * s["test_accuracy_mean"]:.2f}%', file=sys.stderr)
    _table(rows, root)
    if failed:
        fail(f'{len(failed)} of {len(rows)} rules failed ({", ".join(failed)}; their errors are '
             f'above); the others\' results are in the table and in {root}')


def _table(rows, root):
    from neurokit.experiment.config import base_config
    base = base_config().rule
    base_sps = dict((r[0], r[4]) for r in rows).get(base)
    print(f'\n{_DATASET.value}, MLP {"-".join(_HIDDEN.value)}, {_EPOCHS.value} epochs, '
          f'{_SEEDS.value} seed(s); results in {root}')
    vs = f'speed vs {base}'
    print(f'{"rule":<6} {"test acc %":>12} {"train s":>9} {"samples/s":>10} {vs:>12}')
    for name, mean, std, secs, sps in rows:
        if mean is None:
            print(f'{name:<6} {"failed":>12}')
            continue
        rel = f'{sps / base_sps:.2f}x' if base_sps else '-'
        acc = f'{100 * mean:.2f}' + (f'±{100 * std:.2f}' if _SEEDS.value > 1 else '')
        print(f'{name:<6} {acc:>12} {secs:>9.1f} {sps:>10.0f} {rel:>12}')


if __name__ == '__main__':
    app.run(main, flags_parser=flags_parser('experiments.compare'))
