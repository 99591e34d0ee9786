"""`flax.nnx` Modules as neurokit blocks (see `flax_blocks` for blocks and sites).

An nnx Module is an object holding its parameters; a block is a pure pair `init(key) ->
params` / `apply(params, x)`. `from_nnx` splits the module once into a static graphdef
and its `nnx.Param` values (a nested plain dict, `nnx.to_pure_dict`), and `apply` rebuilds
a fresh copy with `nnx.merge(graphdef, params)` at every call, so no state is shared.

Sites: every `nnx.Linear`, `nnx.LinearGeneral` and `nnx.Conv` called inside the block.
`hooked` makes each such sub-module of the per-call copy (never the user's module, nor any
class of it) an instance of a cached subclass whose `__call__` goes through the hook; the
site's `fn(q, h)` merges a detached copy of the sub-module (its own class, its own graphdef)
with `q`, so it is a pure function of `(q, h)` with the sub-module's exact semantics.
"""
from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp

from neurokit.checks import positive_ints
from neurokit.models.flax_blocks import (FlaxBlock, _abstract_input, _first_line,
                                         _refuse_state)
from neurokit.models.layers import Site
from neurokit.models.model import _shapes


def _linear():
    from flax import nnx
    return (nnx.Linear, nnx.LinearGeneral, nnx.Conv)


def _fans(m) -> tuple[int, int]:
    """`(fan_in, fan_out)` of a linear sub-module: inputs per output unit, outputs per input
    unit (for a conv, the window times the output channels)."""
    from flax import nnx
    shape = tuple(m.kernel.shape)
    if isinstance(m, nnx.LinearGeneral):
        return int(math.prod(m.in_features)), int(math.prod(m.out_features))
    if isinstance(m, nnx.Conv):
        return int(math.prod(shape[:-1])), int(math.prod(shape[:-2])) * int(shape[-1])
    return int(shape[0]), int(shape[-1])


_HOOKABLE: dict = {}  # a Linear/Conv class -> its subclass whose calls go through a hook


def _hookable(cls):
    """A subclass of `cls` (made once per class) whose `__call__` is the instance's
    `_neurokit_call`: set on the per-call copies only, so `cls` itself never changes."""
    if cls not in _HOOKABLE:
        def __call__(self, *args, **kwargs):
            return self._neurokit_call(*args, **kwargs)
        _HOOKABLE[cls] = type(cls.__name__, (cls,), {'__call__': __call__,
                                                     '__module__': cls.__module__})
    return _HOOKABLE[cls]


def _template(module, name):
    """`(module, factory)`: the module to read the graph from (abstract for a factory),
    and the factory `rngs -> Module` or None for an instance."""
    from flax import nnx
    if isinstance(module, nnx.Module):
        return module, None
    if not callable(module):
        raise TypeError(f'block {name}: expected a flax.nnx Module or a factory `rngs -> '
                        f'Module`, got {type(module).__name__}')
    try:
        built = nnx.eval_shape(lambda: module(nnx.Rngs(0)))
    except Exception as err:  # noqa: BLE001 - the factory's own error, quoted in one line
        raise ValueError(f'block {name}: the factory failed with nnx.Rngs(0) '
                         f'({_first_line(err)}); give `lambda rngs: MyModule(..., rngs=rngs)`'
                         ) from None
    if not isinstance(built, nnx.Module):
        raise TypeError(f'block {name}: the factory returned {type(built).__name__}, not a '
                        'flax.nnx Module')
    return built, module


def from_nnx(module, in_shape, name: str = 'block', dtype=jnp.float32) -> FlaxBlock:
    """A `flax.nnx` Module as a block taking per-example inputs of shape `in_shape`.

    Seeding: an nnx Module has drawn its parameters when it was built and keeps no
    initialisers (flax 0.12's `nnx.Linear` stores none), so it cannot re-draw them. Pass a
    factory, `from_nnx(lambda rngs: MyModule(..., rngs=rngs), in_shape)`: `init(key)` then
    builds the module with `nnx.Rngs(key)` and returns its parameters (new ones per key,
    the same ones for the same key, under `jax.jit` too). Given an instance, `init` returns
    the instance's parameters as they are now, for every key (with a warning).

    RNG state (`nnx.Rngs` kept by a module, `nnx.Dropout` built with `rngs`) is kept fixed:
    accepted if the call draws no random numbers (Dropout with `deterministic=True`), refused
    otherwise, since a block's call takes no key and would repeat one mask forever.

    Raises:
      ValueError: the module cannot take inputs of that shape (its own error's first line
        quoted), keeps state besides its parameters (BatchNorm), or draws random numbers.
    """
    from flax import nnx
    template, factory = _template(module, name)
    in_shape = positive_ints(in_shape, 'in_shape', f'block {name}')
    what = f'block {name} ({type(template).__name__})'
    graphdef, params, rngstate, other = nnx.split(template, nnx.Param, nnx.RngState, ...)
    if len(jax.tree.leaves(other)):
        _refuse_state(name, template, {type(v).__name__ for v in jax.tree.leaves(
            other, is_leaf=lambda v: isinstance(v, nnx.Variable))},
            'nnx blocks keep no state (BatchNorm statistics: write that block in linen, '
            'whose BatchNorm neurokit trains)')
    if factory is not None and len(jax.tree.leaves(rngstate)):  # concrete keys to keep
        rngstate = nnx.split(factory(nnx.Rngs(0)), nnx.Param, nnx.RngState, ...)[2]
    rest = nnx.to_pure_dict(rngstate)
    params = nnx.to_pure_dict(params)
    linear = _linear()
    sites, fns = [], {}
    for path, sub in _subs(template, linear):
        site_name = '/'.join(str(k) for k in path)
        kind = 'conv' if isinstance(sub, nnx.Conv) else 'dense'
        sites.append(Site(site_name, tuple(path), 'kernel', *_fans(sub), kind))
        fns[site_name] = _site_fn(*nnx.split(sub, nnx.Param, ...))

    def run(params, x, hook):
        """The module's call on a fresh copy, each site through `hook`; and the copy."""
        copy = nnx.merge(graphdef, params, rest)
        for (_, sub), site in zip(_subs(copy, linear), sites):
            def call(*args, _sub=sub, _site=site, **kwargs):
                q = nnx.to_pure_dict(nnx.state(_sub, nnx.Param))
                return hook(_site, fns[_site.name], q, *args, **kwargs)
            object.__setattr__(sub, '_neurokit_call', call)
            object.__setattr__(sub, '__class__', _hookable(type(sub)))
        return copy(x), copy

    called, drew = [], []

    def probe(params, x):
        def record(site, fn, q, *args, **kwargs):
            called.append(site) if site not in called else None
            return fn(q, *args, **kwargs)
        y, copy = run(params, x, record)
        after = jax.tree.leaves(nnx.to_pure_dict(nnx.state(copy, nnx.RngState)))
        drew.append(any(a is not b for a, b in zip(after, jax.tree.leaves(rest))))
        return y

    try:
        out = jax.eval_shape(probe, params, _abstract_input(in_shape, dtype))
    except Exception as err:  # noqa: BLE001 - the module's own error, quoted in one line
        raise ValueError(f'{what} cannot take inputs of shape {in_shape} ({_first_line(err)}); '
                         'fix the block or the input shape before it') from None
    if drew[0]:
        raise ValueError(f'{what} draws random numbers in its call (Dropout?); a block takes '
                         'no key: build Dropout with deterministic=True or leave it out')
    if not hasattr(out, 'shape'):
        raise ValueError(f'{what} returns {type(out).__name__}, not one array; a block maps an '
                         'array to an array')
    if factory is None:
        warnings.warn(f'{what}: an nnx Module instance cannot re-draw its parameters, so '
                      'init(key) returns the same ones for every key; pass a factory '
                      '`lambda rngs: MyModule(..., rngs=rngs)` for per-key parameters',
                      stacklevel=2)

    def init(key):
        if factory is None:
            return jax.tree.map(jnp.asarray, params)
        return nnx.to_pure_dict(nnx.state(factory(nnx.Rngs(key)), nnx.Param))

    def apply(params, x, train=None):
        del train  # stateless: one mode
        return nnx.merge(graphdef, params, rest)(x)

    def hooked(params, x, hook, train=None):
        del train
        return run(params, x, hook)[0]

    return FlaxBlock(name, 'nnx', init, apply, tuple(in_shape), tuple(out.shape[1:]),
                     tuple(called), hooked, _shapes(params), module)


def _subs(module, linear):
    """`[(path, sub-module)]` of the Linear/LinearGeneral/Conv nodes of `module`'s graph, in
    graph order (the same for the template and every copy merged from its graphdef)."""
    from flax import nnx
    return [(p, m) for p, m in nnx.iter_graph(module) if isinstance(m, linear)]


def _site_fn(graphdef, _params, rest):
    """`fn(q, h, ...)`: a detached copy of one linear sub-module (its own class) holding
    `q`, called on `h`: a pure function of its arguments."""
    from flax import nnx
    rest = nnx.to_pure_dict(rest)

    def fn(q, h, *args, **kwargs):
        return nnx.merge(graphdef, q, rest)(h, *args, **kwargs)
    return fn
