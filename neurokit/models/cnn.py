"""Small convolutional networks: conv blocks, then dense layers."""
from __future__ import annotations

import jax.numpy as jnp

from neurokit.checks import positive_int, positive_ints
from neurokit.models.layers import PADDINGS, conv, dense
from neurokit.models.model import Model, sequential

# name -> (conv channels, kernel, pool per conv, padding per conv, dense widths)
PRESETS = {
    # LeNet-5-like: 6@5x5 -> pool -> 16@5x5 -> pool -> 120 -> 84 -> classes.
    'lenet': ((6, 16), 5, (2, 2), ('SAME', 'VALID'), (120, 84)),
    # Four 3x3 conv layers, pooling after the 2nd and 4th, one dense layer.
    'cnn4': ((32, 64, 128, 128), 3, (1, 2, 1, 2), ('SAME',) * 4, (256,)),
}


def cnn(input_shape, num_classes, channels=(32, 64), kernel_size=3, pools=None,
        paddings=None, dense_widths=(128,), activation='relu', init='lecun_normal',
        dtype=jnp.float32) -> Model:
    """A CNN: `conv -> act -> pool` blocks, then dense layers, then the logits.

    Works on 1-D (N, W, C) and 2-D (N, H, W, C) inputs.

    Args:
      input_shape: per-example `(W,)` (one channel), `(W, C)` or `(H, W, C)`.
      num_classes: output width.
      channels: output channels of each conv layer (positive integers).
      kernel_size: conv window, a positive integer.
      pools: max-pool window after each conv (default 2 for every layer; 1: none).
      paddings: 'SAME'/'VALID' per conv (default 'SAME').
      dense_widths: hidden dense layers after the convs.
      activation, init, dtype: as in `mlp`.

    Returns:
      A `Model`.

    Raises:
      TypeError, ValueError: a shape, width, window or padding that is not valid, or
        an input too small for the conv layers.
    """
    input_shape = positive_ints(input_shape, 'input_shape', 'cnn')
    if not 1 <= len(input_shape) <= 3:
        raise ValueError(f'cnn: input_shape must be (W,), (W, C) or (H, W, C) (1 or 2 spatial '
                         f'dims), got {input_shape}')
    channels = positive_ints(channels, 'channels', 'cnn')
    kernel_size = positive_int(kernel_size, 'kernel_size', 'cnn')
    pools = positive_ints(pools or (2,) * len(channels), 'pools', 'cnn')
    paddings = paddings or ('SAME',) * len(channels)
    if isinstance(paddings, str) or not hasattr(paddings, '__iter__'):
        raise TypeError(f'cnn: paddings must be a sequence with one of {", ".join(PADDINGS)} per '
                        f'conv layer, got {paddings!r}')
    for i, pad in enumerate(paddings):
        if pad not in PADDINGS:
            raise ValueError(f'cnn: paddings[{i}] must be one of {", ".join(PADDINGS)}, '
                             f'got {pad!r}')
    dense_widths = positive_ints(dense_widths, 'dense_widths', 'cnn')
    num_classes = positive_int(num_classes, 'num_classes', 'cnn')
    if not len(pools) == len(paddings) == len(channels):
        raise ValueError(f'cnn: {len(channels)} conv layers (channels) but {len(pools)} pools and '
                         f'{len(paddings)} paddings; give one of each per layer')
    if len(input_shape) == 1:  # a flat signal: treat as one channel
        input_shape = (input_shape[0], 1)
    layers, shape = [], input_shape
    for i, (c, p, pad) in enumerate(zip(channels, pools, paddings)):
        layer = conv(f'conv_{i}', shape, c, kernel_size, activation, p, pad, init, dtype)
        if min(layer.out_shape[:-1]) < 1:
            raise ValueError(f'input {input_shape} is too small for {len(channels)} conv layers')
        layers.append(layer)
        shape = layer.out_shape
    for j, width in enumerate(dense_widths):
        layers.append(dense(f'dense_{j}', shape, width, activation, init, dtype))
        shape = (width,)
    layers.append(dense(f'dense_{len(dense_widths)}', shape, num_classes, 'identity', init, dtype))
    return sequential(layers)


def preset(name, input_shape, num_classes, activation='relu', init='lecun_normal',
           dtype=jnp.float32) -> Model:
    """A named CNN from `PRESETS` ('lenet', 'cnn4')."""
    channels, k, pools, pads, widths = PRESETS[name]
    return cnn(input_shape, num_classes, channels, k, pools, pads, widths, activation, init, dtype)
