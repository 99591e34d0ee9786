"""Losses on logits and integer labels, averaged over the batch."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _check(logits, labels, where):
    """ValueError (at trace time) unless `labels` are integer classes, one per row of `logits`:
    a mismatch would broadcast to a number, and float labels give a loss of 0."""
    if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
        raise ValueError(f'{where}: labels must be integer classes, got dtype '
                         f'{jnp.result_type(labels)} (logits come first, then labels)')
    if jnp.shape(labels) != jnp.shape(logits)[:-1]:
        raise ValueError(f'{where}: labels of shape {jnp.shape(labels)} for logits of shape '
                         f'{jnp.shape(logits)}; want one integer class per row (one-hot labels: '
                         'pass argmax(y, -1))')


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy; `labels` are integer classes.

    Written with a one-hot mask rather than a gather of the label's log-probability:
    the gradient is then `softmax - one_hot`, which XLA fuses into the softmax's own
    kernel, where the gather's gradient is a scatter plus a convert, two more GPU
    kernels per loss (mf has one loss per layer; experiments/benchmarks/gpu_aot.py
    counts them). A label outside [0, C) gives an all-zero one-hot row (a loss of 0);
    the data loaders refuse such labels (`data.base.check_labels`).
    """
    _check(logits, labels, 'cross_entropy')
    logits = logits.astype(jnp.float32)
    one_hot = jax.nn.one_hot(labels, logits.shape[-1], dtype=jnp.float32)
    return -jnp.sum(one_hot * jax.nn.log_softmax(logits), axis=-1).mean()


def mse(logits, labels):
    """Mean over the batch of 1/2 ||logits - one_hot(labels)||^2."""
    _check(logits, labels, 'mse')
    y = jax.nn.one_hot(labels, logits.shape[-1], dtype=jnp.float32)
    return 0.5 * jnp.sum((logits.astype(jnp.float32) - y) ** 2, axis=-1).mean()


LOSSES = {'cross_entropy': cross_entropy, 'mse': mse}


def get(name: str):
    """The loss called `name`; ValueError naming the valid ones otherwise."""
    if name not in LOSSES:
        raise ValueError(f'unknown loss {name!r}; valid: {", ".join(LOSSES)}')
    return LOSSES[name]


def accuracy(logits, labels):
    """Fraction of rows whose argmax equals the label."""
    return jnp.mean(jnp.argmax(logits, -1) == labels)
