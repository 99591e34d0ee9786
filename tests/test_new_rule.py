"""A new plain rule is one file plus one registry line.

In a copy of the repository, a throw-away rule (`l2bp`: backprop on the squared error to
one-hot targets, written against the `Rule` interface alone) is added as ONE file,
`neurokit/rules/l2bp.py`, and ONE line of `neurokit/rules/registry.py`; nothing else is
touched (no config file, no test). Then, in that copy:
  * `experiments.train` trains it from `experiments/configs/default.py --config.rule=l2bp`,
    and `--config.rule_kwargs.target_scale` reaches its constructor;
  * `experiments.compare --rules=l2bp` trains it and prints it in the table;
  * the conformance battery (`tests/test_conformance.py -k l2bp`) runs it and passes;
  * the 8-device equality checks (`tests/parallel/equivalence.py`) pick it up and find the
    parallel paths equal to one device: the jit-sharded epoch, and pmap, whose precondition
    (the update is a mean of slice updates) is the rule's own. fsdp and the pipeline wrap
    the same epoch whatever the rule is; tests/parallel/test_parallel_devices.py runs them.

All four run as commands of one command server started in the copy (tests/cli_runner.py:
it imports the copy's JAX and neurokit once and forks a real `python -m` per command).
"""
import json
import os
import re
import shutil

import pytest
from cli_runner import Server, run_many

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = 'l2bp'
PATHS = ('sharded', 'pmap')  # the parallel paths checked for the new rule (see above)

RULE_FILE = '''"""Backprop on the squared error between the logits and the one-hot targets."""
import jax
import jax.numpy as jnp

from neurokit.rules.base import EmptyState, Rule, check_batch


def l2bp(model, target_scale: float = 1.0) -> Rule:
    """The gradient of `0.5 * mean ||logits - target_scale * one_hot(y)||^2`."""

    def objective(params, x, y):
        logits = model.apply(params, x)[0]
        target = target_scale * jax.nn.one_hot(y, logits.shape[-1], dtype=logits.dtype)
        return 0.5 * jnp.mean(jnp.sum((logits - target) ** 2, axis=-1))

    def init(key, params):
        del key, params
        return EmptyState()

    def step(params, state, batch, key):
        del key
        batch = check_batch(model, batch, params)
        value, grads = jax.value_and_grad(objective)(params, batch['x'], batch['y'])
        return grads, state, {'loss': value}

    def predict(params, state, x):
        del state
        return model.apply(params, x)[0]

    return Rule(init, step, predict)
'''


def _copy(dest):
    """The library, the scripts and the few test files the checks run, copied to `dest`."""
    skip = shutil.ignore_patterns('__pycache__', 'benchmarks', 'notebooks')
    for folder in ('neurokit', 'experiments'):
        shutil.copytree(os.path.join(REPO, folder), os.path.join(dest, folder), ignore=skip)
    for path in ('pyproject.toml', 'tests/conftest.py', 'tests/test_conformance.py',
                 'tests/parallel/equivalence.py'):
        os.makedirs(os.path.dirname(os.path.join(dest, path)), exist_ok=True)
        shutil.copy(os.path.join(REPO, path), os.path.join(dest, path))


def _add_rule(dest):
    """The two changes a contributor makes: the rule's file and its registry line."""
    with open(os.path.join(dest, 'neurokit', 'rules', f'{NAME}.py'), 'w') as f:
        f.write(RULE_FILE)
    path = os.path.join(dest, 'neurokit', 'rules', 'registry.py')
    text = open(path).read()
    table = re.search(r'^_RULES = \{\n.*?^\}\n', text, re.M | re.S)
    assert table, 'the registry has no `_RULES = {...}` table to add a line to'
    end = table.end() - 2  # the last line of the table, as a contributor adds it
    line = f"    '{NAME}': '{NAME}:{NAME}',\n"
    with open(path, 'w') as f:
        f.write(text[:end] + line + text[end:])


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """The four checks, run in the copy (two at a time): `{name: cli_runner.Run}`."""
    copy = str(tmp_path_factory.mktemp('repo'))
    _copy(copy)
    _add_rule(copy)
    out = str(tmp_path_factory.mktemp('out'))
    env = {k: v for k, v in os.environ.items()
           if k not in ('NEUROKIT_TEST_HOOK', 'NEUROKIT_TEST_POISON_EPOCH')}
    env.update(PYTHONPATH=copy, JAX_PLATFORMS='cpu')
    commands = {  # the longest first, so that the other three run beside it
        'conformance': ('pytest', ['-q', '-p', 'no:cacheprovider', '-o', 'addopts=',
                                   'tests/test_conformance.py', '-k', NAME]),
        'train': ('experiments.train', [
            '--config=experiments/configs/default.py', f'--config.rule={NAME}',
            f'--workdir={out}/train', '--config.dataset=digits', '--config.epochs=2',
            '--config.model.hidden=32,', '--config.batch_size=64',
            '--config.optimizer.learning_rate=0.01', '--config.tensorboard=False',
            '--config.rule_kwargs.target_scale=2']),
        'compare': ('experiments.compare', [f'--rules={NAME}', '--epochs=1', '--hidden=16',
                                            f'--workdir={out}/compare']),
        # XLA reads its flags when the command starts its backend
        'equivalence': ('tests.parallel.equivalence', [
            f'--rules={NAME}', f'--paths={",".join(PATHS)}', f'--out={out}/eq.json'],
            {'XLA_FLAGS': os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8'}),
    }
    with Server(env, cwd=copy) as server:  # the copy first on sys.path: its neurokit
        done = dict(zip(commands, run_many(server, list(commands.values()))))
    return out, done


def test_train_runs_the_new_rule_without_a_config_file(runs):
    out, done = runs
    r = done['train']
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.load(open(os.path.join(out, 'train', 'summary.json')))
    assert summary['rule'] == NAME and summary['epochs'] == 2
    assert summary['test_accuracy'] > 0.5  # it learns: chance on digits is 0.1
    config = json.load(open(os.path.join(out, 'train', 'config.json')))
    # the rule's own hyperparameters, the command line's value, nothing of another rule
    assert config['rule_kwargs'] == {'target_scale': 2.0}


def test_compare_picks_up_the_new_rule(runs):
    _, done = runs
    r = done['compare']
    assert r.returncode == 0, r.stderr[-3000:]
    assert f'\n{NAME} ' in r.stdout, r.stdout


def test_conformance_battery_runs_the_new_rule(runs):
    _, done = runs
    r = done['conformance']
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    passed = re.search(r'(\d+) passed', r.stdout)
    assert passed and int(passed.group(1)) >= 5 and 'failed' not in r.stdout, r.stdout[-2000:]


def test_parallel_paths_equal_one_device_for_the_new_rule(runs):
    out, done = runs
    r = done['equivalence']
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.load(open(os.path.join(out, 'eq.json')))
    assert result['devices'] == 8
    res = result['rules'][NAME]
    assert 'error' not in res, res
    # a mean of per-example terms with no randomness: pmap's precondition holds, so every
    # path checked must really run
    assert set(PATHS) <= set(res), res
    for path in PATHS:
        assert 'skipped' not in res[path] and res[path]['diff'] < 1e-5, (path, res[path])
