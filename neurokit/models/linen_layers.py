"""neurokit's dense and conv layers rebuilt as `flax.linen` modules, and their params.

`to_linen(model)` gives the model's twin on the Flax block path: one linen module per
layer (`nn.Dense`/`nn.Conv`, the activation, max-pooling), built into a `Model` by
`from_flax`, whose `init` maps the native model's parameters into the modules' layout,
so both start from the same weights. Trained by any rule, the twin must follow the native
model step for step: the check that a rule treats a Flax model as it treats neurokit's
own layers (tests/test_flax_blocks.py, and the `blocks.vs_native` benchmark on the MLP
and LeNet configs).

`keep_first=True` keeps the first layer native (a neurokit layer is a block too): then
the feedback rules' random draws match the native model's one for one (see
`fa.feedback_sites`: the first native layer has no feedback site, a first Flax block does).
"""
from __future__ import annotations

import jax

from neurokit.models.layers import ACTIVATIONS, Layer
from neurokit.models.model import Model


def _layer_module(layer: Layer):
    """`(module, index)`: the linen module computing `layer`, and where its Dense/Conv
    sits in the `nn.Sequential` (its params are `{f'layers_{index}': {'kernel', 'bias'}}`)."""
    import flax.linen as nn
    if layer.activation not in ACTIVATIONS:
        raise ValueError(f'layer {layer.name}: unknown activation {layer.activation!r}')
    parts, dtype = [], jax.eval_shape(layer.init, jax.random.PRNGKey(0))['w'].dtype
    if layer.kind == 'dense':
        if len(layer.in_shape) > 1:
            parts.append(lambda x: x.reshape(x.shape[:x.ndim - len(layer.in_shape)] + (-1,)))
        index = len(parts)
        parts.append(nn.Dense(layer.out_shape[-1], dtype=dtype, param_dtype=dtype))
    elif layer.kind == 'conv':
        spec = dict(layer.spec)
        spatial = len(layer.in_shape) - 1
        index = len(parts)
        parts.append(nn.Conv(layer.out_shape[-1], (spec['kernel_size'],) * spatial,
                             padding=spec['padding'], dtype=dtype, param_dtype=dtype))
    else:
        raise ValueError(f'layer {layer.name}: no linen twin for kind {layer.kind!r}')
    if layer.activation != 'identity':
        parts.append(ACTIVATIONS[layer.activation])
    if layer.kind == 'conv' and dict(layer.spec)['pool'] > 1:
        window = (dict(layer.spec)['pool'],) * (len(layer.in_shape) - 1)
        parts.append(lambda x: nn.max_pool(x, window, window))
    return nn.Sequential(parts), index


def to_linen(model: Model, keep_first: bool = False) -> Model:
    """The model rebuilt from linen modules (see the module docstring); its `init(key)`
    is the native model's `init(key)` in the modules' parameter layout."""
    from neurokit.models.flax_blocks import from_flax
    layers = list(model.layers)
    modules, indices = [], []
    for i, layer in enumerate(layers):
        if keep_first and i == 0:
            modules.append(layer)
            indices.append(None)
        else:
            module, index = _layer_module(layer)
            modules.append(module)
            indices.append(index)
    twin = from_flax(modules, model.input_shape, model.num_classes,
                     names=[layer.name for layer in layers])

    def convert(params):
        out = []
        for p, index in zip(params['layers'], indices):
            out.append(p if index is None else
                       {f'layers_{index}': {'kernel': p['w'], 'bias': p['b']}})
        return {**params, 'layers': tuple(out)}

    return twin._replace(init=lambda key: convert(model.init(key)))
