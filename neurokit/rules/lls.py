"""LLS, layer-local learning with a fixed sinusoidal basis (Apolinario, Roy & Roy, WACV 2025).

Every hidden layer learns from its own classification loss against a fixed, label-free
projection; no error crosses a layer. With `h_0 = x` and `h_l` layer l's output:

  out_l = f_l(SG(h_{l-1}))                       (the layer on its stop-gradiented input)
  z_l   = flatten(pool_p(out_l)) / ||.||         (conv: adaptive average pool to p x p;
                                                  dense: the output itself; L2 per example)
  s_l   = z_l Phi_l^T,   Phi_l[k, j] = sin(f_k j),  f_k = linspace(50, 512, K)_k,  j < d_l
  loss_l = CE(s_l / T, y)                        (T = 0.5)

`modulation='learned'` is LLS-M: `s_l = m_l * z_l Phi_l^T` with `m_l` in R^K per hidden
layer, trained by the same loss (`params['modulation']`, initialised 0.01 * N(0, 1) as in
the authors' code). `waveform='square'` uses `sign(Phi)` (their Table 3). The last layer is
trained by the cross-entropy of the logits on its stop-gradiented input. Every update is
the gradient of one local loss, so the step takes the gradient of their sum once (the
stop-gradients keep the terms apart).

Following the authors' code (`models/layers/lls_layers.py`, `compute_LLS`): the basis
product `f_k * j` is computed in float32, as their torch code does (its rounding changes
sin of the large arguments); a conv layer's pooled map is flattened channel-first, as
torch's `.view` of an NCHW tensor; the first conv layer pools to 4 x 4 and later ones to
2 x 2 (their SmallConv and VGG8). One difference: their local loss reads a conv block's
output before the max-pool that follows it; a neurokit conv layer's output is after its
pool, and that is what is pooled here.

The authors step each block's optimizer inside the forward sweep; this plain form returns
all updates at once (the same numbers for an element-wise optimizer).

Cost per step: one forward pass, each layer's local backward through itself, and a
d_l x K projection per hidden layer.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from neurokit import losses
from neurokit.checks import check_count, check_range
from neurokit.models import Model
from neurokit.models.model import require_layers
from neurokit.rules.base import EmptyState, Rule, check_batch, check_params, declare

MODULATIONS = ('none', 'learned')
WAVEFORMS = ('sine', 'square')


def basis(num_classes: int, width: int, min_frequency: float = 50.0,
          max_frequency: float = 512.0, waveform: str = 'sine') -> np.ndarray:
    """The fixed basis `Phi[k, j] = sin(f_k * j)` (K x width), `f = linspace(min, max, K)`,
    the product in float32 as the authors' torch code computes it; `sign` of it for
    'square'."""
    f = np.linspace(min_frequency, max_frequency, num_classes, dtype=np.float32)
    phi = np.sin(f[:, None] * np.arange(width, dtype=np.float32)[None, :])
    return np.sign(phi) if waveform == 'square' else phi


def adaptive_avg_pool(h, size: int):
    """PyTorch's adaptive average pooling of the spatial dims of `h` (B, *spatial, C) to
    `size` bins each: bin i of an axis of length n averages [floor(i n / size),
    ceil((i + 1) n / size))."""
    for axis in range(1, h.ndim - 1):
        n = h.shape[axis]
        if n == size:
            continue
        bins = [jnp.mean(jax.lax.slice_in_dim(h, (i * n) // size, -(-((i + 1) * n) // size),
                                              axis=axis), axis=axis, keepdims=True)
                for i in range(size)]
        h = jnp.concatenate(bins, axis=axis)
    return h


def features(layer, out, size: int):
    """Layer output `out` -> (B, d) before normalisation: a conv map pooled to `size` bins
    per spatial dim and flattened channel-first; a dense output as it is."""
    if layer.kind == 'conv':
        out = adaptive_avg_pool(out, size)
        out = jnp.moveaxis(out, -1, 1)
    return out.reshape(out.shape[0], -1)


def _pool_sizes(model, first, rest):
    """The pooled size of each conv layer (the first conv: `first`; later ones: `rest`)."""
    sizes, convs = [], 0
    for layer in model.layers:
        sizes.append(first if convs == 0 else rest)
        convs += layer.kind == 'conv'
    return sizes


def _width(layer, size):
    if layer.kind == 'conv':
        return size ** (len(layer.out_shape) - 1) * int(layer.out_shape[-1])
    return math.prod(layer.out_shape)


def _check_layers(model: Model) -> None:
    require_layers(model, 'lls', ('dense', 'conv'), 'its forward pass runs layer by layer on '
                   'stop-gradiented inputs')


@declare(layers=('dense', 'conv'), toy_learning_rate=1e-2)
def lls(model: Model, temperature: float = 0.5, min_frequency: float = 50.0,
        max_frequency: float = 512.0, first_pool_size: int = 4, pool_size: int = 2,
        waveform: str = 'sine', modulation: str = 'none') -> Rule:
    """LLS (see the module docstring); defaults from the authors' code.

    Args:
      model: an MLP or a CNN (dense and conv layers).
      temperature: T of the local logits `s / T` (their main.py's 0.5).
      min_frequency, max_frequency: the basis frequencies `linspace(min, max, K)` (50, 512).
      first_pool_size: the first conv layer's output is average-pooled to this many bins per
        spatial dim (4).
      pool_size: the same for every later conv layer (2).
      waveform: 'sine' (`Phi`; their option is named 'cosine' but computes sin) or
        'square' (`sign(Phi)`).
      modulation: 'none' (LLS) or 'learned' (LLS-M: a learned per-class gain per layer).

    Returns:
      A `Rule` with no state; with `modulation='learned'`, `init_params` adds
      `params['modulation']`, one (K,) gain per hidden layer.

    Example:
      >>> rule = lls(cnn((28, 28, 1), 10, channels=(32, 64, 128), dense_widths=(512,)))
      >>> params = rule.init_params(key, model.init(key))
      >>> updates, _, metrics = rule.step(params, rule.init(key, params), batch, key)
    """
    check_range('temperature', temperature, lambda v: v > 0, 'a finite number > 0', where='lls')
    check_range('min_frequency', min_frequency, lambda v: v >= 0, 'a finite number >= 0',
                where='lls', cannot_sweep='sets the fixed basis')
    check_range('max_frequency', max_frequency, lambda v: v >= min_frequency,
                f'a finite number >= min_frequency ({min_frequency})', where='lls',
                cannot_sweep='sets the fixed basis')
    first_pool_size = check_count('first_pool_size', first_pool_size, 1, where='lls')
    pool_size = check_count('pool_size', pool_size, 1, where='lls')
    if waveform not in WAVEFORMS:
        raise ValueError(f'lls: waveform must be one of {WAVEFORMS}, got {waveform!r}')
    if modulation not in MODULATIONS:
        raise ValueError(f'lls: modulation must be one of {MODULATIONS}, got {modulation!r}')
    _check_layers(model)
    hidden = model.layers[:-1]
    sizes = _pool_sizes(model, first_pool_size, pool_size)
    bases = [jnp.asarray(basis(model.num_classes, _width(layer, size), min_frequency,
                               max_frequency, waveform))
             for layer, size in zip(hidden, sizes)]
    learned = modulation == 'learned'

    def init_params(key, model_params):
        if not learned:
            return model_params
        dtype = model_params['layers'][0]['w'].dtype
        keys = jax.random.split(key, max(len(hidden), 1))[:len(hidden)]
        return {**model_params,
                'modulation': tuple(0.01 * jax.random.normal(k, (model.num_classes,), dtype)
                                    for k in keys)}

    def init(key, params):
        del key, params
        return EmptyState()

    def local_loss(l, out, params, y):
        z = features(hidden[l], out, sizes[l]).astype(jnp.float32)
        z = z / jnp.maximum(jnp.linalg.norm(z, axis=1, keepdims=True), 1e-12)  # F.normalize
        s = z @ bases[l].T
        if learned:
            s = params['modulation'][l].astype(jnp.float32) * s
        return losses.cross_entropy(s / temperature, y)

    def objective(params, x, y):
        """The sum of every layer's local loss; the model's loss and logits."""
        h, total = x, 0.0
        for l, (layer, p) in enumerate(zip(model.layers, params['layers'])):
            h = layer(p, jax.lax.stop_gradient(h))
            if l < len(hidden):
                total = total + local_loss(l, h, params, y)
        top = losses.cross_entropy(h, y)
        return total + top, (top, h)

    def step(params, state, batch, key):
        batch = check_batch(model, batch, params)
        if learned:
            check_params(params, 'modulation', 'lls')
        del key
        x = batch['x'].reshape((-1,) + tuple(model.input_shape))
        grads, (top, logits) = jax.grad(objective, has_aux=True)(params, x, batch['y'])
        return grads, state, {'loss': top, 'accuracy': losses.accuracy(logits, batch['y'])}

    def predict(params, state, x):
        del state
        return model.apply(params, x)[0]

    return Rule(init, step, predict, init_params=init_params)
