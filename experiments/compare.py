"""Train backprop and every registered rule on one embedded data set; print a table.

  python -m experiments.compare                       # digits, all rules, 10 epochs
  python -m experiments.compare --dataset=mnist1d --epochs=30 --rules=bp,mf

Each rule runs with its own config file (experiments/configs/<rule>.py) on the
same MLP, data and epoch budget; results go to --workdir/<rule>/.
"""
import os
import sys
import tempfile

from absl import app, flags

from neurokit.cli import USER_ERRORS, EXIT_USER_ERROR

_DATASET = flags.DEFINE_enum('dataset', 'digits', ['digits', 'mnist1d'], 'Embedded data set.')
_EPOCHS = flags.DEFINE_integer('epochs', 10, 'Epochs per rule.')
_HIDDEN = flags.DEFINE_list('hidden', ['256', '256'], 'Hidden widths of the shared MLP.')
_RULES = flags.DEFINE_list('rules', [], 'Rules to compare (default: every registered rule).')
_SEEDS = flags.DEFINE_integer('num_seeds', 1, 'Seeds per rule (one vmapped program each).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder (default: a new temp folder).')


def rule_config(name):
    """The config of rule `name` from experiments/configs/<name>.py."""
    import importlib
    return importlib.import_module(f'experiments.configs.{name}').get_config()


def main(argv):
    del argv
    from neurokit import train
    from neurokit.rules import RULES
    names = _RULES.value or ['bp'] + sorted(n for n in RULES if n != 'bp')
    unknown = [n for n in names if n not in RULES]
    if unknown:
        sys.exit(f'error: unknown rule {unknown[0]!r}; valid names: {", ".join(sorted(RULES))}')
    root = _WORKDIR.value or tempfile.mkdtemp(prefix='neurokit-compare-')
    rows = []
    for name in names:
        config = rule_config(name)
        config.dataset = _DATASET.value
        config.epochs = _EPOCHS.value
        config.num_seeds = _SEEDS.value
        config.batch_size = 64
        config.model.name = 'mlp'
        config.model.hidden = tuple(int(h) for h in _HIDDEN.value)
        try:
            s = train.run(config, os.path.join(root, name))
        except USER_ERRORS as e:
            print(f'error: {name}: {" ".join(str(e).split())}', file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        rows.append((name, s['test_accuracy_mean'], s['test_accuracy_std'], s['train_seconds'],
                     s['samples_per_second']))
        print(f'{name}: test accuracy {100 * s["test_accuracy_mean"]:.2f}%', file=sys.stderr)
    bp_sps = dict((r[0], r[4]) for r in rows).get('bp')
    print(f'\n{_DATASET.value}, MLP {"-".join(_HIDDEN.value)}, {_EPOCHS.value} epochs, '
          f'{_SEEDS.value} seed(s); results in {root}')
    print(f'{"rule":<6} {"test acc %":>12} {"train s":>9} {"samples/s":>10} {"speed vs bp":>12}')
    for name, mean, std, secs, sps in rows:
        rel = f'{sps / bp_sps:.2f}x' if bp_sps else '-'
        acc = f'{100 * mean:.2f}' + (f'±{100 * std:.2f}' if _SEEDS.value > 1 else '')
        print(f'{name:<6} {acc:>12} {secs:>9.1f} {sps:>10.0f} {rel:>12}')


if __name__ == '__main__':
    app.run(main)
