"""Learning curves of one or more runs as a PNG (or PDF / SVG).

  python -m experiments.plot --workdirs=/tmp/runs/bp,/tmp/runs/ff --out=curves.png

One panel per metric found in the runs' metrics.jsonl: test accuracy, train
loss, then every other `train_*` key (per-layer metrics such as
`train_goodness_pos_0` included). Runs with several vmapped members
(num_seeds > 1) are drawn as their mean with a band of +- one std.

--out must end in .png, .pdf or .svg (the format follows the extension); its
folder is created if missing. The file is written in one step at the end, so
an error leaves no partial file.

Exit codes: 0 written, 2 bad input (a missing or unreadable run folder, a
corrupt metrics.jsonl, a bad --out): stderr's last line is `error: ...` and
nothing is written.
"""
from __future__ import annotations

import json
import math
import os
import tempfile

from absl import app, flags

_WORKDIRS = flags.DEFINE_list('workdirs', None, 'Comma-separated run folders (required).')
_OUT = flags.DEFINE_string('out', 'curves.png', 'Output file: .png, .pdf or .svg.')

_SKIP = {'epoch', 'step', 'epoch_seconds'}
FORMATS = ('.png', '.pdf', '.svg')


class PlotError(ValueError):
    """Bad input to `plot` (a one-line message naming the problem and the fix)."""


def read_metrics(workdir: str) -> list:
    """The complete lines of `<workdir>/metrics.jsonl`.

    A last line without its newline (torn by a kill mid-write) is skipped.

    Raises:
      PlotError: no such folder, no metrics.jsonl, no complete line, or a
        complete line that is not an epoch record (`workdir.read_jsonl`).
    """
    from neurokit.experiment import fs
    folder = fs.path(workdir)
    if not folder.exists():
        raise PlotError(f'run folder {workdir} does not exist; pass the --workdir of a run of '
                        'experiments.train')
    if not folder.is_dir():
        raise PlotError(f'{workdir} is not a folder; pass the --workdir of a run of '
                        'experiments.train')
    path = folder / 'metrics.jsonl'
    if not path.is_file():
        raise PlotError(f'{path} not found; is {workdir} a run folder (the --workdir of '
                        'experiments.train)?')
    from neurokit.experiment.errors import WorkdirError
    from neurokit.experiment import workdir as wd
    try:
        out = wd.read_jsonl(path)  # the run's own reader: a torn last line is skipped
    except WorkdirError as e:
        raise PlotError(str(e)) from None
    if not out:
        raise PlotError(f'{path} has no complete line yet; plot once the run has finished its '
                        'first epoch')
    return out


def check_out(out: str) -> None:
    """Raises PlotError where `out` cannot be the output file (before anything is drawn)."""
    if not out:
        raise PlotError('--out is empty; pass a file such as --out=curves.png')
    if os.path.isdir(out):
        raise PlotError(f'--out={out} is a folder; pass a file in it, such as '
                        f'--out={os.path.join(out, "curves.png")}')
    ext = os.path.splitext(out)[1].lower()
    if ext not in FORMATS:
        base = os.path.splitext(out)[0] if ext else out
        raise PlotError(f'--out={out}: unsupported file type {ext or "(no extension)"}; end it '
                        f'in {", ".join(FORMATS[:-1])} or {FORMATS[-1]} (e.g. --out={base}.png)')
    parent = os.path.dirname(os.path.abspath(out))
    existing = parent
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise PlotError(f'cannot write --out={out}: {existing} is a file, not a folder')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PlotError(f'cannot write --out={out}: {existing} is not writable; pick another '
                        'folder')


def _series(records, key):
    """`(epochs, mean, std)` of `key`; entries that are lists (members) are averaged over
    the members that report a number (NaN: an epoch whose every step nan_policy=skip
    skipped); an epoch where none does is left out (a gap)."""
    xs, means, stds = [], [], []
    for r in records:
        v = r.get(key)
        if v is None:
            continue
        vals = [x for x in (float(x) for x in _flat(v)) if math.isfinite(x)]
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


def curves(runs: dict) -> dict:
    """`{legend label: records}`: one curve per run, and for a sweep one per swept setting.

    A sweep's metrics lines hold one value per member (settings x seeds); averaging them
    all would mix settings, so each setting's members (its seeds) make one curve. The
    members come from the run's config.json (`neurokit.experiment.members.members`). Runs with the same
    folder name are labelled by their full paths.
    """
    from neurokit.experiment import fs
    names = [fs.path(w).name for w in runs]
    out = {}
    for w, records in runs.items():
        label = fs.path(w).name if names.count(fs.path(w).name) == 1 else str(w).rstrip('/')
        groups = _sweep_groups(w)
        if not groups:
            out[label] = records
            continue
        for setting, index in groups.items():
            pick = lambda v: ([v[i] for i in index]
                              if isinstance(v, list) and len(v) > max(index) else v)
            out[f'{label} {setting}'] = [{k: pick(v) for k, v in r.items()} for r in records]
    return out


def _sweep_groups(workdir: str) -> dict:
    """`{'lr=0.001,alpha=20': [member indices]}` for a sweep's run folder, else {}."""
    from neurokit.experiment import fs
    path = fs.path(workdir) / 'config.json'
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(stored, dict) or not stored.get('sweep'):
        return {}
    import ml_collections
    from neurokit.experiment.errors import ConfigError
    from neurokit.experiment.members import members
    from neurokit.experiment.metrics import setting_names
    try:
        values, _ = members(ml_collections.ConfigDict(stored))
    except (ConfigError, KeyError, TypeError, ValueError) as e:
        raise PlotError(f'{path}: cannot read its sweep ({" ".join(str(e).split())}); plot '
                        'another run or put the run\'s config.json back') from None
    groups = {}
    for i, setting in enumerate(setting_names(values)):  # TensorBoard's names, less the seed
        groups.setdefault(setting, []).append(i)
    return groups


def metric_keys(runs: dict) -> list:
    """Panels in order: test_accuracy, train_loss, then the other keys alphabetically."""
    keys = set()
    for records in runs.values():
        for r in records:
            keys.update(k for k, v in r.items() if k not in _SKIP and list(_flat(v)))
    first = [k for k in ('test_accuracy', 'train_loss') if k in keys]
    return first + sorted(keys - set(first))


def _make_dirs(path, created):
    """Creates folder `path` and its missing parents, appending each to `created`."""
    missing = []
    while not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    for d in reversed(missing):
        os.mkdir(d)
        created.append(d)


def plot(workdirs, out: str) -> list:
    """Draws the learning curves of `workdirs` into `out` (.png, .pdf or .svg).

    Every run is read and `out` checked before anything is written; the file
    appears in one step (a temporary file renamed), so an error leaves none.

    Returns:
      The metric keys drawn, one panel each.

    Raises:
      PlotError: bad input (see `read_metrics` and `check_out`), or `out`
        could not be written.
    """
    check_out(out)
    if not workdirs:
        raise PlotError('no run folders given; pass --workdirs=DIR[,DIR...]')
    runs = curves({w: read_metrics(w) for w in workdirs})
    keys = metric_keys(runs)
    if not keys:
        raise PlotError('no metrics to plot in ' + ', '.join(workdirs) +
                        '; their metrics.jsonl lines hold no numbers besides epoch and step')
    try:
        import matplotlib
    except ImportError:
        raise PlotError('matplotlib is not installed; pip install matplotlib') from None
    matplotlib.use('Agg')  # no display needed
    import matplotlib.pyplot as plt

    parent = os.path.dirname(os.path.abspath(out))
    ext = os.path.splitext(out)[1].lower()
    created, tmp, done = [], None, False
    try:  # the folder and a temporary file first: a write error shows up before drawing
        _make_dirs(parent, created)
        fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(out)}.', suffix=ext, dir=parent)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a plain file is not
        cols = min(3, len(keys))
        rows = -(-len(keys) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows + 0.3 * len(runs)),
                                 squeeze=False, layout='constrained')
        try:
            # one colour per curve on every panel (a panel's own cycle would shift colours
            # whenever a run lacks that metric); tab20 once the default 10 run out
            cycle = plt.rcParams['axes.prop_cycle'].by_key().get('color', [])
            if len(runs) > len(cycle):
                cycle = [plt.get_cmap('tab20')(i % 20) for i in range(20)]
            colour = {w: cycle[i % len(cycle)] for i, w in enumerate(runs)}
            for ax, key in zip(axes.flat, keys):
                for w, records in runs.items():
                    xs, m, s = _series(records, key)
                    if not xs:
                        continue
                    ax.plot(xs, m, marker='o', markersize=3, label=w, color=colour[w])
                    if any(s):
                        ax.fill_between(xs, [a - b for a, b in zip(m, s)],
                                        [a + b for a, b in zip(m, s)], alpha=0.2,
                                        color=colour[w])
                ax.set_title(key)
                ax.set_xlabel('epoch')
                ax.grid(alpha=0.3)
            for ax in list(axes.flat)[len(keys):]:
                ax.axis('off')
            # one legend for the figure, below the panels: inside a panel it covered points
            from matplotlib.lines import Line2D
            fig.legend([Line2D([], [], color=colour[w], marker='o', markersize=3) for w in runs],
                       list(runs), loc='outside lower center', ncols=min(len(runs), 3),
                       fontsize=8)
            fig.savefig(tmp, dpi=100, format=ext[1:])
        finally:
            plt.close(fig)
        os.replace(tmp, out)
        done = True
    except OSError as e:
        where = str(e.filename or parent)
        if os.path.basename(where).startswith(f'.{os.path.basename(out)}.'):
            where = parent  # the temporary file's name would only confuse
        where = f' ({where})'
        raise PlotError(f'cannot write --out={out}: {e.strerror or e}{where}; pick a writable '
                        'path') from None
    finally:
        if not done:  # leave nothing behind: the temporary file, then the folders made here
            if tmp is not None and os.path.exists(tmp):
                os.remove(tmp)
            for d in reversed(created):
                try:
                    os.rmdir(d)
                except OSError:
                    break
    return keys


def main(argv):
    from neurokit.experiment.cli import fail
    if len(argv) > 1:
        fail(f'unexpected arguments {" ".join(argv[1:])}; usage: python -m experiments.plot '
             '--workdirs=DIR[,DIR...] --out=curves.png')
    workdirs = [w for w in (_WORKDIRS.value or []) if w]
    if not workdirs:
        fail('--workdirs is required; pass the run folders to plot, e.g. '
             '--workdirs=runs/bp,runs/ff')
    try:
        keys = plot(workdirs, _OUT.value)
    except PlotError as e:
        fail(e)
    print(f'wrote {_OUT.value} ({len(keys)} panels: {", ".join(keys)})')


if __name__ == '__main__':
    from neurokit.experiment.cli import flags_parser
    app.run(main, flags_parser=flags_parser('experiments.plot'))
