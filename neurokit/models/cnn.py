"""Small convolutional networks: conv blocks, then dense layers."""
from __future__ import annotations

import jax.numpy as jnp

from neurokit.models.layers import conv, dense
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
      input_shape: per-example `(*spatial, channels)`.
      num_classes: output width.
      channels: output channels of each conv layer.
      kernel_size: conv window.
      pools: max-pool window after each conv (default 2 for every layer).
      paddings: 'SAME'/'VALID' per conv (default 'SAME').
      dense_widths: hidden dense layers after the convs.
      activation, init, dtype: as in `mlp`.

    Returns:
      A `Model`.
    """
    pools = pools or (2,) * len(channels)
    paddings = paddings or ('SAME',) * len(channels)
    if not len(pools) == len(paddings) == len(channels):
        raise ValueError(f'cnn: {len(channels)} conv layers (channels) but {len(pools)} pools and '
                         f'{len(paddings)} paddings; give one of each per layer')
    if len(input_shape) == 1:  # a flat signal: treat as one channel
        input_shape = (input_shape[0], 1)
    layers, shape = [], tuple(input_shape)
    for i, (c, p, pad) in enumerate(zip(channels, pools, paddings)):
        layer = conv(f'conv_{i}', shape, int(c), kernel_size, activation, int(p), pad, init, dtype)
        if min(layer.out_shape[:-1]) < 1:
            raise ValueError(f'input {tuple(input_shape)} is too small for {len(channels)} conv layers')
        layers.append(layer)
        shape = layer.out_shape
    for j, width in enumerate(dense_widths):
        layers.append(dense(f'dense_{j}', shape, int(width), activation, init, dtype))
        shape = (int(width),)
    layers.append(dense(f'dense_{len(dense_widths)}', shape, int(num_classes), 'identity', init, dtype))
    return sequential(layers)


def preset(name, input_shape, num_classes, activation='relu', init='lecun_normal',
           dtype=jnp.float32) -> Model:
    """A named CNN from `PRESETS` ('lenet', 'cnn4')."""
    channels, k, pools, pads, widths = PRESETS[name]
    return cnn(input_shape, num_classes, channels, k, pools, pads, widths, activation, init, dtype)
