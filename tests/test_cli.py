"""The command-line contract: `python -m experiments.train` and `experiments.compare`.

Runs share their sizes where the checks allow, so that the command server's compilation
cache (tests/cli_runner.py) compiles their programs once: the 2-epoch bp runs use SIZES,
and compare's bp runs are those of tests/test_entrypoint_errors.py (--hidden=8), which
also checks compare's table after a run that succeeds.
"""
import json
import os

import pytest


@pytest.fixture
def run_cli(cli):
    """`python -m module *args` through the command server (tests/cli_runner.py)."""
    return lambda args, env=None, cwd=None: cli.run(args[0], args[1:], env, timeout=300, cwd=cwd)


SIZES = ['--config.dataset=digits', '--config.model.hidden=(16,)', '--config.batch_size=64',
         '--config.optimizer.learning_rate=0.01']
TINY = SIZES + ['--config.tensorboard=False']


def test_train_writes_metrics_and_summary(tmp_path, run_cli):
    workdir = str(tmp_path / 'run')
    r = run_cli(['experiments.train', '--config=experiments/configs/bp.py', f'--workdir={workdir}',
                 '--config.epochs=2'] + SIZES)  # with the default event files
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


def test_compare_goes_on_after_a_rule_fails_and_prints_the_table(tmp_path, run_cli):
    # NaN inputs in epoch 1 stop every rule; each is still attempted (a failure does not
    # lose the rules after it), the table lists them as failed, and the exit code is 2.
    r = run_cli(['experiments.compare', '--rules=bp,fa', '--epochs=1', '--hidden=8',
                 f'--workdir={tmp_path}'], env={'NEUROKIT_TEST_POISON_EPOCH': '1'})
    assert r.returncode == 2, r.stderr[-2000:]
    assert 'bp: failed: non-finite' in r.stderr and 'fa: failed: non-finite' in r.stderr
    assert '\nbp ' in r.stdout and '\nfa ' in r.stdout and 'failed' in r.stdout
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith('error: 2 of 2 rules failed'), last


def test_compare_checks_every_workdir_before_training(tmp_path, run_cli):
    (tmp_path / 'fa').write_text('not a folder')
    r = run_cli(['experiments.compare', '--rules=bp,fa', '--epochs=1', '--hidden=8',
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


def test_config_outside_the_repository_from_another_folder(tmp_path, run_cli):
    # A config file in a folder of its own that imports a sibling file, run from a third
    # folder: it runs once; --config.rule names another rule than the file's, so the file's
    # rule_kwargs (pc's) are dropped with a note and the new rule gets its constructor's
    # defaults; --config.rule_kwargs sets one the file never listed. The run's progress
    # reaches stderr though stderr is a file, not a terminal.
    configs, elsewhere = tmp_path / 'my_configs', tmp_path / 'elsewhere'
    configs.mkdir()
    elsewhere.mkdir()
    (configs / 'shared_settings.py').write_text('EPOCHS = 2\n')
    loads = tmp_path / 'loads.txt'
    (configs / 'mine.py').write_text(
        'import shared_settings\n'
        'from neurokit.experiment.config import base_config\n\n\n'
        'def get_config():\n'
        f'    open({str(loads)!r}, "a").write("loaded\\n")\n'
        '    c = base_config()\n'
        "    c.rule = 'pc'\n"
        '    c.rule_kwargs.inference_steps = 2\n'
        '    c.epochs = shared_settings.EPOCHS\n'
        '    return c\n')
    workdir = tmp_path / 'run'
    r = run_cli(['experiments.train', '--config=../my_configs/mine.py', f'--workdir={workdir}',
                 '--config.rule=ff', '--config.rule_kwargs.threshold=3'] + TINY, cwd=str(elsewhere))
    assert r.returncode == 0, r.stderr[-2000:]
    from neurokit.experiment import config as config_lib
    stored = json.load(open(workdir / 'config.json'))
    assert stored['epochs'] == 2 and stored['rule'] == 'ff'
    assert loads.read_text() == 'loaded\n'  # the file ran once
    assert stored['rule_kwargs'] == {**config_lib.rule_defaults('ff'), 'threshold': 3.0}
    lines = r.stderr.splitlines()
    assert any(l.startswith('note: --config.rule=ff replaces') and 'inference_steps' in l
               for l in lines), r.stderr[-2000:]
    assert [l.split()[1] for l in lines if l.startswith('epoch ')] == ['1/2', '2/2'], lines


def test_repository_config_path_from_another_folder_and_the_resume_line(tmp_path, run_cli):
    # `--config=experiments/configs/bp.py` as the README gives it, typed in another folder;
    # a run killed after its first checkpoint says where it resumes from
    workdir = tmp_path / 'run'
    argv = ['experiments.train', '--config=experiments/configs/bp.py', f'--workdir={workdir}',
            '--config.epochs=2'] + TINY
    killed = run_cli(argv, env={'NEUROKIT_TEST_HOOK': '1:after_checkpoint:kill'},
                     cwd=str(tmp_path))
    assert killed.returncode == -9, killed.stderr[-2000:]
    r = run_cli(argv, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    want = f'resuming from epoch 1 of 2 (checkpoint {workdir}/checkpoints/1)'
    assert want in r.stderr.splitlines(), r.stderr[-2000:]


def test_progress_auto_is_a_bar_on_a_terminal_and_lines_elsewhere():
    import io
    from neurokit.experiment.metrics import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    records = [{'epoch': e, 'train_loss': 0.5, 'test_accuracy': 0.9} for e in (1, 2)]
    for stream, mode in ((io.StringIO(), 'auto'), (Terminal(), 'on')):
        p = Progress(2, mode, stream=stream)
        for record in records:
            p.update(record)
        p.close()
        lines = stream.getvalue().splitlines()
        assert [l.split()[:2] for l in lines] == [['epoch', '1/2'], ['epoch', '2/2']], lines
    bar = Terminal()
    p = Progress(2, 'auto', stream=bar)
    p.update(records[0])
    assert '\n' not in bar.getvalue() and bar.getvalue().startswith('\r[')  # redrawn in place
    p.update(records[1])
    p.close()
    assert bar.getvalue().count('\n') == 1 and bar.getvalue().count('\r') == 2
    assert bar.getvalue().rstrip('\n').rsplit('\r', 1)[1].startswith('[' + '#' * Progress.BAR)
    silent = io.StringIO()
    Progress(2, 'off', stream=silent).update(records[0])
    assert silent.getvalue() == ''


def test_tensorboard_names_members_by_their_settings(tmp_path):
    from neurokit.experiment.metrics import EventWriter, member_names
    names = member_names([{'optimizer.learning_rate': 0.001}, {'optimizer.learning_rate': 0.003}],
                         [0, 0])
    assert names == ['learning_rate=0.001,seed=0', 'learning_rate=0.003,seed=0']
    assert member_names([{}, {}], [0, 1]) == ['seed=0', 'seed=1']
    assert member_names([{}], [0]) is None  # one member: no member runs
    with EventWriter(str(tmp_path), members=names) as w:
        w.write({'epoch': 1, 'train_loss': [0.5, 0.7], 'epoch_seconds': 1.0})
    runs = sorted(p.name for p in (tmp_path / 'tb').iterdir() if p.is_dir())
    assert runs == names


def test_help_documents_the_progress_switch(run_cli):
    r = run_cli(['experiments.train', '--help'])  # absl ends --help with exit code 1
    text = ' '.join((r.stdout + r.stderr).split())
    assert '--config.progress=auto' in text and 'one line per epoch' in text, text[-3000:]


def test_config_from_flags_builds_what_the_command_line_would():
    # the parser of experiments.train, in process: the file's values, the overrides, and
    # every hyperparameter of the rule (the file sets two of pc's; beta it never lists)
    from neurokit.experiment import cli, config as config_lib
    config = cli.config_from_flags(['train', '--config=experiments/configs/pc.py', '--workdir=x',
                                    '--config.rule_kwargs.beta=0.5', '--config.epochs=3'])
    assert config.epochs == 3
    assert config.rule_kwargs.to_dict() == {**config_lib.rule_defaults('pc'), 'beta': 0.5,
                                            'inference_steps': 5, 'inference_momentum': 0.1}
    for argv, words in [(['--config.foo=1'], 'unknown config key foo'),
                        (['--config.epochs=ten'], 'epochs=ten'),
                        (['--config.rule_kwargs.alpha=1'], "rule 'pc' has no hyperparameter")]:
        with pytest.raises(cli.ConfigError, match=words):
            cli.config_from_flags(['train', '--config=experiments/configs/pc.py'] + argv)
