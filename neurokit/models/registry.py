"""Model names used by configs (`config.model.name`)."""
from __future__ import annotations

import jax.numpy as jnp

from neurokit.models.cnn import cnn, preset
from neurokit.models.mlp import mlp

MODELS = ('mlp', 'lenet', 'cnn4', 'cnn')


def build(name, input_shape, num_classes, hidden=(1000, 1000), activation='relu',
          init='lecun_normal', dtype='float32', channels=(32, 64), kernel_size=3,
          dense_widths=(128,)):
    """Builds a model by name.

    Args:
      name: one of `MODELS`. 'mlp' uses `hidden`; 'cnn' uses `channels`,
        `kernel_size`, `dense_widths`; 'lenet' and 'cnn4' are fixed presets.
      input_shape, num_classes: from the data set.
      activation, init, dtype: shared by all models.

    Returns:
      A `Model`.
    """
    dtype = jnp.dtype(dtype)
    seq = lambda v: tuple(v) if isinstance(v, (list, tuple)) else v  # the model checks the rest
    if name == 'mlp':
        return mlp(input_shape, num_classes, seq(hidden), activation, init, dtype)
    if name in ('lenet', 'cnn4'):
        return preset(name, input_shape, num_classes, activation, init, dtype)
    if name == 'cnn':
        return cnn(input_shape, num_classes, seq(channels), kernel_size, None, None,
                   seq(dense_widths), activation, init, dtype)
    raise ValueError(f'unknown model {name!r}; valid names: {", ".join(MODELS)}')
