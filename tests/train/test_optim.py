"""Optimizer config: the first-epochs weight decay (product feedback alignment's schedule)."""
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from ml_collections import ConfigDict

from neurokit.experiment.config import base_config
from neurokit import optim


def test_initial_weight_decay_then_weight_decay_closed_form():
    """Zero gradients, plain SGD: each step multiplies p by (1 - lr * decay_of_that_step)."""
    cfg = base_config().optimizer
    cfg.name, cfg.learning_rate, cfg.momentum = 'sgd', 0.1, 0.0
    cfg.weight_decay, cfg.initial_weight_decay, cfg.initial_weight_decay_epochs = 1e-3, 0.5, 1.0
    steps_per_epoch = 3
    opt = optim.build(cfg, steps_per_epoch, epochs=2)
    p = {'w': jnp.ones((2,))}
    state = opt.init(p)
    for _ in range(2 * steps_per_epoch):
        upd, state = opt.update({'w': jnp.zeros((2,))}, state, p)
        p = {'w': p['w'] + upd['w']}
    expected = (1 - 0.1 * 0.5) ** 3 * (1 - 0.1 * 1e-3) ** 3
    np.testing.assert_allclose(np.asarray(p['w']), expected, rtol=1e-6)


def test_no_initial_epochs_means_constant_decay():
    cfg = base_config().optimizer
    cfg.weight_decay, cfg.initial_weight_decay = 1e-2, 0.9  # ignored without epochs
    assert optim.weight_decay(cfg, 10) == 1e-2


def test_float16_parameters_get_a_float32_optimizer():
    # Adam's eps (1e-8) and small squared gradients are 0 in float16, so a gradient entry
    # of 0 gives 0 / 0 = NaN at the first step; with float16 parameters the optimizer
    # keeps its state and does its arithmetic in float32 and returns float16 updates
    # equal to the float32 optimizer's, rounded.
    params = {'w': jnp.array([[0.5, -0.25], [1.0, 2.0]], jnp.float16)}
    grads = {'w': jnp.array([[0.0, 1e-4], [-3e-3, 0.5]], jnp.float16)}
    cfg = ConfigDict(base_config().optimizer.to_dict())  # adam
    plain = optim.build(cfg, 10, 1)
    u, _ = plain.update(grads, plain.init(params), params)
    assert not np.all(np.isfinite(np.asarray(u['w'], np.float32)))  # why the wrapper exists
    opt = optim.build(cfg, 10, 1, param_dtype='float16')
    state = opt.init(params)
    chex.assert_type([x for x in jax.tree.leaves(state) if x.ndim], jnp.float32)
    ref = optim.build(cfg, 10, 1)
    ref_state = ref.init(jax.tree.map(lambda a: a.astype(jnp.float32), params))
    for _ in range(3):
        u, state = opt.update(grads, state, params)
        r, ref_state = ref.update(jax.tree.map(lambda a: a.astype(jnp.float32), grads),
                                  ref_state, None)
        chex.assert_trees_all_equal(u, jax.tree.map(lambda a: a.astype(jnp.float16), r),
                                    strict=True)  # strict: the dtypes too


def test_warmup_cosine_closed_form():
    # linear from 0 to the peak over the warm-up, then a half cosine to 0 at the last step
    lr, total, warm = 0.3, 50, 10
    s = optim.schedule('warmup_cosine', lr, total, warm)
    want = [lr * t / warm if t < warm
            else lr * 0.5 * (1 + math.cos(math.pi * min(t - warm, total - warm) / (total - warm)))
            for t in range(total + 5)]
    np.testing.assert_allclose(np.asarray(s(jnp.arange(total + 5))), want, rtol=0, atol=1e-7)


@pytest.mark.parametrize('wd,mom', [(0.0, 0.0), (0.1, 0.0), (0.0, 0.5), (0.1, 0.5)])
def test_make_sgd_closed_form_concrete_and_traced(wd, mom):
    """sgd with L2 decay and heavy-ball momentum: v <- mom v + (g + wd p), p <- p - lr v.
    The same numbers when decay and momentum are traced (a sweep vmaps over them), where
    the transforms stay in even for a zero value."""
    lr, g = 0.1, jnp.array([0.5, -1.0])

    def run(wd, mom):
        opt = optim.make('sgd', lr, weight_decay=wd, momentum=mom)
        p, state = {'w': jnp.array([1.0, 2.0])}, None
        state = opt.init(p)
        for _ in range(3):
            u, state = opt.update({'w': g}, state, p)
            p = {'w': p['w'] + u['w']}
        return p['w']

    p, v = np.array([1.0, 2.0]), np.zeros(2)
    for _ in range(3):
        v = mom * v + (np.asarray(g) + wd * p)
        p = p - lr * v
    np.testing.assert_allclose(np.asarray(run(wd, mom)), p, rtol=1e-6)
    swept = jax.vmap(run)(jnp.array([wd, wd]), jnp.array([mom, mom]))
    np.testing.assert_allclose(np.asarray(swept), np.stack([p, p]), rtol=1e-6)


def test_make_refuses_an_unknown_optimizer():
    with pytest.raises(ValueError, match="unknown optimizer 'lion'; valid: sgd, adam"):
        optim.make('lion', 1e-3)


# The documented ranges: learning_rate a finite number > 0 (or a schedule), weight_decay a
# finite number >= 0 (or a schedule), momentum in [0, 1), grad_clip a finite number >= 0. A
# negative rate or clip norm would train uphill, momentum >= 1 diverges. `make` checks the
# values before it picks the optimizer, so one case per argument and kind of refusal, each
# under a different optimizer name, covers it (the checks themselves: test_checks.py).
@pytest.mark.parametrize('name, kwargs, error, match', [
    ('sgd', {'learning_rate': 0.0}, ValueError,
     r'^optim\.make: learning_rate must be a finite number > 0 or a schedule, got 0\.0$'),
    ('adam', {'learning_rate': '1e-3'}, TypeError, "learning_rate .*got '1e-3'"),
    ('adamw', {'weight_decay': -1e-4}, ValueError,
     r'weight_decay must be a finite number >= 0 .*got -0.0001'),
    ('rmsprop', {'momentum': 1.0}, ValueError, r'momentum must be a number in \[0, 1\).*got 1.0'),
    ('sgd', {'grad_clip': float('inf')}, ValueError,
     'grad_clip must be a finite number >= 0 .*got inf'),
])
def test_make_refuses_values_out_of_range_naming_them(name, kwargs, error, match):
    kwargs = {'learning_rate': 0.1, **kwargs}
    with pytest.raises(error, match=match):
        optim.make(name, **kwargs)


def test_make_accepts_schedules_numpy_scalars_and_uses_a_traced_value_unchecked():
    optim.make('sgd', optax.constant_schedule(0.1), weight_decay=optax.constant_schedule(1e-4))
    optim.make('sgd', np.float32(0.1), weight_decay=jnp.asarray(1e-4), momentum=np.float64(0.9))
    optim.make('rmsprop', 0.1, momentum=None)  # optax's "no momentum"

    # traced: a sweep member's value is used as it is, even a negative rate (one sgd
    # step on zero-decay, no momentum: p - lr * g)
    def step(lr):
        opt = optim.make('sgd', lr)
        p, g = {'w': jnp.array([1.0, 2.0])}, {'w': jnp.array([0.5, -1.0])}
        u, _ = opt.update(g, opt.init(p), p)
        return p['w'] + u['w']
    got = jax.vmap(step)(jnp.array([0.1, -0.1]))
    np.testing.assert_allclose(np.asarray(got), [[0.95, 2.1], [1.05, 1.9]], rtol=1e-6)
