"""One scanned epoch: every path is `train.make_epoch` with hooks, and computes what it promises.

What an epoch is meant to compute: the steps of `train.make_train_step` over the batches of
`train.epoch_order`, in order. The guard (`nan_policy`) only watches; the sharded, pmap and
sweep wrappers only place the same program. Each is compared with that definition, for every
registered rule (the guard) or for rules of each kind (the wrappers, which are rule-agnostic).
"""
import jax
import numpy as np
import optax
import pytest

from neurokit import models, train
from neurokit.parallel import mesh as mesh_lib
from neurokit.parallel import pmap as pmap_lib
from neurokit.parallel import sweep as sweep_lib
from neurokit.rules import registry

BATCH, N = 32, 96  # three steps


def _setup(name):
    model = models.mlp((8, 8, 1), 10, hidden=(16,))
    rule, opt = registry.build(name, model), optax.adam(1e-3)
    return model, rule, opt, train.init_state(jax.random.PRNGKey(0), model, rule, opt)


def _data(digits):
    x, y, _, _ = digits
    return x[:N], y[:N]


def _stepped(rule, opt, state, x, y, epoch=0):
    """The definition: `make_train_step` over `epoch_order`'s batches, one call per step."""
    step = jax.jit(train.make_train_step(rule, opt))
    losses = []
    for idx in np.asarray(train.epoch_order(state.key, epoch, x.shape[0], BATCH)):
        state, m = step(state, {'x': x[idx], 'y': y[idx]})
        losses.append(float(m['loss']))
    return state, float(np.mean(losses))


def _close(a, b, rtol=1e-5, atol=1e-6):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


def _equal(a, b):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.mark.parametrize('name', sorted(registry.RULES))
def test_epoch_is_its_steps_and_the_guard_only_watches(name, digits):
    x, y = _data(digits)
    _, rule, opt, state = _setup(name)
    plain, metrics = jax.jit(train.make_epoch(rule, opt, BATCH))(state, x, y, 0)
    want, loss = _stepped(rule, opt, state, x, y)
    assert int(plain.step) == int(want.step) == N // BATCH
    _close(plain.params, want.params)
    np.testing.assert_allclose(float(metrics['loss']), loss, rtol=1e-5)
    guarded, gm = jax.jit(train.make_epoch(rule, opt, BATCH, nan_policy='stop'))(state, x, y, 0)
    _equal(guarded.params, plain.params)  # the same steps, only watched ('skip': below)
    assert int(gm['guard'].first_bad) == -1 and int(gm['guard'].skipped) == 0


@pytest.mark.parametrize('name', ['bp', 'pc'])
def test_wrappers_place_the_same_epoch(name, digits):
    x, y = _data(digits)
    model, rule, opt, state = _setup(name)
    plain, _ = jax.jit(train.make_epoch(rule, opt, BATCH))(state, x, y, 0)
    sharded, _ = mesh_lib.sharded_epoch(rule, opt, BATCH, mesh_lib.make_mesh(1),
                                        donate=False)(state, x, y, 0)
    # XLA may fuse a program compiled for a mesh differently: float rounding, no more
    _close(sharded.params, plain.params, rtol=1e-6, atol=1e-9)
    rstate, _ = pmap_lib.pmap_epoch(rule, opt, BATCH, jax.devices()[:1])(
        pmap_lib.replicate(state, jax.devices()[:1]), x, y, 0)
    _close(pmap_lib.unreplicate(rstate).params, plain.params, rtol=1e-6, atol=1e-9)
    init, epoch_fn, _ = sweep_lib.make_sweep(model, lambda hp: (rule, opt), BATCH)
    members = jax.tree.map(lambda a: a[None], state)
    swept, _ = jax.jit(epoch_fn)(members, {'_': np.zeros((1,), np.float32)}, x, y, 0)
    # vmap batches the matmuls over members, which rounds differently again (Adam's
    # normalisation then magnifies a last-bit difference of a tiny gradient)
    _close(jax.tree.map(lambda a: a[0], swept.params), plain.params, rtol=1e-5, atol=1e-8)


def test_skip_leaves_a_bad_step_out(digits):
    # A NaN batch in the middle: under 'skip' the epoch equals the two good steps alone.
    x, y = _data(digits)
    _, rule, opt, state = _setup('bp')
    order = np.asarray(train.epoch_order(state.key, 0, N, BATCH))
    bad = np.asarray(x).copy()
    bad[order[1]] = np.nan
    skipped, m = jax.jit(train.make_epoch(rule, opt, BATCH, nan_policy='skip'))(state, bad, y, 0)
    assert int(m['guard'].first_bad) == 1 and int(m['guard'].skipped) == 1
    assert int(skipped.step) == 3
    plain, _ = jax.jit(train.make_epoch(rule, opt, BATCH))(state, x, y, 0)
    clean, _ = jax.jit(train.make_epoch(rule, opt, BATCH, nan_policy='skip'))(state, x, y, 0)
    _equal(clean.params, plain.params)  # with nothing to skip, the same steps
    step = jax.jit(train.make_train_step(rule, opt))
    want = state
    for i in (0, 2):
        want, _ = step(want, {'x': x[order[i]], 'y': y[order[i]]})
    _close(skipped.params, want.params, rtol=1e-6)
