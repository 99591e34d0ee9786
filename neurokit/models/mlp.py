"""Multi-layer perceptron."""
from __future__ import annotations

import jax.numpy as jnp

from neurokit.checks import positive_int, positive_ints
from neurokit.models.layers import dense
from neurokit.models.model import Model, sequential


def mlp(input_shape, num_classes, hidden=(1000, 1000), activation='relu',
        init='lecun_normal', dtype=jnp.float32) -> Model:
    """An MLP `input -> hidden... -> num_classes` (inputs are flattened).

    Args:
      input_shape: per-example input shape, e.g. (28, 28, 1).
      num_classes: output width (logits, no activation).
      hidden: widths of the hidden layers, a sequence of positive integers (may be
        empty: a linear model).
      activation: hidden activation name (see `layers.ACTIVATIONS`).
      init: weight initialisation scheme (see `layers.INITS`).
      dtype: parameter dtype.

    Returns:
      A `Model`. Example: `m = mlp((784,), 10, (128, 128)); p = m.init(key)`.

    Raises:
      TypeError, ValueError: a shape, width or class count that is not a positive integer.
    """
    shape = positive_ints(input_shape, 'input_shape', 'mlp')
    hidden = positive_ints(hidden, 'hidden', 'mlp')
    num_classes = positive_int(num_classes, 'num_classes', 'mlp')
    layers = []
    for i, width in enumerate(hidden):
        layers.append(dense(f'dense_{i}', shape, width, activation, init, dtype))
        shape = (width,)
    layers.append(dense(f'dense_{len(hidden)}', shape, num_classes, 'identity', init, dtype))
    return sequential(layers)
