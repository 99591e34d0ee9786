"""One scanned epoch: every path is `train.make_epoch` with hooks, and computes what it promises.

What an epoch is meant to compute: the steps of `train.make_train_step` over the batches of
`train.epoch_order`, in order (a last partial batch is dropped). The guard (`nan_policy`) only
watches; the sharded, pmap and sweep wrappers only place the same program. The epoch is
compared with that definition for a rule of each kind, the guarded epoch with the plain one
for every registered rule, the wrappers with it for two rules (they are rule-agnostic). Each
rule's plain epoch is compiled and run once per module and shared by these comparisons.
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

# Three steps; 100 is not a multiple of 32, so the epoch also drops the last partial batch.
BATCH, N = 32, 100
# The step-by-step definition is compared for one rule of each kind: a plain Rule (bp),
# a layerwise OptimizerRule (mf, layerwise=True) and one stepping the optimizer T times (ipc).
# The scan itself is rule-agnostic (it scans make_train_step); each rule's step is checked
# by tests/test_conformance.py, and the guard below still runs every rule's epoch.
KINDS = [('bp', False), ('mf', True), ('ipc', False)]
_CACHE = {}


def _cached(what, fn):
    """`fn()`'s value, computed once per module under the key `what`."""
    if what not in _CACHE:
        _CACHE[what] = fn()
    return _CACHE[what]


def _setup(name, layerwise=False):
    """(model, rule, opt, initial state) for the rule, built once per module."""
    def build():
        model = models.mlp((8, 8, 1), 10, hidden=(16,))
        rule, opt = registry.build(name, model, layerwise=layerwise), optax.adam(1e-3)
        return model, rule, opt, train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    return _cached(('setup', name, layerwise), build)


def _epochs(name, digits):
    """The plain and the guarded ('stop') epoch 0 from the initial state, compiled together in
    one program (two independent scans: one compilation instead of two) and run once per
    module: ((state, metrics), (state, metrics))."""
    def run():
        _, rule, opt, state = _setup(name)
        plain = train.make_epoch(rule, opt, BATCH)
        guarded = train.make_epoch(rule, opt, BATCH, nan_policy='stop')
        return jax.jit(lambda s, x, y: (plain(s, x, y, 0), guarded(s, x, y, 0)))(
            state, *_data(digits))
    return _cached(('epochs', name), run)


def _plain(name, digits, layerwise=False):
    """The plain scanned epoch 0 from the initial state: (state, metrics), compiled and run
    once per module and shared by every check that compares with it."""
    if not layerwise:
        return _epochs(name, digits)[0]

    def run():
        _, rule, opt, state = _setup(name, layerwise)
        return jax.jit(train.make_epoch(rule, opt, BATCH))(state, *_data(digits), 0)
    return _cached(('plain', name, layerwise), run)


def _step(name, layerwise=False):
    """The rule's jitted `make_train_step`, one per module."""
    def make():
        _, rule, opt, _ = _setup(name, layerwise)
        return jax.jit(train.make_train_step(rule, opt))
    return _cached(('step', name, layerwise), make)


def _data(digits):
    x, y, _, _ = digits
    return x[:N], y[:N]


def _stepped(step, state, x, y, epoch=0):
    """The definition: `make_train_step` over `epoch_order`'s batches, one call per step."""
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


@pytest.mark.parametrize('name, layerwise', KINDS)
def test_epoch_is_its_steps(name, layerwise, digits):
    x, y = _data(digits)
    _, _, _, state = _setup(name, layerwise)
    plain, metrics = _plain(name, digits, layerwise)
    want, loss = _stepped(_step(name, layerwise), state, x, y)
    assert int(plain.step) == int(want.step) == N // BATCH
    _close(plain.params, want.params)
    np.testing.assert_allclose(float(metrics['loss']), loss, rtol=1e-5)


@pytest.mark.parametrize('name', sorted(registry.RULES))
def test_the_guard_only_watches(name, digits):
    (plain, _), (guarded, gm) = _epochs(name, digits)
    _equal(guarded.params, plain.params)  # the same steps, only watched ('skip': below)
    assert int(gm['guard'].first_bad) == -1 and int(gm['guard'].skipped) == 0


@pytest.mark.parametrize('name', ['bp', 'pc'])
def test_wrappers_place_the_same_epoch(name, digits):
    x, y = _data(digits)
    model, rule, opt, state = _setup(name)
    plain, _ = _plain(name, digits)
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
    skip_epoch = jax.jit(train.make_epoch(rule, opt, BATCH, nan_policy='skip'))  # one compile
    skipped, m = skip_epoch(state, bad, y, 0)
    assert int(m['guard'].first_bad) == 1 and int(m['guard'].skipped) == 1
    assert int(skipped.step) == 3
    plain, _ = _plain('bp', digits)
    clean, _ = skip_epoch(state, x, y, 0)
    _equal(clean.params, plain.params)  # with nothing to skip, the same steps
    step = _step('bp')
    want = state
    for i in (0, 2):
        want, _ = step(want, {'x': x[order[i]], 'y': y[order[i]]})
    _close(skipped.params, want.params, rtol=1e-6)
