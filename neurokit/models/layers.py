"""Layers as pure functions: the unit every learning rule works on.

A `Layer` is a linear map (dense or convolution) followed by a fixed
post-processing (activation, then optional max-pooling). Rules that work layer
by layer (forward-forward, mono-forward, predictive coding, feedback alignment)
need the two halves separately: feedback alignment replaces the backward pass
of `linear` only, predictive coding predicts with the whole layer.

Conventions: dense weights are `(n_in, n_out)` and act as `x @ w + b`; conv
kernels are `(*window, c_in, c_out)` on channel-last inputs (`NWC` or `NHWC`).
"""
from __future__ import annotations

import itertools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neurokit.checks import positive_int, positive_ints

ACTIVATIONS: dict[str, Callable] = {
    'relu': jax.nn.relu,
    'gelu': jax.nn.gelu,
    'tanh': jnp.tanh,
    'elu': jax.nn.elu,
    'sigmoid': jax.nn.sigmoid,
    'leaky_relu': jax.nn.leaky_relu,
    'silu': jax.nn.silu,
    'identity': lambda z: z,
}


def activation_fn(name: str) -> Callable:
    """The activation called `name`; ValueError naming the valid ones otherwise."""
    if name not in ACTIVATIONS:
        raise ValueError(f'unknown activation {name!r}; valid: {", ".join(ACTIVATIONS)}')
    return ACTIVATIONS[name]

INITS = ('lecun_normal', 'he_normal', 'xavier_uniform', 'torch')
PADDINGS = ('SAME', 'VALID')


class Layer(NamedTuple):
    """One layer: `post(linear(params, x))`.

    Attributes:
      name: unique name, e.g. 'dense_0'.
      kind: 'dense' or 'conv'.
      init: `key -> {'w': ..., 'b': ...}`.
      linear: `(params, x) -> z`, the pre-activation. Dense layers flatten a
        non-flat input themselves.
      post: `z -> a`, the activation (and pooling); identity on the output layer.
      in_shape: per-example input shape.
      out_shape: per-example output shape (after `post`).
      activation: name of the activation in `post`.
      spec: what else defines the layer, as `(key, value)` pairs (a conv's kernel_size,
        padding, pool; `linen_layers.to_linen` rebuilds the layer from it).
    """
    name: str
    kind: str
    init: Callable
    linear: Callable
    post: Callable
    in_shape: tuple
    out_shape: tuple
    activation: str
    spec: tuple = ()

    def __call__(self, params, x):
        return self.post(self.linear(params, x))

    @property
    def sites(self) -> tuple:
        """The layer's one linear map, as a `Site` (see `Site`)."""
        fan_in, fan_out = _fans(self)
        return (Site('', (), 'w', fan_in, fan_out, self.kind),)

    def apply_hooked(self, params, x, hook):
        """`post(hook(site, linear, params, x))`: the layer with its linear map replaced by
        whatever `hook` computes from it (the feedback-alignment rules' backward pass)."""
        return self.post(hook(self.sites[0], self.linear, params, x))


def _fans(layer) -> tuple[int, int]:
    """`(fan_in, fan_out)` of the layer's kernel `w` (`(*window, c_in, c_out)` or `(n_in,
    n_out)`): inputs per output unit, and outputs per input unit (PyTorch's convention)."""
    if layer.kind == 'dense':
        return int(np.prod(layer.in_shape)), int(layer.out_shape[-1])
    window = dict(layer.spec)['kernel_size'] ** (len(layer.in_shape) - 1)
    return window * int(layer.in_shape[-1]), window * int(layer.out_shape[-1])


class Site(NamedTuple):
    """A linear map inside a block whose backward pass a rule may replace.

    A site's map is `fn(q, x)`, affine in `x` and linear in the kernel `q[kernel]`, where
    `q` is the params dict of that map alone (`{'w', 'b'}` for neurokit's layers,
    `{'kernel', 'bias'}` for a Flax Dense/Conv). Rules reach sites through a block's
    `apply_hooked(params, x, hook)`, which calls `hook(site, fn, q, x)` at every site.

    Attributes:
      name: unique within the block ('' for a neurokit layer's one map; the Flax module
        path, e.g. 'Dense_0' or 'attn/query', for a Flax block).
      path: where `q` sits in the block's params.
      kernel: the key of the kernel in `q`.
      fan_in: inputs per output unit (a feedback matrix's LeCun scale is 1/sqrt(fan_in)).
      fan_out: outputs per input unit (the window times the output channels for a conv).
      kind: 'dense' or 'conv'.
    """
    name: str
    path: tuple
    kernel: str
    fan_in: int
    fan_out: int
    kind: str


def _weight_init(scheme: str, fan_in: int, fan_out: int):
    if scheme == 'lecun_normal':
        return lambda k, s, d: jax.random.normal(k, s, d) * math.sqrt(1.0 / fan_in)
    if scheme == 'he_normal':
        return lambda k, s, d: jax.random.normal(k, s, d) * math.sqrt(2.0 / fan_in)
    if scheme == 'xavier_uniform':
        lim = math.sqrt(6.0 / (fan_in + fan_out))
        return lambda k, s, d: jax.random.uniform(k, s, d, -lim, lim)
    if scheme == 'torch':  # PyTorch's default for nn.Linear / nn.Conv: U(-1/sqrt(fan_in), +).
        lim = 1.0 / math.sqrt(fan_in)
        return lambda k, s, d: jax.random.uniform(k, s, d, -lim, lim)
    raise ValueError(f'unknown init {scheme!r}; valid: {", ".join(INITS)}')


def _bias_init(scheme: str, fan_in: int):
    if scheme == 'torch':
        lim = 1.0 / math.sqrt(fan_in)
        return lambda k, s, d: jax.random.uniform(k, s, d, -lim, lim)
    return lambda k, s, d: jnp.zeros(s, d)


def dense(name, in_shape, n_out, activation='relu', init='lecun_normal',
          dtype=jnp.float32) -> Layer:
    """A dense layer `act(flatten(x) @ w + b)`."""
    in_shape = positive_ints(in_shape, 'in_shape', f'dense {name!r}')
    n_out = positive_int(n_out, 'n_out', f'dense {name!r}')
    n_in = int(np.prod(in_shape))
    w_init, b_init = _weight_init(init, n_in, n_out), _bias_init(init, n_in)
    act = activation_fn(activation)

    def init_fn(key):
        kw, kb = jax.random.split(key)
        return {'w': w_init(kw, (n_in, n_out), dtype), 'b': b_init(kb, (n_out,), dtype)}

    def linear(p, x):
        x = x.reshape(x.shape[:x.ndim - len(in_shape)] + (n_in,))
        return x.astype(p['w'].dtype) @ p['w'] + p['b']

    return Layer(name, 'dense', init_fn, linear, act, tuple(in_shape), (n_out,), activation)


def _max_pool(x, window: int, spatial: int):
    """Non-overlapping max-pooling of the `spatial` dims before the channels (VALID: a remainder
    is dropped). A reshape and a max rather than `lax.reduce_window`: the same values, and on
    CPU about 25% faster for LeNet's training step (its gradient is a mask, not a scatter)."""
    lead = x.ndim - spatial - 1
    sizes = x.shape[lead:lead + spatial]
    x = x[(slice(None),) * lead + tuple(slice(0, (s // window) * window) for s in sizes)]
    shape = x.shape[:lead]
    for s in sizes:
        shape += (s // window, window)
    x = x.reshape(shape + x.shape[-1:])
    return x.max(axis=tuple(lead + 2 * i + 1 for i in range(spatial)))


def _conv_im2col(x, w, pads, strides, spatial: int):
    """A convolution (channel-last, `*window, c_in, c_out` kernel, no dilation or groups) as
    one matmul over the stacked shifted windows: `pads` `(low, high)` and `strides` per
    spatial dim; any leading dims. XLA's CPU convolution runs several times slower inside a
    `lax.scan` (the training epoch) than this; accelerators keep the native convolution."""
    window = w.shape[:spatial]
    lead = x.ndim - spatial - 1
    if any(p != (0, 0) for p in pads):
        x = jnp.pad(x, [(0, 0)] * lead + list(pads) + [(0, 0)])
    out = [(n - k) // s + 1 for n, k, s in zip(x.shape[lead:lead + spatial], window, strides)]
    cols = [x[(slice(None),) * lead + tuple(slice(o, o + (n - 1) * s + 1, s)
                                            for o, n, s in zip(offset, out, strides))]
            for offset in itertools.product(*(range(k) for k in window))]
    patches = jnp.concatenate(cols, axis=-1)  # (..., *out, prod(window) * c_in), (window, c) order
    return patches @ w.reshape(-1, w.shape[-1])


CONV_IMPLS = ('auto', 'xla', 'im2col')


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None):
    """`jax.lax.conv_general_dilated`, as a strided im2col matmul on CPU for the common case
    (channel-last, no dilation, no groups), where XLA's CPU convolution inside a `lax.scan`
    runs several times slower; XLA's convolution everywhere else. A drop-in for
    `flax.linen.Conv(conv_general_dilated=...)` (the model zoo passes it)."""
    spatial = lhs.ndim - 2
    channel_last = dimension_numbers is not None and (
        tuple(dimension_numbers.lhs_spec) == (0, lhs.ndim - 1) + tuple(range(1, spatial + 1))
        and tuple(dimension_numbers.rhs_spec) == (spatial + 1, spatial) + tuple(range(spatial))
        and tuple(dimension_numbers.out_spec) == tuple(dimension_numbers.lhs_spec))
    plain = (all(d == 1 for d in (lhs_dilation or ())) and all(d == 1 for d in (rhs_dilation or ()))
             and feature_group_count == 1 and batch_group_count == 1)
    if not (channel_last and plain and jax.default_backend() == 'cpu'):
        return jax.lax.conv_general_dilated(
            lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
            feature_group_count, batch_group_count, precision, preferred_element_type)
    if isinstance(padding, str):
        padding = jax.lax.padtype_to_pads(lhs.shape[1:1 + spatial], rhs.shape[:spatial],
                                          window_strides, padding)
    z = _conv_im2col(lhs, rhs, [tuple(p) for p in padding], window_strides, spatial)
    return z.astype(preferred_element_type) if preferred_element_type is not None else z


def conv(name, in_shape, features, kernel_size=3, activation='relu', pool=1,
         padding='SAME', init='lecun_normal', dtype=jnp.float32, impl='auto') -> Layer:
    """A convolution `pool(act(conv(x, w) + b))` on channel-last inputs.

    Args:
      in_shape: per-example `(*spatial, channels)`, 1 or 2 spatial dims.
      features: output channels.
      kernel_size: window size, same along every spatial dim.
      pool: max-pool window and stride after the activation (1: none).
      padding: 'SAME' or 'VALID'.
      impl: 'xla' (`lax.conv_general_dilated`), 'im2col' (stacked windows times the kernel
        as a matrix: same values, much faster on CPU), or 'auto' (im2col on CPU, xla on
        accelerators), chosen when the layer is traced.
    """
    if impl not in CONV_IMPLS:
        raise ValueError(f'unknown conv impl {impl!r}; valid: {", ".join(CONV_IMPLS)}')
    where = f'conv {name!r}'
    in_shape = positive_ints(in_shape, 'in_shape', where)
    if len(in_shape) not in (2, 3):
        raise ValueError(f'{where}: in_shape must be (W, C) or (H, W, C) (1 or 2 spatial dims), '
                         f'got {in_shape}')
    features = positive_int(features, 'features', where)
    kernel_size = positive_int(kernel_size, 'kernel_size', where)
    pool = positive_int(pool, 'pool', where)
    if padding not in PADDINGS:  # im2col and the output shape test for exactly these
        raise ValueError(f'{where}: padding must be one of {", ".join(PADDINGS)}, got {padding!r}')
    spatial = len(in_shape) - 1
    c_in = in_shape[-1]
    window = (kernel_size,) * spatial
    fan_in = kernel_size ** spatial * c_in
    w_init, b_init = _weight_init(init, fan_in, kernel_size ** spatial * features), _bias_init(init, fan_in)
    act = activation_fn(activation)
    spec = {1: ('NWC', 'WIO', 'NWC'), 2: ('NHWC', 'HWIO', 'NHWC')}[spatial]
    dn = jax.lax.conv_dimension_numbers((1,) + tuple(in_shape), window + (c_in, features), spec)
    pads = [((kernel_size - 1) // 2, kernel_size - 1 - (kernel_size - 1) // 2)
            if padding == 'SAME' else (0, 0) for _ in window]

    def init_fn(key):
        kw, kb = jax.random.split(key)
        return {'w': w_init(kw, window + (c_in, features), dtype), 'b': b_init(kb, (features,), dtype)}

    def linear(p, x):
        x = x.astype(p['w'].dtype)
        use = impl if impl != 'auto' else ('im2col' if jax.default_backend() == 'cpu' else 'xla')
        if use == 'im2col':
            return _conv_im2col(x, p['w'], pads, (1,) * spatial, spatial) + p['b']
        lead = x.shape[:x.ndim - spatial - 1]  # any leading dims, as im2col and dense take
        z = jax.lax.conv_general_dilated(x.reshape((-1,) + x.shape[len(lead):]), p['w'],
                                         (1,) * spatial, padding, dimension_numbers=dn)
        return z.reshape(lead + z.shape[1:]) + p['b']

    def post(z):
        a = act(z)
        return _max_pool(a, pool, spatial) if pool > 1 else a

    # Output shape computed arithmetically (eval_shape needs concrete params; this is cheaper).
    size = list(in_shape[:-1])
    if padding == 'VALID':
        size = [s - kernel_size + 1 for s in size]
    size = [s // pool for s in size]
    spec = (('kernel_size', kernel_size), ('padding', padding), ('pool', pool))
    return Layer(name, 'conv', init_fn, linear, post, tuple(in_shape), tuple(size) + (features,),
                 activation, spec)
