"""A battery of bad inputs through the real CLI (`python -m experiments.train`).

Each case must: exit non-zero, end stderr with ONE line starting 'error:' that
names the problem, and leave every file that was in the workdir before
byte-identical (a workdir that did not exist must still not exist).

All cases run once, in a thread pool (a subprocess costs ~3 s of startup),
from a module fixture; each case is then checked by its own parametrized test.
"""
import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import sys

import pytest
from idx_files import write_mnist

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BP = 'experiments/configs/bp.py'


def write_idx(folder, label_max=9):
    write_mnist(folder, n_train=256, n_test=64, learnable=False, label_max=label_max)


def write_config(path, body):
    with open(path, 'w') as f:
        f.write('from neurokit.config import base_config\n\n\ndef get_config():\n'
                '    c = base_config()\n' + ''.join(f'    {line}\n' for line in body) +
                '    return c\n')
    return path


# name -> (config file, extra flags, words the error line must contain, workdir kind)
# workdir kinds: 'new' (does not exist), 'run' (holds a finished run with TINY flags),
# 'file' (a regular file), 'foreign' (metrics.jsonl but no config.json), or a literal path.
def cases(tmp):
    good = os.path.join(tmp, 'idx_good')
    write_idx(good)
    corrupt = os.path.join(tmp, 'idx_corrupt')
    write_idx(corrupt)
    with open(os.path.join(corrupt, 'train-images-idx3-ubyte'), 'wb') as f:
        f.write(b'\x12\x34\x56\x78 not an idx file')
    truncated = os.path.join(tmp, 'idx_truncated')
    write_idx(truncated)
    path = os.path.join(truncated, 'train-images-idx3-ubyte')
    raw = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(raw[:len(raw) // 2])
    labels = os.path.join(tmp, 'idx_labels')
    write_idx(labels, label_max=12)
    tiny = ['--config.dataset=fashion_mnist', f'--config.data_dir={good}',
            '--config.model.hidden=8,', '--config.epochs=1', '--config.batch_size=64']
    unknown_key = write_config(os.path.join(tmp, 'unknown_key.py'), ['c.foo = 1'])
    wrong_type = write_config(os.path.join(tmp, 'wrong_type.py'), ["c.epochs = 'ten'"])
    raising = os.path.join(tmp, 'raising.py')
    with open(raising, 'w') as f:
        f.write('def get_config():\n    raise RuntimeError("boom in get_config")\n')
    return {
        'unknown key in file': (unknown_key, tiny, ['unknown config key', 'foo'], 'new'),
        'unknown key on command line': (BP, tiny + ['--config.foo=1'], ['unknown config key', 'foo'], 'new'),
        'unknown rule hyperparameter': (BP, tiny + ['--config.rule_kwargs.zz=1'], ['zz'], 'new'),
        'wrong type on command line': (BP, tiny + ['--config.epochs=ten'], ['epochs', 'ten'], 'new'),
        'wrong type in file': (wrong_type, tiny, ['epochs', 'ten'], 'new'),
        'batch size zero': (BP, tiny + ['--config.batch_size=0'], ['batch_size', '>= 1'], 'new'),
        'negative learning rate': (BP, tiny + ['--config.optimizer.learning_rate=-1'],
                                   ['learning_rate', '>= 0'], 'new'),
        'zero seeds': (BP, tiny + ['--config.num_seeds=0'], ['num_seeds'], 'new'),
        'zero width layer': (BP, tiny + ['--config.model.hidden=0,'], ['model.hidden'], 'new'),
        'unknown rule': (BP, tiny + ['--config.rule=nope'], ['unknown rule', 'nope', 'bp'], 'new'),
        'unknown dataset': (BP, tiny + ['--config.dataset=nope'],
                            ['unknown dataset', 'digits', 'fashion_mnist'], 'new'),
        'unknown model': (BP, tiny + ['--config.model.name=nope'], ['unknown model', 'mlp', 'cnn'], 'new'),
        'unknown optimizer': (BP, tiny + ['--config.optimizer.name=nope'], ['optimizer', 'adam', 'sgd'], 'new'),
        'unknown nan policy': (BP, tiny + ['--config.nan_policy=maybe'], ['nan_policy', 'skip'], 'new'),
        'unknown progress mode': (BP, tiny + ['--config.progress=loud'], ['progress', 'auto'], 'new'),
        'layerwise updates for bp': (BP, tiny + ['--config.layerwise_updates=True'],
                                     ['no layerwise step', 'layerwise_updates=False'], 'new'),
        'layerwise updates with clipping': (
            'experiments/configs/mf.py', tiny + ['--config.optimizer.grad_clip=1'],
            ['grad_clip', 'layerwise'], 'new'),
        'missing data dir': (BP, tiny + [f'--config.data_dir={tmp}/no_such_dir'], ['not found', 'no_such_dir'], 'new'),
        'corrupt idx': (BP, tiny + [f'--config.data_dir={corrupt}'], ['corrupt', 'magic'], 'new'),
        'truncated idx': (BP, tiny + [f'--config.data_dir={truncated}'], ['truncated'], 'new'),
        'labels out of range': (BP, tiny + [f'--config.data_dir={labels}'], ['labels', 'outside'], 'new'),
        'batch larger than data': (BP, tiny + ['--config.batch_size=5000'], ['batch_size', 'exceeds'], 'new'),
        'cnn too deep for input': (BP, tiny + ['--config.model.name=cnn', '--config.model.channels=4,4,4,4,4,4'],
                                   ['does not fit', 'too small'], 'new'),
        'unwritable workdir': (BP, tiny, ['not writable'], '/proc/neurokit_bad_input/run'),
        'workdir is a file': (BP, tiny, ['is a file'], 'file'),
        'workdir inside a file': (BP, tiny, ['is a file'], 'file/sub'),
        'workdir of a foreign run': (BP, tiny, ['config.json'], 'foreign'),
        'checkpoint from a different config': (BP, tiny + ['--config.optimizer.learning_rate=0.5'],
                                               ['different config', 'optimizer.learning_rate'], 'run'),
        'missing config file': (os.path.join(tmp, 'nope.py'), tiny, ['cannot load', 'nope.py'], 'new'),
        'config file raises': (raising, tiny, ['boom in get_config'], 'new'),
        'missing workdir flag': (BP, tiny, ['workdir'], None),
        'stray argument': (BP, tiny + ['stray'], ['unexpected', 'stray'], 'new'),
    }


def snapshot(path):
    if os.path.isfile(path):
        return {'': hashlib.sha256(open(path, 'rb').read()).hexdigest()}
    if not os.path.isdir(path):
        return None
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            p = os.path.join(root, name)
            out[os.path.relpath(p, path)] = hashlib.sha256(open(p, 'rb').read()).hexdigest()
    return out


def env():
    e = dict(os.environ)
    e.pop('NEUROKIT_TEST_HOOK', None)
    e['JAX_PLATFORMS'] = 'cpu'
    return e


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp('bad'))
    table = cases(tmp)
    tiny = table['unknown key on command line'][1][:-1]
    finished = os.path.join(tmp, 'finished_run')
    r = subprocess.run([sys.executable, '-m', 'experiments.train', f'--config={BP}',
                        f'--workdir={finished}', '--config.tensorboard=False', *tiny],
                       cwd=REPO, env=env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]

    def one(item):
        i, (name, (config, flags, words, kind)) = item
        if kind is None:
            workdir = None
        elif kind.startswith('/'):
            workdir = kind
        else:
            workdir = os.path.join(tmp, f'w{i}')
            if kind == 'run':
                shutil.copytree(finished, workdir)
                workdir = workdir
            elif kind.startswith('file'):
                with open(workdir, 'w') as f:
                    f.write('not a folder\n')
                workdir = os.path.join(workdir, 'sub') if kind == 'file/sub' else workdir
            elif kind == 'foreign':
                os.makedirs(workdir)
                with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
                    f.write('{"epoch": 1}\n')
        probe = os.path.dirname(workdir) if kind == 'file/sub' else workdir
        before = snapshot(probe) if probe else None
        cmd = [sys.executable, '-m', 'experiments.train', f'--config={config}', *flags]
        if workdir is not None:
            cmd.append(f'--workdir={workdir}')
        p = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True,
                           timeout=600)
        after = snapshot(probe) if probe else None
        return name, (p.returncode, p.stderr, before, after, words)

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        return dict(pool.map(one, enumerate(table.items())))




def _names():
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        return list(cases(d))


@pytest.mark.parametrize('name', _names())
def test_bad_input_fails_with_one_error_line(results, name):
    rc, stderr, before, after, words = results[name]
    assert rc != 0, f'{name}: exit code 0\n{stderr[-2000:]}'
    lines = stderr.strip().splitlines()
    assert lines, f'{name}: empty stderr'
    last = lines[-1]
    assert last.startswith('error: '), f'{name}: last stderr line is {last!r}\n{stderr[-2000:]}'
    for w in words:
        assert w.lower() in last.lower(), f'{name}: {w!r} not in {last!r}'
    assert 'Traceback' not in stderr, f'{name}: traceback\n{stderr[-2000:]}'
    assert after == before, f'{name}: workdir changed: {before} -> {after}'


def test_battery_is_large_enough():
    assert len(_names()) >= 20
