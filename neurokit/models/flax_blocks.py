"""Flax modules as neurokit blocks: the researcher's own model, trained by any rule.

A neurokit model is a sequence of blocks (`Model.layers`); a block is a pure `init(key)
-> params` / `apply(params, x) -> y` pair with per-example `in_shape` and `out_shape`.
neurokit's own dense and conv layers are blocks; `from_linen` makes one from a
`flax.linen` Module, `from_nnx` from a `flax.nnx` Module, and `from_flax` builds a model
from a list of either:

    >>> import flax.linen as nn
    >>> model = from_flax([nn.Sequential([nn.Conv(16, (3, 3)), nn.relu]),
    ...                    ResidualBlock(16),  # the researcher's own module, unmodified
    ...                    nn.Sequential([lambda x: x.mean((1, 2)), nn.Dense(10)])],
    ...                   input_shape=(28, 28, 1), num_classes=10)

Rules see every block's output (mono-forward's and forward-forward's local losses,
predictive coding's value nodes, DFA's projected error), and, through
`apply_hooked`, every Dense, DenseGeneral and Conv call inside a block (its `Site`s):
the feedback-alignment rules replace the backward pass of those maps alone, while
normalisation, attention's softmax and residual adds backpropagate as usual. The
interception is `flax.linen.intercept_methods` for linen; for nnx, each linear
sub-module of the block's graph is called through the hook. No layer class of the
model changes.

A linen block may keep BatchNorm statistics (the 'batch_stats' collection): its params
are then the whole variables dict `{'params': ..., 'batch_stats': ...}`, and it must be
called with `train=True` (normalise by the batch's statistics) or `train=False` (by the
running averages). neurokit sets every `nn.BatchNorm`'s mode itself (the module's own
`use_running_average` is overridden), so the model needs no `train` argument. The
statistics are not trained: the training step overwrites them with `update_stats`'s
(`models.model.stats_pass`). Any other collection, and BatchNorm in an nnx block, is
refused with a line that names GroupNorm and LayerNorm.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from neurokit.checks import positive_int, positive_ints
from neurokit.models.layers import Site
from neurokit.models.model import Model, _shapes, sequential


class FlaxBlock(NamedTuple):
    """A Flax module as a block (see the module docstring).

    Attributes:
      name: the block's name ('block_3' unless given).
      kind: 'linen' or 'nnx'.
      init: `key -> params`, the module's 'params' collection (a nested dict).
      apply: `(params, x) -> y` on a batch.
      in_shape, out_shape: per-example shapes.
      sites: the Dense/DenseGeneral/Conv calls inside, in call order.
      hooked: `(params, x, hook) -> y`: `apply` with every site computed by
        `hook(site, fn, q, x)` (see `Site`).
      param_shapes: `((path, shape), ...)` of `init`'s arrays (for `check_layer_count`).
      module: the module it was made from.
      stateful: whether its params hold BatchNorm statistics beside the parameters
        (`{'params': ..., 'batch_stats': ...}`); then `apply` and `apply_hooked` need
        `train=`, and `update_stats(params, x)` gives the output and the statistics of a
        training pass.
      update_stats: `(params, x) -> (y, batch_stats)`: one training-mode call (stateful
        blocks only).
    """
    name: str
    kind: str
    init: Callable
    apply: Callable
    in_shape: tuple
    out_shape: tuple
    sites: tuple
    hooked: Callable
    param_shapes: tuple
    module: Any
    stateful: bool = False
    update_stats: Callable | None = None

    def __call__(self, params, x, train=None):
        return self.apply(params, x, train)

    def apply_hooked(self, params, x, hook, train=None):
        return self.hooked(params, x, hook, train)

    def __hash__(self):  # modules are not hashable; a block is one object
        return id(self)

    def __eq__(self, other):
        return self is other


def _linen_linear():
    import flax.linen as nn
    return (nn.Dense, nn.DenseGeneral, nn.Conv)


def _fans(module, kernel_shape, kind) -> tuple[int, int]:
    """`(fan_in, fan_out)`: the kernel's size over its input axes, and over its output axes
    (times the window, for a conv)."""
    import flax.linen as nn
    size = int(math.prod(kernel_shape))
    if isinstance(module, nn.DenseGeneral):
        axis = module.axis if isinstance(module.axis, tuple) else (module.axis,)
        fan_in = int(math.prod(kernel_shape[:len(axis)]))
        return fan_in, size // fan_in
    if kind == 'dense':
        return int(kernel_shape[0]), int(kernel_shape[-1])
    return int(math.prod(kernel_shape[:-1])), int(math.prod(kernel_shape[:-2])) * int(kernel_shape[-1])


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f'{type(err).__name__}: {text[0] if text else ""}'


def _abstract_input(in_shape, dtype):
    return jax.ShapeDtypeStruct((1,) + tuple(in_shape), dtype)


def _refuse_state(name, module, collections, what='linen blocks keep no state but '
                  "BatchNorm's batch_stats"):
    raise ValueError(
        f'block {name} ({type(module).__name__}) keeps state besides its parameters '
        f'({", ".join(sorted(collections))}); {what}: use nn.GroupNorm or nn.LayerNorm '
        'there')


def _train_flag(name, train):
    """`train` as a bool; a one-line ValueError for None (a stateful block's mode)."""
    if train is None:
        raise ValueError(f'block {name} keeps BatchNorm statistics, so it must be called with '
                         'train=True (a rule\'s step: batch statistics) or train=False (predict: '
                         'running averages); a rule that walks the blocks passes it through '
                         'models.call_block')
    return bool(train)


def _batch_norm_mode(train):
    """A linen interceptor that runs every `nn.BatchNorm` with `use_running_average = not
    train`, whatever the module was built or called with."""
    import flax.linen as nn

    def intercept(next_fun, args, kwargs, ctx):
        m = ctx.module
        if ctx.method_name != '__call__' or not isinstance(m, nn.BatchNorm):
            return next_fun(*args, **kwargs)
        kwargs = {k: v for k, v in kwargs.items() if k != 'use_running_average'}
        own = m.use_running_average
        object.__setattr__(m, 'use_running_average', None)  # the call's value decides
        try:
            return next_fun(args[0], use_running_average=not train, **kwargs)
        finally:
            object.__setattr__(m, 'use_running_average', own)

    return intercept


def from_linen(module, in_shape, name: str = 'block', dtype=jnp.float32) -> FlaxBlock:
    """A `flax.linen` Module as a block taking per-example inputs of shape `in_shape`.

    Raises:
      ValueError: the module cannot take inputs of that shape (its own error's first
        line is quoted), or it keeps state besides its parameters and BatchNorm's
        'batch_stats'.
    """
    import flax.linen as nn
    if not isinstance(module, nn.Module):
        raise TypeError(f'block {name}: expected a flax.linen Module, got {type(module).__name__}')
    in_shape = positive_ints(in_shape, 'in_shape', f'block {name}')
    x = _abstract_input(in_shape, dtype)
    try:
        with nn.intercept_methods(_batch_norm_mode(True)):
            variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
    except Exception as err:  # noqa: BLE001 - the module's own error, quoted in one line
        raise ValueError(f'block {name} ({type(module).__name__}) cannot take inputs of shape '
                         f'{in_shape} ({_first_line(err)}); fix the block or the input shape '
                         'before it') from None
    extra = set(variables) - {'params', 'batch_stats'}
    if extra:
        _refuse_state(name, module, extra)
    stateful = 'batch_stats' in variables
    prefix = ('params',) if stateful else ()
    linear = _linen_linear()
    found: dict = {}

    def record(next_fun, args, kwargs, ctx):
        m = ctx.module
        if ctx.method_name == '__call__' and isinstance(m, linear) and not m.is_initializing():
            site = '/'.join(m.path)
            if site not in found:
                kernel = m.variables['params']['kernel']
                kind = 'conv' if isinstance(m, nn.Conv) else 'dense'
                found[site] = Site(site, prefix + tuple(m.path), 'kernel',
                                   *_fans(m, kernel.shape, kind), kind)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(_batch_norm_mode(False)), nn.intercept_methods(record):
        out = jax.eval_shape(module.apply, variables, x)
    if not hasattr(out, 'shape'):
        raise ValueError(f'block {name} ({type(module).__name__}) returns '
                         f'{type(out).__name__}, not one array; a block maps an array to an '
                         'array')
    abstract = variables if stateful else variables.get('params', {})

    def init(key):
        with nn.intercept_methods(_batch_norm_mode(True)):
            made = module.init(key, jnp.zeros((1,) + in_shape, dtype))
        if stateful:
            return {'params': dict(made['params']), 'batch_stats': dict(made['batch_stats'])}
        return dict(made.get('params', {}))

    def run(params, x, train, interceptor=None):
        """The module on `x`; a stateful block's statistics are read, never written."""
        if not stateful:
            return module.apply({'params': params}, x)
        mode = _batch_norm_mode(_train_flag(name, train))
        with nn.intercept_methods(mode):
            if interceptor is None:
                return module.apply(params, x, mutable=['batch_stats'])[0]
            with nn.intercept_methods(interceptor):
                return module.apply(params, x, mutable=['batch_stats'])[0]

    def apply(params, x, train=None):
        return run(params, x, train)

    def update_stats(params, x):
        with nn.intercept_methods(_batch_norm_mode(True)):
            y, variables = module.apply(params, x, mutable=['batch_stats'])
        return y, dict(variables['batch_stats'])

    def hooked(params, x, hook, train=None):
        busy = []  # a site's own computation (a detached copy of its module) is not hooked

        def intercept(next_fun, args, kwargs, ctx):
            m = ctx.module
            if (busy or ctx.method_name != '__call__' or not isinstance(m, linear)
                    or m.is_initializing()):
                return next_fun(*args, **kwargs)
            detached = m.clone(parent=None)

            def fn(q, h):
                busy.append(1)
                try:
                    return detached.apply({'params': q}, h)
                finally:
                    busy.pop()

            return hook(found['/'.join(m.path)], fn, dict(m.variables['params']), *args,
                        **kwargs)

        if stateful:
            return run(params, x, train, intercept)
        with nn.intercept_methods(intercept):
            return module.apply({'params': params}, x)

    return FlaxBlock(name, 'linen', init, apply, tuple(in_shape), tuple(out.shape[1:]),
                     tuple(found.values()), hooked, _shapes(abstract), module, stateful,
                     update_stats if stateful else None)


def from_nnx(module, in_shape, name: str = 'block', dtype=jnp.float32) -> FlaxBlock:
    """A `flax.nnx` Module as a block (`nnx_blocks.from_nnx`). Give a factory `lambda rngs:
    MyModule(..., rngs=rngs)` for `init(key)` to draw new parameters from each key; a module
    instance cannot re-draw its own (nnx keeps no initialisers), so its current parameters
    are then every seed's (with a warning)."""
    from neurokit.models import nnx_blocks
    return nnx_blocks.from_nnx(module, in_shape, name, dtype)


def from_flax(modules, input_shape, num_classes, dtype=jnp.float32, names=None) -> Model:
    """A `Model` whose blocks are `modules` (linen or nnx Modules, or neurokit layers),
    each block's input shape the previous one's output shape.

    Args:
      modules: a sequence of blocks: `flax.linen.Module`, `flax.nnx.Module`, or a block
        neurokit already has (`neurokit.models.dense(...)`, a `FlaxBlock`).
      input_shape: per-example input shape, e.g. (28, 28, 1).
      num_classes: the last block must output `(num_classes,)` logits.
      dtype: the dtype of the inputs the blocks are traced with.
      names: optional block names (default 'block_0', 'block_1', ...).

    Raises:
      ValueError: a block cannot take its input's shape, the last block does not output
        `num_classes` logits, or a block keeps state other than linen BatchNorm's
        statistics; each in one line.
    """
    modules = list(modules)
    if not modules:
        raise ValueError('from_flax: modules is empty; give at least one block (the last one '
                         'outputs the logits)')
    shape = positive_ints(input_shape, 'input_shape', 'from_flax')
    num_classes = positive_int(num_classes, 'num_classes', 'from_flax')
    names = list(names) if names is not None else [f'block_{i}' for i in range(len(modules))]
    if len(names) != len(modules):
        raise ValueError(f'from_flax: {len(names)} names for {len(modules)} modules')
    blocks = []
    for module, name in zip(modules, names):
        block = as_block(module, shape, name, dtype)
        blocks.append(block)
        shape = tuple(block.out_shape)
    if shape != (num_classes,):
        raise ValueError(f'the last block ({names[-1]}) outputs shape {shape} per example but '
                         f'the data has {num_classes} classes; end the model with a block '
                         f'that outputs {num_classes} logits (e.g. nn.Dense({num_classes}) '
                         'after flattening or pooling)')
    return sequential(blocks)


def as_block(module, in_shape, name, dtype=jnp.float32):
    """`module` as a block with inputs of shape `in_shape` (see `from_flax`)."""
    import flax.linen as nn
    if isinstance(module, nn.Module):
        return from_linen(module, in_shape, name, dtype)
    try:
        from flax import nnx
        if isinstance(module, nnx.Module):
            return from_nnx(module, in_shape, name, dtype)
    except ImportError:  # pragma: no cover - flax without nnx
        pass
    if all(hasattr(module, a) for a in ('init', 'in_shape', 'out_shape', 'apply_hooked')):
        if tuple(module.in_shape) != tuple(in_shape):
            raise ValueError(f'block {name} ({module.name}) takes inputs of shape '
                             f'{tuple(module.in_shape)}, but the block before it outputs '
                             f'{tuple(in_shape)}')
        return module
    raise TypeError(f'block {name}: expected a flax.linen or flax.nnx Module or a neurokit '
                    f'layer, got {type(module).__name__}')
