"""Hyperparameter sweeps as one compiled program: `vmap` over members.

Each member has its own seed and its own hyperparameter values. The rule and
the optimizer are built INSIDE the vmapped function from the member's traced
values, so N learning rates (or FF's loss sharpness alpha, PC step sizes...) train
together in one `jit`-compiled scanned epoch. A hyperparameter can be traced
when the rule or optimizer only uses it in array arithmetic (optax accepts a
traced learning rate; `optax.inject_hyperparams` also works); one that picks
a shape or a Python branch (hidden width, number of inference steps) cannot
and needs separate runs.

Example:
  >>> def build(hp):
  ...     return bp(model), optax.adam(hp['learning_rate'])
  >>> result = sweep.train(model, build, grid(learning_rate=[1e-3, 3e-3]),
  ...                      x, y, epochs=5, batch_size=64, seeds=[0, 1], x_test=xt, y_test=yt)
  >>> result.test_accuracy          # (epochs, members)
"""
from __future__ import annotations

import itertools
import numbers
from typing import Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from neurokit.rules.base import check_batch
from neurokit.train import loop
from neurokit.train.state import init_state


class SweepResult(NamedTuple):
    """What a sweep returns.

    Attributes:
      state: the final `TrainState`, every leaf with a leading member axis.
      values: the members' hyperparameters, name -> array (members,).
      seeds: int array (members,).
      metrics: name -> array (epochs, members) of epoch-mean training metrics.
      test_accuracy: array (epochs, members), or None without test data.
      traces: how many times the epoch was traced (1: no recompilation).
    """
    state: object
    values: dict
    seeds: np.ndarray
    metrics: dict
    test_accuracy: np.ndarray | None
    traces: int


def grid(seeds: Sequence[int] | None = None, **axes) -> dict:
    """The cartesian product of hyperparameter values, as equal-length lists.

    Args:
      seeds: if given, the product also runs over these seeds (key 'seed').
      **axes: name -> list of values.

    Returns:
      name -> list, one entry per member.

    Raises:
      TypeError: an axis that is not a list; ValueError: an empty one (no members).

    Example:
      >>> grid(learning_rate=[1e-3, 1e-2], seeds=[0, 1])
      {'learning_rate': [0.001, 0.001, 0.01, 0.01], 'seed': [0, 1, 0, 1]}
    """
    axes = {k: _value_list(v, k, 'grid') for k, v in axes.items()}
    if seeds is not None:
        axes['seed'] = _value_list(seeds, 'seeds', 'grid')
    names = list(axes)
    combos = list(itertools.product(*(axes[n] for n in names)))
    return {n: [c[i] for c in combos] for i, n in enumerate(names)}


def _value_list(values, name: str, where: str) -> list:
    """`values` as a non-empty list: an empty axis would leave no members to train."""
    if isinstance(values, (str, bytes)) or not hasattr(values, '__iter__'):
        raise TypeError(f'{where}: {name} must be a list of values, got {values!r}; '
                        f'for one value write [{values!r}]')
    values = list(values)
    if not values:
        raise ValueError(f'{where}: {name} is an empty list; give at least one value')
    return values


def _members(values: Mapping, seeds):
    values = {k: _value_list(v, f'values[{k!r}]', 'sweep.train') for k, v in values.items()}
    if 'seed' in values:
        if seeds is not None:
            raise ValueError("give seeds either in values['seed'] or as seeds=, not both")
        seeds = values.pop('seed')
    sizes = {len(v) for v in values.values()}
    n = sizes.pop() if sizes else None
    if sizes:
        raise ValueError(f'hyperparameter lists differ in length: '
                         f'{ {k: len(v) for k, v in values.items()} }')
    if seeds is None:
        seeds = [0] * (n or 1)
    elif isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = [seeds] * (n or 1)
    seeds = _value_list(seeds, 'seeds', 'sweep.train')
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, numbers.Integral)]
    if bad:  # np.int64 would truncate 1.5 to 1, silently another member's seed
        raise TypeError(f'sweep.train: seeds must be integers, got {bad[0]!r}')
    if n is None:
        n = len(seeds)
    if len(seeds) != n:
        raise ValueError(f'sweep.train: {len(seeds)} seeds for {n} members; give one seed per '
                         'member, or one int for all')
    arrays = {}
    for k, v in values.items():
        try:
            arrays[k] = jnp.asarray(np.asarray(v, np.float32))
        except (TypeError, ValueError):
            raise TypeError(f'sweep.train: values[{k!r}] must be a list of numbers (one per '
                            f'member), got {v!r}') from None
    return arrays, np.asarray(seeds, np.int64), n


def make_sweep(model, build_fn: Callable, batch_size: int, eval_batch_size: int = 1000,
               nan_policy: str | None = None):
    """The vmapped pieces of a sweep, for callers that drive the epochs themselves.

    Args:
      model: the `Model` (shared by all members: shapes cannot be swept).
      build_fn: `hp -> (rule, optimizer)`, where `hp` maps names to scalar
        (traced) values of one member.
      batch_size, eval_batch_size: as in a config.
      nan_policy: the finiteness guard of `loop.make_epoch` (None, 'stop', 'skip'),
        per member: its `'guard'` metric comes back with the member axis first, and under
        'skip' a member's bad steps are skipped in that member alone.

    Returns:
      `(init, epoch, evaluate)`: `init(keys, values) -> state`,
      `epoch(state, values, x, y, epoch) -> (state, metrics)`,
      `evaluate(state, values, x, y) -> accuracy (members,)`; all mapped over
      members (epoch and evaluate with `vmap`, init with `lax.map`), none
      jitted (wrap them in `jax.jit`).
    """
    def member_init(key, hp):
        rule, opt = build_fn(hp)
        return init_state(key, model, rule, opt)

    def member_epoch(state, hp, x, y, epoch):
        rule, opt = build_fn(hp)
        return loop.make_epoch(rule, opt, batch_size, nan_policy=nan_policy)(state, x, y, epoch)

    def member_eval(state, hp, x, y):
        rule, _ = build_fn(hp)
        return loop.make_evaluate(rule, eval_batch_size)(state.params, state.rule_state, x, y)

    def init(keys, values):
        # lax.map: the numbers of a vmapped init (random bits do not depend on
        # batching) at about half its compile time.
        return jax.lax.map(lambda kv: member_init(*kv), (keys, values))

    return (init,
            jax.vmap(member_epoch, (0, 0, None, None, None)),
            jax.vmap(member_eval, (0, 0, None, None)))


def train(model, build_fn: Callable, values: Mapping[str, Sequence], x, y, epochs: int,
          batch_size: int, seeds=None, x_test=None, y_test=None,
          eval_batch_size: int = 1000) -> SweepResult:
    """Trains one member per entry of `values` as one compiled program.

    Args:
      model: the `Model` all members share.
      build_fn: `hp -> (rule, optimizer)`; `hp` is a dict of one member's scalar
        values (tracers). Build the rule and optimizer from them, e.g.
        `lambda hp: (ff(model, alpha=hp['alpha']), optax.adam(hp['lr']))`.
      values: name -> list of values, one per member (see `grid`); may hold
        'seed'. Empty: members differ by seed only.
      x, y: training data (on device; shared by all members).
      epochs, batch_size: training length and batch size.
      seeds: int or list of per-member seeds (default 0), unless in `values`.
      x_test, y_test: optional test data, evaluated after every epoch.
      eval_batch_size: evaluation batch size.

    Returns:
      A `SweepResult`; per-member metrics are arrays (epochs, members).

    Raises:
      TypeError, ValueError: a value list that is empty, not a list or not numbers, lists
        of different lengths, seeds that are not one integer per member, or data the
        model cannot take (`neurokit.rules.check_batch`: shapes, integer labels in
        [0, num_classes)).
    """
    arrays, seeds_arr, n = _members(values, seeds)
    # concrete here, so labels outside [0, C) are caught; the checked arrays are on the
    # device, so the epochs reuse them instead of copying numpy data again
    x, y = (check_batch(model, {'x': x, 'y': y})[k] for k in ('x', 'y'))
    if x_test is not None:
        x_test, y_test = (check_batch(model, {'x': x_test, 'y': y_test})[k] for k in ('x', 'y'))
    if not arrays:
        arrays = {'_member': jnp.zeros((n,), jnp.float32)}  # vmap needs one mapped input
    init, epoch_fn, eval_fn = make_sweep(model, build_fn, batch_size, eval_batch_size)
    traces = []

    def counted_epoch(*args):
        traces.append(1)  # runs at trace time only
        return epoch_fn(*args)

    keys = jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds_arr])
    state = jax.jit(init)(keys, arrays)
    epoch_c = jax.jit(counted_epoch, donate_argnums=0)
    eval_c = jax.jit(eval_fn) if x_test is not None else None
    history, accs = [], []
    for e in range(epochs):
        state, metrics = epoch_c(state, arrays, x, y, e)
        history.append(jax.device_get(metrics))
        if eval_c is not None:
            accs.append(np.asarray(eval_c(state, arrays, x_test, y_test)))
    metrics = {k: np.stack([np.asarray(h[k]) for h in history]) for k in history[0]} \
        if history else {}
    return SweepResult(state, {k: np.asarray(v) for k, v in arrays.items() if k != '_member'},
                       seeds_arr, metrics, np.stack(accs) if accs else None, len(traces))
