"""Learning curves of one or more runs as a PNG.

  python -m experiments.plot --workdirs=/tmp/runs/bp,/tmp/runs/ff --out=curves.png

One panel per metric found in the runs' metrics.jsonl: test accuracy, train
loss, then every other `train_*` key (per-layer metrics such as
`train_goodness_pos_0` included). Runs with several vmapped members
(num_seeds > 1) are drawn as their mean with a band of +- one std.
"""
from __future__ import annotations

import json
import math
import os

from absl import app, flags

_WORKDIRS = flags.DEFINE_list('workdirs', None, 'Comma-separated run folders.')
_OUT = flags.DEFINE_string('out', 'curves.png', 'Output PNG file.')

_SKIP = {'epoch', 'step', 'epoch_seconds'}


def read_metrics(workdir: str) -> list:
    """The complete lines of `<workdir>/metrics.jsonl`."""
    path = os.path.join(workdir, 'metrics.jsonl')
    if not os.path.exists(path):
        raise FileNotFoundError(f'{path} not found; is {workdir} a run folder?')
    out = []
    with open(path) as f:
        for line in f:
            if line.endswith('\n'):
                out.append(json.loads(line))
    return out


def _series(records, key):
    """`(epochs, mean, std)` of `key`; entries that are lists (members) are averaged."""
    xs, means, stds = [], [], []
    for r in records:
        v = r.get(key)
        if v is None:
            continue
        vals = [float(x) for x in _flat(v)]
        if not vals:
            continue
        m = sum(vals) / len(vals)
        xs.append(r['epoch'])
        means.append(m)
        stds.append(math.sqrt(sum((x - m) ** 2 for x in vals) / len(vals)))
    return xs, means, stds


def _flat(v):
    if isinstance(v, (list, tuple)):
        for x in v:
            yield from _flat(x)
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        yield v


def metric_keys(runs: dict) -> list:
    """Panels in order: test_accuracy, train_loss, then the other keys alphabetically."""
    keys = set()
    for records in runs.values():
        for r in records:
            keys.update(k for k, v in r.items() if k not in _SKIP and list(_flat(v)))
    first = [k for k in ('test_accuracy', 'train_loss') if k in keys]
    return first + sorted(keys - set(first))


def plot(workdirs, out: str) -> list:
    """Draws the learning curves of `workdirs` into the PNG `out`.

    Returns:
      The metric keys drawn, one panel each.
    """
    import matplotlib
    matplotlib.use('Agg')  # no display needed
    import matplotlib.pyplot as plt

    runs = {w: read_metrics(w) for w in workdirs}
    keys = metric_keys(runs)
    if not keys:
        raise ValueError('no metrics to plot in ' + ', '.join(workdirs))
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for w, records in runs.items():
            xs, m, s = _series(records, key)
            if not xs:
                continue
            label = os.path.basename(os.path.normpath(w))
            ax.plot(xs, m, marker='o', markersize=3, label=label)
            if any(s):
                ax.fill_between(xs, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)],
                                alpha=0.2)
        ax.set_title(key)
        ax.set_xlabel('epoch')
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis('off')
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return keys


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f'unexpected arguments {argv[1:]}')
    if not _WORKDIRS.value:
        raise app.UsageError('pass --workdirs=DIR[,DIR...]')
    keys = plot(_WORKDIRS.value, _OUT.value)
    print(f'wrote {_OUT.value} ({len(keys)} panels: {", ".join(keys)})')


if __name__ == '__main__':
    app.run(main)
