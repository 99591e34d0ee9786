"""Bad input to `python -m experiments.plot` and `experiments.compare` (the contract of
`neurokit/experiment/cli.py`): exit 2, stderr ending in ONE line `error: ...` that names the
problem, no traceback, and nothing written.

Every case runs once, two at a time, from a module fixture, through
`cli_runner.run_many` (one interpreter imports JAX once and forks a real
`python -m ...` per case); each case is then checked by its own parametrized test.
"""
import json
import os
import re

import pytest
from cli_runner import run_many

TORN = '{"epoch": 9, "tor'  # a last line cut by a kill: no newline


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


def _run_folder(path):
    """A run folder with two complete epochs and a torn last line."""
    records = [{'epoch': e, 'train_loss': 1.0 / e, 'test_accuracy': 0.5 + 0.1 * e} for e in (1, 2)]
    _write(os.path.join(path, 'metrics.jsonl'), ''.join(json.dumps(r) + '\n' for r in records)
           + TORN)
    return path


# One case per refusal. Left out as the same message from the same check as a case kept:
# an empty metrics.jsonl (only_torn_line: no complete line), --hidden=8,0
# (compare_hidden_not_a_number: not comma-separated positive integers) and --num_seeds=0
# (compare_epochs_zero: a count below 1).
ERROR_CASES = [
    'missing_workdir', 'no_metrics_jsonl', 'only_torn_line',
    'bad_json_line', 'out_unwritable', 'out_not_an_image', 'out_is_a_folder',
    'missing_workdirs_flag', 'stray_argument', 'mistyped_flag', 'compare_unknown_rule',
    'compare_hidden_not_a_number', 'compare_unknown_dataset',
    'compare_stray_argument', 'compare_epochs_zero', 'compare_epochs_not_a_number']


# name -> (module, flags, words the error line must contain, paths that must not exist)
def error_cases(tmp):
    good = _run_folder(os.path.join(tmp, 'good'))
    os.makedirs(os.path.join(tmp, 'no_metrics'))
    _write(os.path.join(tmp, 'only_torn', 'metrics.jsonl'), TORN)
    _write(os.path.join(tmp, 'bad_line', 'metrics.jsonl'),
           '{"epoch": 1, "train_loss": 1.0}\n{"epoch": 2, oops}\n{"epoch": 3, "train_loss": 0.5}\n')
    out_dir = os.path.join(tmp, 'out_dir')
    os.makedirs(out_dir)

    def out(name, file='c.png'):  # in a folder that does not exist yet: it must stay absent
        return os.path.join(tmp, 'out_' + name, file)

    def plot(name, workdirs, words, out_path=None, extra=(), absent=None):
        o = out_path or out(name)
        flags = ([f'--workdirs={workdirs}'] if workdirs else []) + [f'--out={o}'] + list(extra)
        return name, ('experiments.plot', flags, words, absent or [os.path.dirname(o)])

    def compare(name, flags, words):
        wd = os.path.join(tmp, 'compare_' + name)
        return 'compare_' + name, ('experiments.compare', flags + [f'--workdir={wd}'], words, [wd])

    return dict([
        plot('missing_workdir', os.path.join(tmp, 'nope'), ['nope', 'does not exist']),
        plot('no_metrics_jsonl', os.path.join(tmp, 'no_metrics'), ['metrics.jsonl', 'no_metrics']),
        plot('only_torn_line', os.path.join(tmp, 'only_torn'), ['metrics.jsonl', 'no complete']),
        plot('bad_json_line', f'{good},{os.path.join(tmp, "bad_line")}',
             [os.path.join('bad_line', 'metrics.jsonl'), 'line 2']),
        plot('out_unwritable', good, ['/proc/x/p.png'], out_path='/proc/x/p.png'),
        plot('out_not_an_image', good, ['.txt', '.png'], out_path=out('txt', 'p.txt')),
        plot('out_is_a_folder', good, ['out_dir', 'folder'], out_path=out_dir,
             absent=[out_dir + '.png']),
        plot('missing_workdirs_flag', None, ['--workdirs', 'required']),
        plot('stray_argument', good, ['stray'], extra=['stray']),
        plot('mistyped_flag', None, ['flag \'workdir\'', 'experiments.plot --help'],
             extra=[f'--workdir={good}']),
        compare('unknown_rule', ['--rules=nope'], ['nope', 'bp']),
        compare('hidden_not_a_number', ['--rules=bp', '--hidden=abc'], ['--hidden', 'abc']),
        compare('unknown_dataset', ['--rules=bp', '--dataset=nope'], ['nope', 'digits', 'mnist1d']),
        compare('stray_argument', ['--rules=bp', 'stray'], ['stray']),
        compare('epochs_zero', ['--rules=bp', '--epochs=0', '--hidden=8'], ['--epochs', '1']),
        compare('epochs_not_a_number', ['--rules=bp', '--epochs=ten'], ['--epochs', 'ten']),
    ])


CTRL_C = {  # NEUROKIT_TEST_HOOK -> exit code, words of the last line
    '0:before_start:int': (130, ['interrupted: stopped during bp without saving']),
    '1:after_metrics:int': (3, ['preempted: bp: stopped by SIGINT after epoch 1',
                                'checkpoint saved']),
}


@pytest.fixture(scope='module')
def results(tmp_path_factory, cli):
    tmp = str(tmp_path_factory.mktemp('entrypoints'))
    cases = error_cases(tmp)
    assert sorted(cases) == sorted(ERROR_CASES)
    # The happy paths and Ctrl-C ride along in the same batch: compare_ok first and the
    # Ctrl-C runs last, so that they load compare_ok's programs from the server's cache.
    jobs = {'compare_ok': ('experiments.compare', ['--rules=bp', '--epochs=1', '--hidden=8',
                                                   f'--workdir={os.path.join(tmp, "compare_ok")}'])}
    jobs.update((name, (module, flags)) for name, (module, flags, _, _) in cases.items())
    jobs['plot_svg'] = ('experiments.plot', [f'--workdirs={os.path.join(tmp, "good")}',
                                             f'--out={os.path.join(tmp, "svg", "c.svg")}'])
    for i, hook in enumerate(CTRL_C):
        jobs[hook] = ('experiments.compare', ['--rules=bp', '--epochs=2', '--hidden=8',
                                              f'--workdir={os.path.join(tmp, f"ctrl_c{i}")}'],
                      {'NEUROKIT_TEST_HOOK': hook})
    runs = run_many(cli, list(jobs.values()))
    return tmp, cases, dict(zip(jobs, runs))


@pytest.mark.parametrize('name', ERROR_CASES)
def test_bad_input_is_one_error_line(results, name):
    tmp, cases, runs = results
    _, _, words, absent = cases[name]
    r = runs[name]
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert 'Traceback' not in r.stderr and 'FATAL' not in r.stderr, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert lines and lines[-1].startswith('error: '), r.stderr[-2000:]
    assert sum(l.startswith('error:') for l in lines) == 1, r.stderr[-2000:]
    for word in words:
        assert word in lines[-1], (word, lines[-1])
    for path in absent:
        assert not os.path.exists(path), f'{path} was written'
    assert not r.stdout.strip(), r.stdout


def test_plot_out_folder_is_left_alone(results):
    tmp, _, runs = results
    assert runs['out_is_a_folder'].returncode == 2
    out_dir = os.path.join(tmp, 'out_dir')
    assert os.listdir(out_dir) == [] and not os.path.exists(out_dir + '.png')


def test_plot_writes_svg_in_a_new_folder(results):
    tmp, _, runs = results
    r = runs['plot_svg']
    assert r.returncode == 0, r.stderr[-2000:]
    path = os.path.join(tmp, 'svg', 'c.svg')
    with open(path) as f:
        assert '<svg' in f.read(2000)
    assert os.listdir(os.path.dirname(path)) == ['c.svg']  # no temporary file left over
    assert path in r.stdout


def test_compare_prints_a_table_without_info_logs(results):
    _, _, runs = results
    r = runs['compare_ok']
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'rule' in r.stdout and '\nbp ' in r.stdout
    info = [l for l in r.stderr.splitlines() if re.match(r'I\d{4} ', l)]
    assert not info, info[:3]


@pytest.mark.parametrize('hook', list(CTRL_C))
def test_compare_ctrl_c_is_one_line_naming_the_workdir_to_resume(results, hook):
    # compare's default workdir is a new temp folder per call, so "run the same command"
    # would start over: the line must name --workdir
    tmp, _, runs = results
    code, words = CTRL_C[hook]
    r = runs[hook]
    wd = os.path.join(tmp, f'ctrl_c{list(CTRL_C).index(hook)}')
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    assert 'Traceback' not in r.stderr, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    for word in words + [f'--workdir={wd} to resume']:
        assert word in last, (word, last)
