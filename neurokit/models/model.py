"""`Model`: a sequence of layers with pure `init` and `apply`."""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax

from neurokit.models.layers import Layer


class Model(NamedTuple):
    """A feed-forward network as pure functions over a params pytree.

    Params are `{'layers': (p_0, p_1, ...)}`, one dict per layer, so a rule can
    run, differentiate or replace any layer on its own. Rules may add their own
    trainable entries beside 'layers' (e.g. mono-forward's projections).

    Attributes:
      layers: the layers, input to output; the last one produces the logits.
      init: `key -> params`.
      apply: `(params, x) -> (logits, activations)`, where `activations[l]` is
        layer l's output and `activations[-1] is logits`.
      input_shape: per-example input shape.
      num_classes: number of outputs.
    """
    layers: tuple
    init: Callable
    apply: Callable
    input_shape: tuple
    num_classes: int


def check_layer_count(layers, params) -> None:
    """ValueError unless `params['layers']` has one entry per layer: a zip over both would
    otherwise drop the extra layers without a word (params of another model)."""
    got = params.get('layers') if isinstance(params, dict) else None
    if not isinstance(got, (tuple, list)):
        raise ValueError("params must be a dict with 'layers', one entry per layer, as "
                         'model.init(key) returns')
    if len(got) != len(layers):
        raise ValueError(f'params hold {len(got)} layers but the model has {len(layers)}; pass '
                         "params made by this model's init (another model's state?)")


def sequential(layers: tuple[Layer, ...]) -> Model:
    """Builds a `Model` from layers whose shapes chain (at least one: the last gives the logits)."""
    layers = tuple(layers)
    if not layers:
        raise ValueError('sequential: layers is empty; give at least one Layer (the last one '
                         'produces the logits)')
    for a, b in zip(layers[:-1], layers[1:]):
        if tuple(a.out_shape) != tuple(b.in_shape) and b.kind != 'dense':
            raise ValueError(f'{a.name} outputs {a.out_shape} but {b.name} expects {b.in_shape}')

    def init(key):
        keys = jax.random.split(key, len(layers))
        return {'layers': tuple(layer.init(k) for layer, k in zip(layers, keys))}

    def apply(params, x):
        check_layer_count(layers, params)
        acts = []
        for layer, p in zip(layers, params['layers']):
            x = layer(p, x)
            acts.append(x)
        return x, tuple(acts)

    return Model(layers, init, apply, tuple(layers[0].in_shape), int(layers[-1].out_shape[-1]))
