"""ONE scanned epoch and one compiled evaluation; every path (one device, sharded, pmap,
sweeps, the experiment runner) compiles `make_epoch`, differing only in its hooks."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neurokit.rules.base import Rule, check_examples, check_label_range
from neurokit.traced import is_traced
from neurokit.train.state import TrainState, shuffle_key
from neurokit.train.step import make_train_step

NAN_POLICIES = (None, 'stop', 'skip')


def check_batch_size(batch_size):
    """ValueError unless `batch_size` is an integer >= 1."""
    if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1):
        raise ValueError(f'batch_size must be an integer >= 1, got {batch_size!r}')


def epoch_order(key, epoch, num_examples, batch_size):
    """Batch indices of one epoch: a permutation cut into full batches.

    Returns:
      int32 array (steps, batch_size); the last partial batch is dropped.

    Raises:
      ValueError: `batch_size` is not an integer in [1, num_examples] (a larger batch
        would silently run no step at all).
    """
    check_batch_size(batch_size)
    if batch_size > num_examples:
        raise ValueError(f'batch_size={batch_size} exceeds the {num_examples} examples, so an '
                         'epoch would run no step; lower it')
    steps = num_examples // batch_size
    perm = jax.random.permutation(shuffle_key(key, epoch), num_examples)
    return perm[:steps * batch_size].reshape(steps, batch_size)


def check_labels(rule: Rule, params, rule_state, x, y) -> None:
    """`rules.base.check_label_range` for a whole data set, the class count read from
    `rule.predict`'s logits (`jax.eval_shape`: nothing is computed). Traced labels (under
    `jit`) cannot be inspected and are left alone."""
    if is_traced(y) or np.size(y) == 0 or rule.predict is None:
        return
    num_classes = jax.eval_shape(rule.predict, params, rule_state, x[:1]).shape[-1]
    check_label_range(y, num_classes)


class Guard(NamedTuple):
    """What the finiteness guard of `make_epoch(..., nan_policy=...)` saw in one epoch.

    Attributes:
      first_bad: global 0-based step of the first step with a non-finite loss or
        parameters (-1: none).
      loss_bad: whether that step's loss was non-finite.
      bad_groups: bool per parameter group (`param_groups`): non-finite after that step.
      skipped: number of bad steps (under 'skip' they were not applied).
    """
    first_bad: jax.Array
    loss_bad: jax.Array
    bad_groups: jax.Array
    skipped: jax.Array


def make_epoch(rule: Rule, optimizer, batch_size: int, *, nan_policy: str | None = None,
               constrain=None, reduce=None, local_order=None, steps: int | None = None,
               batches: bool = False):
    """`(state, x, y, epoch, start=0, order=None) -> (state, mean metrics)`: one epoch as
    one `lax.scan`, or `steps` of its steps from step `start` of the epoch.

    The data set stays on the device; each step gathers its batch by index from one
    permutation per epoch (`epoch_order`), so every path sees the same data order and
    per-step keys. This is the only training loop: `parallel.mesh.sharded_epoch`,
    `parallel.pmap.pmap_epoch`, `parallel.sweep` and `neurokit.experiment` compile it
    with the hooks below.

    Args:
      rule, optimizer, batch_size: what to step with, and the global batch size.
      nan_policy: None (no guard), 'stop' or 'skip': every step checks the loss and the
        new parameters of each group (`param_groups`) and the metrics gain a `'guard'`
        entry (a `Guard`). Under 'stop' the caller stops after the epoch (the state
        returned then holds the non-finite values and must not be saved); under 'skip' a
        bad step leaves params, optimizer and rule state as they were (the step counter
        and data position still advance), the metrics average the steps taken (NaN when
        none was) and `'skipped_steps'` counts the others.
      constrain: optional `batch -> batch` applied to each gathered batch (the sharded
        path's `parallel.mesh.batch_constraint(mesh)`).
      reduce: optional `(updates, rule_state, metrics) -> same` between the rule and the
        optimizer (the pmap path's cross-device mean); the guard sees the reduced step.
      local_order: optional `(order, batch_size) -> order` picking this device's part of
        every batch (the pmap path's `parallel.pmap.device_slice`).
      steps: None for the whole epoch; else the function runs steps `start` ..
        `start + steps - 1` of epoch `epoch` (`start` may be traced, so one program serves
        every chunk of an epoch; `start + steps` must not pass the epoch's end), the same
        batches and keys as the whole epoch's. The runner compiles chunks of K steps where
        an epoch is too long for one program (`config.steps_per_call`), and passes the
        epoch's `order` (`epoch_order(state.key, epoch, ...)`, computed once per epoch:
        a permutation of a large data set costs more than a few steps) to each chunk.
      batches: `x` and `y` are not the data set but the batches themselves, `(K,
        batch_size, ...)` and `(K, batch_size)`, gathered by the caller in the order
        above (the host feed, `config.feed='host'`: each process reads its rows of every
        batch, so no example crosses devices inside the program); the scan runs the K
        steps in turn, `epoch`, `start` and `order` are unused (the state's step counter
        keys each step), and `constrain` (e.g. decoding stored uint8 pixels) applies to
        each batch.

    Raises:
      ValueError: `x` and `y` do not match (`rules.check_examples`), or, when they are
        concrete (called outside `jit`), a label lies outside [0, num_classes)
        (`check_labels`); under `jit` the labels cannot be inspected. An unknown
        `nan_policy`.
    """
    check_batch_size(batch_size)
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f'nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}')
    train_step = make_train_step(rule, optimizer, reduce=reduce)

    def scan(state, xs, fetch=lambda batch: batch):
        """The steps over `xs` (batches, or index rows that `fetch` turns into batches)."""
        def step(s, item):
            batch = fetch(item)
            return train_step(s, constrain(batch) if constrain is not None else batch)

        if nan_policy is None:
            state, metrics = jax.lax.scan(step, state, xs)
            return state, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)
        return _guarded_scan(step, state, xs, nan_policy)

    def batches_fn(state: TrainState, x, y, epoch=0, start=0, order=None):
        if x.shape[:2] != y.shape[:2] or y.ndim != 2 or y.shape[1] != batch_size:
            raise ValueError(f'batches=True takes x (K, {batch_size}, ...) and y (K, '
                             f'{batch_size}), got {x.shape} and {y.shape}')
        return scan(state, {'x': x, 'y': y})

    def epoch_fn(state: TrainState, x, y, epoch, start=0, order=None):
        x, y = jnp.asarray(x), jnp.asarray(y)  # numpy arrays cannot be indexed by a traced order
        check_examples(x, y)
        check_labels(rule, state.params, state.rule_state, x, y)
        if order is None:
            order = epoch_order(state.key, epoch, x.shape[0], batch_size)
        if steps is not None:
            if steps > order.shape[0]:
                raise ValueError(f'steps={steps} exceeds the {order.shape[0]} steps of an epoch')
            order = jax.lax.dynamic_slice_in_dim(order, start, steps)
        if local_order is not None:
            order = local_order(order, batch_size)

        # the batches are gathered inside the scan (a gathered epoch would double the memory)
        return scan(state, order, lambda idx: {'x': x[idx], 'y': y[idx]})

    return batches_fn if batches else epoch_fn


def _guarded_scan(step, state, order, nan_policy):
    """The scan of `make_epoch` with the finiteness guard (still no host round trips)."""
    n_groups = len(_group_keys(state.params))

    def body(carry, idx):
        s, first_bad, loss_bad, bad_groups, skipped = carry
        new, metrics = step(s, idx)
        loss_ok = jnp.all(jnp.isfinite(metrics['loss']))
        groups_ok = _finite_by_group(new.params)
        ok = loss_ok & jnp.all(groups_ok)
        first = (first_bad < 0) & ~ok
        first_bad = jnp.where(first, s.step, first_bad)
        loss_bad = jnp.where(first, ~loss_ok, loss_bad)
        bad_groups = jnp.where(first, ~groups_ok, bad_groups)
        if nan_policy == 'skip':
            new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, s)
            new = new._replace(step=s.step + 1)
        return (new, first_bad, loss_bad, bad_groups, skipped + (~ok)), (metrics, ok)

    init = (state, jnp.int32(-1), jnp.bool_(False), jnp.zeros((n_groups,), bool), jnp.int32(0))
    (state, first_bad, loss_bad, bad_groups, skipped), (metrics, ok) = jax.lax.scan(
        body, init, order)
    if nan_policy == 'skip':  # average over the steps that were taken (NaN: none was)
        n_ok = jnp.sum(ok.astype(jnp.float32))
        metrics = jax.tree.map(
            lambda m: jnp.where(n_ok > 0, jnp.sum(jnp.where(_bcast(ok, m), m, 0), 0)
                                / jnp.maximum(n_ok, 1.0), jnp.nan), metrics)
        metrics['skipped_steps'] = skipped
    else:
        metrics = jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)
    metrics['guard'] = Guard(first_bad, loss_bad, bad_groups, skipped)
    return state, metrics


def _bcast(ok, m):
    return ok.reshape(ok.shape + (1,) * (m.ndim - 1))


def _group_key(path):
    """A parameter's group: its entry of `params['layers']`, or its top-level key."""
    first = getattr(path[0], 'key', None)
    if first == 'layers' and len(path) > 1 and hasattr(path[1], 'idx'):
        return ('layers', path[1].idx)
    return (jax.tree_util.keystr(path[:1]),)


def _group_keys(params):
    keys = []
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]:
        k = _group_key(path)
        if k not in keys:
            keys.append(k)
    return keys


def _finite_by_group(params):
    groups = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        groups.setdefault(_group_key(path), []).append(jnp.all(jnp.isfinite(leaf)))
    return jnp.stack([jnp.all(jnp.stack(v)) for v in groups.values()])


def param_groups(params, model=None):
    """Names of the parameter groups whose finiteness the guard reports, in its order.

    Each entry of `params['layers']` is one group, named after its model layer (with
    `model`; else `layers[i]`); every other top-level entry (rule-owned parameters) is
    one group.
    """
    names = []
    for key in _group_keys(params):
        if key[0] == 'layers':
            i = key[1]
            layers = getattr(model, 'layers', ())
            names.append(layers[i].name if i < len(layers) else f'layers[{i}]')
        else:
            names.append(key[0])
    return names


def eval_layout(num_examples: int, batch_size: int, shards: int = 1) -> tuple[int, int]:
    """`(rows per shard per step, steps)` of `make_evaluate`: each step takes `shards` x
    `rows` examples (`batch_size`, rounded up to a multiple of `shards`; fewer for a small
    set), and the set is padded to `shards * rows * steps`."""
    per = -(-min(batch_size, num_examples) // shards)
    return per, -(-num_examples // (per * shards))


def make_evaluate(rule: Rule, batch_size: int, shards: int = 1):
    """`(params, rule_state, x, y) -> accuracy`, compiled as one scan over batches.

    With `shards` > 1 the examples are split into `shards` contiguous parts and every
    step's batch takes rows from each part, so that with `x` split over a mesh axis of
    `shards` devices (`parallel.mesh.eval_arrays`, which also pads it) each device
    evaluates its own rows and only the count of correct predictions crosses devices.
    Rows labelled -1 are padding: never correct, not counted. `shards=1` is the same
    computation on one device.

    Raises:
      ValueError: as `make_epoch` (concrete labels outside [0, num_classes) would count
        as wrong without an error), or no examples.
    """
    check_batch_size(batch_size)
    check_batch_size(shards)

    def evaluate(params, rule_state, x, y):
        x, y = jnp.asarray(x), jnp.asarray(y)
        check_examples(x, y)
        if shards == 1:  # a padded set (labels -1) comes from eval_arrays: shards > 1
            check_labels(rule, params, rule_state, x, y)
        n = x.shape[0]
        if n == 0:
            raise ValueError('no examples to evaluate')
        per, nb = eval_layout(n, batch_size, shards)
        pad = shards * per * nb - n
        if pad:
            x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
            y = jnp.pad(y, (0, pad), constant_values=-1)  # padded rows never count as correct
        xs = x.reshape((shards, nb, per) + x.shape[1:])  # part s: rows of device s
        ys = y.reshape((shards, nb, per))

        def body(correct, i):
            xb = xs[:, i].reshape((shards * per,) + x.shape[1:])
            yb = ys[:, i].reshape(shards * per)
            pred = jnp.argmax(rule.predict(params, rule_state, xb), -1)
            return correct + jnp.sum(pred == yb, dtype=jnp.int32), None

        correct, _ = jax.lax.scan(body, jnp.zeros((), jnp.int32), jnp.arange(nb))
        return correct / jnp.sum(y >= 0, dtype=jnp.int32)

    return evaluate
