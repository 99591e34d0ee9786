"""Workdirs through etils.epath: one file-system module, any path epath accepts.

The workdir code touches the file system only through `neurokit.experiment.fs` and epath
methods: no `os.path`, `fcntl`, `os.fsync`, `os.replace` or `open` on a workdir path
anywhere else (read from the sources). A run takes its workdir as a string or an
`epath.Path` and resumes or finishes alike; a URL keeps its scheme, and the local-only
parts (the lock) hold nothing there.
"""
import os
import re

from etils import epath

from neurokit import experiment
from neurokit.experiment import fs
from neurokit.experiment.config import base_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Modules that handle workdir paths. cli.py and compare.py also locate config FILES (in the
# repository, `--config=...`) with os.path; their workdir code is read by the test below.
WORKDIR_MODULES = ('neurokit/experiment/workdir.py', 'neurokit/experiment/checkpoint.py',
                   'neurokit/experiment/epochs.py', 'neurokit/experiment/run.py',
                   'neurokit/experiment/metrics.py', 'neurokit/experiment/members.py',
                   'neurokit/experiment/placement.py')
LOCAL_ONLY = re.compile(r'\bos\.path\b|\bfcntl\b|\bos\.(fsync|replace|open|remove|makedirs|'
                        r'listdir|stat)\b|(?<![.\w])open\(|\bshutil\b|\bglob\b')


def test_no_local_file_system_call_on_a_workdir_outside_the_fs_module():
    found = []
    for rel in WORKDIR_MODULES:
        with open(os.path.join(REPO, rel)) as f:
            for i, line in enumerate(f, 1):
                code = line.split('#')[0]
                if LOCAL_ONLY.search(code):
                    found.append(f'{rel}:{i}: {line.strip()}')
    assert not found, '\n'.join(found)
    assert LOCAL_ONLY.search('    with open(path) as f:')  # the pattern sees what it bans


def test_the_entrypoints_pass_workdirs_to_the_fs_module():
    """compare.py's per-rule workdirs, and cli.py's messages on a workdir, go through fs."""
    import inspect
    from experiments import compare
    from neurokit.experiment import cli
    main = inspect.getsource(compare.main)
    assert 'fs.path(root) / name' in main and not LOCAL_ONLY.search(main)
    for fn in (cli._kept, cli.run_main):
        assert not LOCAL_ONLY.search(inspect.getsource(fn))


def test_a_url_keeps_its_scheme_and_takes_no_lock():
    p = fs.path('gs://bucket/runs/bp')
    assert str(p / 'checkpoints') == 'gs://bucket/runs/bp/checkpoints'
    assert not fs.is_local(p) and fs.is_local(fs.path('runs/bp'))
    assert str(fs.path('runs/bp')) == os.path.abspath('runs/bp')  # local: absolute
    held = fs.lock(p)  # no file system call: object stores have no locks
    assert held is not None
    held.release()


def test_a_local_lock_is_exclusive(tmp_path):
    first = fs.lock(epath.Path(tmp_path))
    assert first is not None and fs.lock(epath.Path(tmp_path)) is None
    first.release()
    again = fs.lock(epath.Path(tmp_path))
    assert again is not None
    again.release()


def test_a_run_takes_an_epath_workdir_and_finds_it_finished_by_its_string(tmp_path):
    c = base_config()
    c.dataset, c.model.hidden, c.epochs, c.batch_size = 'digits', (8,), 1, 128
    c.progress, c.tensorboard = 'off', False
    workdir = epath.Path(tmp_path) / 'run'
    summary = experiment.run(c, workdir)
    assert (workdir / 'summary.json').exists() and (workdir / 'checkpoints' / '1').is_dir()
    again = experiment.run(c, str(workdir))
    assert again['already_finished'] and again['test_accuracy'] == summary['test_accuracy']
