"""Pure building blocks of the forward-forward family (used by `ff.py`).

Kept apart from the rule so tests can check each piece against its closed
form: goodness, the per-layer losses, input normalisation, the label
embedding and the hybrid-image negatives of unsupervised FF.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

GOODNESS = ('mean', 'sum')
NORMALIZE = ('rms', 'l2', 'none')
LOSSES = ('logistic', 'symba')

_EPS = 1e-6


def _flat(a):
    return a.reshape(a.shape[0], -1)


def goodness(a, kind: str = 'mean'):
    """Goodness of each example: the mean (or sum) of its squared activities.

    Args:
      a: activities `(B, ...)`; every non-batch axis counts.
      kind: 'mean' or 'sum'.

    Returns:
      float32 `(B,)`. Example: `goodness(jnp.ones((2, 4)), 'sum') == [4., 4.]`.
    """
    sq = jnp.square(_flat(a).astype(jnp.float32))
    if kind == 'mean':
        return sq.mean(-1)
    if kind == 'sum':
        return sq.sum(-1)
    raise ValueError(f'unknown goodness {kind!r}; valid: {", ".join(GOODNESS)}')


def normalize(x, kind: str = 'rms'):
    """Per-example normalisation of a layer's input, so only its direction passes on.

    'l2' divides by the length (Hinton's paper), 'rms' by the root mean square
    (Hinton's Matlab code: mean(x^2) = 1, which keeps the scale independent of
    the width), 'none' leaves x as it is.
    """
    if kind == 'none':
        return x
    f = _flat(x).astype(jnp.float32)
    sq = jnp.sum(jnp.square(f), -1, keepdims=True)
    if kind == 'rms':
        sq = sq / f.shape[-1]
    elif kind != 'l2':
        raise ValueError(f'unknown normalisation {kind!r}; valid: {", ".join(NORMALIZE)}')
    return (f / jnp.sqrt(sq + _EPS)).astype(x.dtype).reshape(x.shape)


def logistic_loss(g_pos, g_neg, theta, alpha=1.0):
    """Hinton's per-layer loss: batch mean of `softplus(-a(G+ - theta)) + softplus(a(G- - theta))`.

    `sigmoid(alpha (G - theta))` is the layer's probability that its input is
    positive data (alpha = 1/T, the temperature of Hinton's Matlab code; the
    paper has alpha = 1); this is the negative log-likelihood of both halves.
    """
    return jnp.mean(jax.nn.softplus(-alpha * (g_pos - theta)) + jax.nn.softplus(alpha * (g_neg - theta)))


def symba_loss(g_pos, g_neg, alpha):
    """SymBa (Lee & Song 2023): batch mean of `softplus(-alpha (G+ - G-))`.

    Symmetric in the two halves, so positive and negative data pull equally and
    no threshold is needed.
    """
    return jnp.mean(jax.nn.softplus(-alpha * (g_pos - g_neg)))


def embed_label(x, values):
    """Writes label values into the first C entries of each flattened input.

    Args:
      x: inputs `(B, *shape)`.
      values: `(B, C)`, e.g. one-hot labels (or 1/C everywhere for a neutral
        label).

    Returns:
      x with `flatten(x)[:, :C] = values`, same shape and dtype.
    """
    f = _flat(x)
    c = values.shape[-1]
    return f.at[:, :c].set(values.astype(f.dtype)).reshape(x.shape)


def embed_one_hot(x, labels, num_classes, scale=1.0):
    """`embed_label` with the one-hot of integer `labels` times `scale`."""
    return embed_label(x, scale * jax.nn.one_hot(labels, num_classes, dtype=x.dtype))


def random_wrong_labels(key, labels, num_classes):
    """A uniformly drawn label different from each true label."""
    shift = jax.random.randint(key, labels.shape, 1, num_classes)
    return (labels + shift) % num_classes


def hardest_wrong_labels(scores, labels):
    """The wrong label with the highest score (e.g. goodness) for each row."""
    masked = jnp.where(jax.nn.one_hot(labels, scores.shape[-1], dtype=bool), -jnp.inf, scores)
    return jnp.argmax(masked, -1).astype(labels.dtype)


def blurred_mask(key, shape, blur_steps: int = 6):
    """A large-blob binary mask: a random binary image blurred `blur_steps` times, cut at 0.5.

    Args:
      key: PRNG key.
      shape: `(B, *spatial)`, one or two spatial axes.
      blur_steps: number of 3x3 (or 3-wide in 1-D) box-filter passes.

    Returns:
      bool array of `shape`.
    """
    m = jax.random.bernoulli(key, 0.5, shape).astype(jnp.float32)
    window = (1,) + (3,) * (len(shape) - 1)
    strides = (1,) * len(shape)
    # Averaging over the cells inside the image only, so the borders are not pulled to 0.
    count = jax.lax.reduce_window(jnp.ones(shape[1:], jnp.float32)[None], 0., jax.lax.add,
                                  window, strides, 'SAME')
    for _ in range(blur_steps):
        m = jax.lax.reduce_window(m, 0., jax.lax.add, window, strides, 'SAME') / count
    return m > 0.5


def hybrid_images(key, x, blur_steps: int = 6):
    """Unsupervised FF's negatives: two real images of the batch mixed through a blurred mask.

    Each example i is mixed with example `(i + s) mod B` for a random shift
    `s` in [1, B-1], so its two sources are always two different rows.

    Args:
      key: PRNG key.
      x: images `(B, *spatial, channels)` (a flat `(B, D)` input is treated as 1-D).
      blur_steps: see `blurred_mask`.

    Returns:
      `(hybrid, partner)`: hybrid has x's shape, every entry equal to x's or
      partner's; partner is the second source.
    """
    k_shift, k_mask = jax.random.split(key)
    b = x.shape[0]
    shift = jax.random.randint(k_shift, (), 1, max(b, 2))
    partner = jnp.roll(x, shift, axis=0)
    spatial = x.shape[:-1] if x.ndim > 2 else x.shape
    mask = blurred_mask(k_mask, spatial, blur_steps)
    mask = mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))
    return jnp.where(mask, x, partner), partner
