"""vmapped hyperparameter sweeps: one compiled program, each member = its own run.

Expected: member i of a sweep equals a separate run built with member i's
values as Python constants and its seed (to 1e-5); the epoch is traced once
over several epochs (no recompilation).
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurokit import models, train
from neurokit.parallel import sweep
from neurokit.rules import bp, registry

N, BATCH = 256, 64


def _separate(model, rule, opt, seed, x, y, epochs):
    state = jax.jit(lambda k: train.init_state(k, model, rule, opt))(jax.random.PRNGKey(seed))
    epoch = jax.jit(train.make_epoch(rule, opt, BATCH))
    for e in range(epochs):
        state, _ = epoch(state, x, y, e)
    return state


def _close(a, b, tol=1e-5):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), atol=tol, rtol=0)


def test_grid():
    assert sweep.grid(lr=[1, 2], seeds=[0, 1]) == {'lr': [1, 1, 2, 2], 'seed': [0, 1, 0, 1]}
    assert sweep.grid(a=[1, 2], b=[3]) == {'a': [1, 2], 'b': [3, 3]}


def test_learning_rate_sweep_equals_separate_runs_and_compiles_once(digits):
    x, y, xt, yt = digits
    x, y = x[:N], y[:N]
    model = models.mlp((8, 8, 1), 10, (32,))
    values = {'lr': [1e-3, 1e-2], 'seed': [0, 1]}
    res = sweep.train(model, lambda hp: (bp(model), optax.adam(hp['lr'])), values, x, y,
                      epochs=3, batch_size=BATCH, x_test=xt, y_test=yt)
    assert res.traces == 1  # three epochs, one trace
    assert res.metrics['loss'].shape == (3, 2) and res.test_accuracy.shape == (3, 2)
    assert res.seeds.tolist() == [0, 1]
    rule = bp(model)
    single = _separate(model, rule, optax.adam(1e-2), 1, x, y, 3)
    _close(jax.tree.map(lambda a: a[1], res.state.params), single.params)
    # the larger step size learns faster on this budget
    assert res.test_accuracy[-1, 1] > res.test_accuracy[-1, 0]


def _traced_member_equals_concrete_run(digits, name, kwarg, values, **fixed):
    """The last member of a sweep over rule hyperparameter `kwarg` equals a separate run of
    the rule built with that value (params and rule state); `fixed` kwargs go to both."""
    x, y, _, _ = digits
    x, y = x[:128], y[:128]
    model = models.mlp((8, 8, 1), 10, (32,))
    build = lambda hp: (registry.build(name, model, **fixed, **{kwarg: hp['v']}),
                        optax.adam(1e-3))
    res = sweep.train(model, build, {'v': values}, x, y, epochs=1, batch_size=BATCH)
    single = _separate(model, registry.build(name, model, **fixed, **{kwarg: values[-1]}),
                       optax.adam(1e-3), 0, x, y, 1)
    last = lambda tree: jax.tree.map(lambda a: a[-1], tree)
    _close(last(res.state.rule_state), single.rule_state)
    _close(last(res.state.params), single.params)
    return model, x, y


@pytest.mark.skipif('dfa' not in registry.RULES, reason='dfa not landed')
def test_rule_hyperparameter_is_traced(digits):
    _traced_member_equals_concrete_run(digits, 'dfa', 'feedback_scale', [0.5, 2.0])


def test_pc_step_size_is_traced_and_its_step_count_is_refused(digits):
    # the sweep docstring's example: PC step sizes
    model, x, y = _traced_member_equals_concrete_run(digits, 'pc', 'inference_lr', [0.05, 0.2])
    steps = lambda hp: (registry.build('pc', model, inference_steps=hp['t']), optax.adam(1e-3))
    with pytest.raises(ValueError, match='inference_steps .* cannot be swept'):
        sweep.train(model, steps, {'t': [2.0, 4.0]}, x, y, epochs=1, batch_size=BATCH)


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match='differ in length'):
        sweep._members({'a': [1, 2], 'b': [1]}, None)
    with pytest.raises(ValueError, match='3 seeds for 2 members'):
        sweep._members({'a': [1, 2]}, [0, 1, 2])


# grid and train take name -> a non-empty list of values (an empty one leaves no members)
# and integer seeds; misuse fails before anything is built, naming the argument.
@pytest.mark.parametrize('call, error, match', [
    (lambda: sweep.grid(lr=[]), ValueError, 'grid: lr is an empty list'),
    (lambda: sweep.grid(lr=[1e-3], seeds=[]), ValueError, 'grid: seeds is an empty list'),
    (lambda: sweep.grid(lr=1e-3), TypeError, 'grid: lr must be a list of values, got 0.001'),
    (lambda: sweep.grid(lr='1e-3'), TypeError, "grid: lr must be a list .*got '1e-3'"),
    (lambda: sweep.train(None, None, {'lr': []}, None, None, 1, 8), ValueError,
     r"values\['lr'\] is an empty list"),
    (lambda: sweep.train(None, None, {'lr': 0.1}, None, None, 1, 8), TypeError,
     r"values\['lr'\] must be a list of values, got 0.1"),
    (lambda: sweep.train(None, None, {'lr': ['a', 'b']}, None, None, 1, 8), TypeError,
     r"values\['lr'\] must be a list of numbers"),
    (lambda: sweep.train(None, None, {}, None, None, 1, 8, seeds=[]), ValueError,
     'seeds is an empty list'),
    (lambda: sweep.train(None, None, {'lr': [1, 2]}, None, None, 1, 8, seeds=[0, 1.5]),
     TypeError, 'seeds must be integers, got 1.5'),
])
def test_sweep_misuse_is_refused_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_sweep_train_refuses_labels_outside_the_classes(digits):
    # an out-of-range label is a zero one-hot row (no loss, no error) once inside the
    # compiled program, so train checks its concrete data first
    x, y = digits[0][:64], digits[1][:64]
    model = models.mlp((8, 8, 1), 10, hidden=(16,))
    build = lambda hp: (bp(model), optax.sgd(hp['lr']))
    with pytest.raises(ValueError, match=r'labels fall outside \[0, 10\) \(found 1..10\)'):
        sweep.train(model, build, {'lr': [0.1]}, x, y + 1, 1, 32)
    with pytest.raises(ValueError, match='integer'):
        sweep.train(model, build, {'lr': [0.1]}, x, y.astype(jnp.float32), 1, 32)


def test_numpy_seeds_are_accepted():
    _, seeds, n = sweep._members({'lr': [1e-3, 1e-2]}, np.int64(3))
    assert seeds.tolist() == [3, 3] and n == 2
    _, seeds, n = sweep._members(sweep.grid(lr=(1e-3,), seeds=np.arange(2)), None)
    assert seeds.tolist() == [0, 1] and n == 2


def test_sharded_epoch_compiles_once(digits):
    """The data-parallel epoch is traced once over several epochs (no recompilation)."""
    import chex
    from neurokit.parallel import mesh as M
    x, y, _, _ = digits
    model = models.mlp((8, 8, 1), 10, (32,))
    rule, opt = bp(model), optax.adam(1e-3)
    counted = rule._replace(step=chex.assert_max_traces(rule.step, n=1))
    mesh = M.make_mesh()
    epoch = M.sharded_epoch(counted, opt, BATCH, mesh)
    state = M.put_state(jax.jit(lambda k: train.init_state(k, model, rule, opt))(
        jax.random.PRNGKey(0)), mesh)
    xs, ys = M.put_dataset(x[:N], y[:N], mesh)
    for e in range(3):
        state, metrics = epoch(state, xs, ys, e)  # a second trace would raise
    assert int(state.step) == 3 * (N // BATCH)
