"""Model names used by configs (`config.model.name`)."""
from __future__ import annotations

import jax.numpy as jnp

from neurokit.models.cnn import cnn, preset
from neurokit.models.mlp import mlp

# neurokit's own layers, then the zoo of Flax models (neurokit/models/zoo.py)
MODELS = ('mlp', 'lenet', 'cnn4', 'cnn', 'resnet', 'vgg', 'vgg5', 'vgg7', 'vit', 'transformer')


def build(name, input_shape, num_classes, hidden=(1000, 1000), activation='relu',
          init='lecun_normal', dtype='float32', channels=(32, 64), kernel_size=3,
          dense_widths=(128,), depth=0, width=0, norm='group', patch=4, dim=64, heads=4):
    """Builds a model by name.

    Args:
      name: one of `MODELS`. 'mlp' uses `hidden`; 'cnn' uses `channels`, `kernel_size`,
        `dense_widths`; 'lenet' and 'cnn4' are fixed presets. The zoo: 'resnet' (`depth`
        6n+2 or 18, `width`, `norm`), 'vgg' (`channels`, the first of `dense_widths`,
        `norm`), 'vgg5' and 'vgg7' (PCX's, `norm`), 'vit' (`patch`, `dim`, `depth`,
        `heads`), 'transformer' (`dim`, `depth`, `heads`); `depth` or `width` 0 is the
        model's default.
      input_shape, num_classes: from the data set.
      activation, init: neurokit's own layers (the zoo's models fix theirs); dtype: all.

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
    if name not in MODELS:
        raise ValueError(f'unknown model {name!r}; valid names: {", ".join(MODELS)}')
    from neurokit.models import zoo  # imports flax.linen
    if name == 'resnet':
        return zoo.resnet(input_shape, num_classes, depth or 8, width or None, norm, dtype)
    if name == 'vgg':
        widths = seq(dense_widths)
        return zoo.vgg(input_shape, num_classes, seq(channels), 1, norm,
                       widths[0] if widths else None, dtype)
    if name in ('vgg5', 'vgg7'):
        return getattr(zoo, name)(input_shape, num_classes, norm, dtype)
    if name == 'vit':
        return zoo.vit(input_shape, num_classes, patch, dim, depth or 4, heads, dtype=dtype)
    return zoo.transformer(input_shape, num_classes, dim, depth or 2, heads, dtype=dtype)
