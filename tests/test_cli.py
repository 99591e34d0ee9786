"""The command-line contract: `python -m experiments.train` and `experiments.compare`."""
import json
import os

import pytest


@pytest.fixture
def run_cli(cli):
    """`python -m module *args` through the command server (tests/cli_runner.py)."""
    return lambda args, env=None: cli.run(args[0], args[1:], env, timeout=300)


def test_train_writes_metrics_and_summary(tmp_path, run_cli):
    workdir = str(tmp_path / 'run')
    r = run_cli(['experiments.train', '--config=experiments/configs/bp.py', f'--workdir={workdir}',
              '--config.dataset=digits', '--config.epochs=2', '--config.model.hidden=(32,)',
              '--config.batch_size=64', '--config.optimizer.learning_rate=0.01'])
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
    assert [l['epoch'] for l in lines] == [1, 2]
    for l in lines:
        assert {'epoch', 'train_loss', 'test_accuracy', 'epoch_seconds'} <= set(l)
        assert 0 <= l['test_accuracy'] <= 1
    s = json.load(open(os.path.join(workdir, 'summary.json')))
    assert {'rule', 'dataset', 'epochs', 'seed', 'test_accuracy', 'train_seconds',
            'samples_per_second', 'devices'} <= set(s)
    assert s['rule'] == 'bp' and s['dataset'] == 'digits' and s['epochs'] == 2 and s['devices'] >= 1
    assert s['test_accuracy'] == lines[-1]['test_accuracy'] and s['test_accuracy'] > 0.5


def test_num_seeds_reports_each_member(tmp_path, run_cli):
    workdir = str(tmp_path / 'seeds')
    r = run_cli(['experiments.train', '--config=experiments/configs/bp.py', f'--workdir={workdir}',
              '--config.dataset=digits', '--config.epochs=1', '--config.model.hidden=(16,)',
              '--config.num_seeds=3'])
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.load(open(os.path.join(workdir, 'summary.json')))
    assert len(s['test_accuracy']) == 3 and len(set(s['test_accuracy'])) > 1
    assert abs(s['test_accuracy_mean'] - sum(s['test_accuracy']) / 3) < 1e-9


def test_compare_prints_a_table(tmp_path, run_cli):
    r = run_cli(['experiments.compare', '--rules=bp', '--epochs=1', '--hidden=16',
              f'--workdir={tmp_path}'])
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'rule' in r.stdout and '\nbp ' in r.stdout


def test_compare_goes_on_after_a_rule_fails_and_prints_the_table(tmp_path, run_cli):
    # NaN inputs in epoch 1 stop every rule; each is still attempted (a failure does not
    # lose the rules after it), the table lists them as failed, and the exit code is 2.
    r = run_cli(['experiments.compare', '--rules=bp,fa', '--epochs=1', '--hidden=16',
              f'--workdir={tmp_path}'], env={'NEUROKIT_TEST_POISON_EPOCH': '1'})
    assert r.returncode == 2, r.stderr[-2000:]
    assert 'bp: failed: non-finite' in r.stderr and 'fa: failed: non-finite' in r.stderr
    assert '\nbp ' in r.stdout and '\nfa ' in r.stdout and 'failed' in r.stdout
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith('error: 2 of 2 rules failed'), last


def test_compare_checks_every_workdir_before_training(tmp_path, run_cli):
    (tmp_path / 'fa').write_text('not a folder')
    r = run_cli(['experiments.compare', '--rules=bp,fa', '--epochs=1', '--hidden=16',
              f'--workdir={tmp_path}'])
    assert r.returncode == 2 and 'fa' in r.stderr.strip().splitlines()[-1]
    assert not (tmp_path / 'bp').exists()  # nothing trained, nothing written


def test_out_of_device_memory_is_one_error_line(tmp_path, monkeypatch, capsys):
    # XLA's allocation failure (here raised by a stand-in for the run) ends like bad input:
    # one line naming the problem and the fixes, exit 2; any other runtime error still raises.
    import jax
    import pytest
    import neurokit.experiment
    from experiments.configs import bp
    from neurokit.experiment.cli import run_main

    def oom(config, workdir):
        raise jax.errors.JaxRuntimeError('RESOURCE_EXHAUSTED: Out of memory allocating '
                                         '16000000000 bytes.\nmore detail')

    monkeypatch.setattr(neurokit.experiment, "run", oom)
    with pytest.raises(SystemExit) as exit_:
        run_main(bp.get_config(), str(tmp_path))
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: out of device memory (RESOURCE_EXHAUSTED')
    assert '--config.batch_size' in err[0]

    def other(config, workdir):
        raise jax.errors.JaxRuntimeError('INTERNAL: something else')

    monkeypatch.setattr(neurokit.experiment, "run", other)
    with pytest.raises(jax.errors.JaxRuntimeError, match='something else'):
        run_main(bp.get_config(), str(tmp_path))
