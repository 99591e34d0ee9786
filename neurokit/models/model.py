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
      apply: `(params, x, train=None) -> (logits, activations)`, where
        `activations[l]` is layer l's output and `activations[-1] is logits`. `train`
        matters only to a model with BatchNorm statistics (`is_stateful`), which needs it:
        True in a rule's step (batch statistics), False in predict (running averages).
      input_shape: per-example input shape.
      num_classes: number of outputs.
    """
    layers: tuple
    init: Callable
    apply: Callable
    input_shape: tuple
    num_classes: int


def check_layer_count(layers, params) -> None:
    """ValueError unless `params['layers']` has one entry per layer, each with the arrays
    (names and shapes; any dtype) that layer's `init` makes: a zip over both would otherwise
    drop the extra layers without a word, and a layer of another width would fail deep in
    a reshape (params of another model). Shapes come from `jax.eval_shape`, once per layer."""
    got = params.get('layers') if isinstance(params, dict) else None
    if not isinstance(got, (tuple, list)):
        raise ValueError("params must be a dict with 'layers', one entry per layer, as "
                         'model.init(key) returns')
    if len(got) != len(layers):
        raise ValueError(f'params hold {len(got)} layers but the model has {len(layers)}; pass '
                         "params made by this model's init (another model's state?)")
    for layer, p in zip(layers, got):
        want = _param_shapes(layer)
        have = _shapes(p)
        if have is not None and want is not None and have != want:
            raise ValueError(f'params of layer {layer.name} hold {_show(have)} but the layer makes '
                             f"{_show(want)}; pass params made by this model's init (another "
                             "model's state?)")


def param_dtype(block_params):
    """The dtype of a block's parameters: that of its first floating array."""
    for leaf in jax.tree.leaves(block_params):
        if jax.numpy.issubdtype(leaf.dtype, jax.numpy.floating):
            return leaf.dtype
    return jax.numpy.float32


def _shapes(tree):
    """`((path, shape), ...)` of a params tree's arrays; None if a leaf has no shape."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    if not all(hasattr(x, 'shape') for _, x in leaves):
        return None
    return tuple((jax.tree_util.keystr(path), tuple(x.shape)) for path, x in leaves)


def _show(shapes) -> str:
    return ', '.join(f'{path.strip("[]").strip(chr(39))}{list(shape)}' for path, shape in shapes)


_SHAPES: dict = {}


def _param_shapes(layer):
    """The shapes `layer.init` makes (cached per layer; None for a layer that cannot be
    traced abstractly, which is then not compared)."""
    if hasattr(layer, 'param_shapes'):  # a Flax block knows its own
        return layer.param_shapes
    try:
        return _SHAPES[layer]
    except KeyError:
        pass
    except TypeError:  # a layer with an unhashable field: not cached
        return _init_shapes(layer)
    shapes = _SHAPES[layer] = _init_shapes(layer)
    return shapes


def _init_shapes(layer):
    try:
        return _shapes(jax.eval_shape(layer.init, jax.random.PRNGKey(0)))
    except Exception:  # noqa: BLE001 - a custom layer's init; the layer itself will say
        return None


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

    def apply(params, x, train=None):
        check_layer_count(layers, params)
        acts = []
        for layer, p in zip(layers, params['layers']):
            x = call_block(layer, p, x, train)
            acts.append(x)
        return x, tuple(acts)

    return Model(layers, init, apply, tuple(layers[0].in_shape), int(layers[-1].out_shape[-1]))


# Blocks with BatchNorm statistics. Their params hold the statistics beside the parameters
# (so `predict(params, rule_state, x)` has all it needs, and checkpoints and sweeps carry
# them); the training step overwrites them with those of a training-mode forward pass of
# the step's batch through the pre-step params (`stats_pass`) -- the statistics backprop's
# own forward pass computes, whatever the rule does with the batch -- so the optimizer's
# change to them (zero gradient; weight decay) never lands.

def _stateful(block) -> bool:
    return bool(getattr(block, 'stateful', False))


def is_stateful(model) -> bool:
    """Whether some block of `model` keeps BatchNorm statistics."""
    return any(_stateful(b) for b in model.layers)


def call_block(block, p, x, train=None):
    """`block(p, x)`, in mode `train` where the block keeps statistics (a rule's step passes
    True, its predict False); other blocks take no mode."""
    return block(p, x, train) if _stateful(block) else block(p, x)


def hooked_block(block, p, x, hook, train=None):
    """`block.apply_hooked(p, x, hook)`, in mode `train` where the block keeps statistics."""
    if _stateful(block):
        return block.apply_hooked(p, x, hook, train)
    return block.apply_hooked(p, x, hook)


def stats_pass(model):
    """`(params, x) -> stats` for a model with statistics (else None): each stateful
    block's new 'batch_stats' after a training-mode forward pass of `x`, `{'layers':
    (stats or None, ...)}`; `with_stats` puts them into params. A rule that trains such a
    model sets it as its `update_stats`."""
    if not is_stateful(model):
        return None

    def update_stats(params, x):
        out = []
        for block, p in zip(model.layers, params['layers']):
            if _stateful(block):  # one training-mode call gives the output and the statistics
                x, stats = block.update_stats(p, x)
            else:
                x, stats = block(p, x), None
            out.append(stats)
        return {'layers': tuple(out)}

    return update_stats


def with_stats(params, stats):
    """`params` with each stateful block's 'batch_stats' replaced by `stats` (`stats_pass`)."""
    layers = tuple(p if s is None else {**p, 'batch_stats': s}
                   for p, s in zip(params['layers'], stats['layers']))
    return {**params, 'layers': layers}


def require_layers(model, rule: str, kinds: tuple, why: str) -> None:
    """One-line ValueErrors for a model `rule` cannot train: a block with BatchNorm
    statistics (`refuse_stateful`, with `why`), or a layer whose kind is not in `kinds`
    ('dense', 'conv': neurokit's own layers; a Flax block has no such kind)."""
    refuse_stateful(model, rule, why)
    models = {'dense': "an MLP (config.model.name='mlp')",
              'conv': "a CNN (config.model.name='cnn')"}
    for layer in model.layers:
        kind = getattr(layer, 'kind', None)
        if kind not in kinds:
            use = ' or '.join(models[k] for k in kinds if k in models)
            raise ValueError(f'rule {rule} trains {" and ".join(kinds)} layers only, and layer '
                             f'{getattr(layer, "name", layer)} is a {kind or "Flax block"}; '
                             f'use {use}')


def refuse_stateful(model, rule: str, why: str) -> None:
    """A one-line ValueError when `model` has a block with BatchNorm statistics, which
    `rule` cannot train (`why`)."""
    for block in model.layers:
        if _stateful(block):
            raise ValueError(f'rule {rule} cannot train block {block.name}, which keeps '
                             f'BatchNorm statistics: {why}; use nn.GroupNorm or nn.LayerNorm '
                             'in that block (or a rule that keeps the statistics: bp, fa, '
                             'usf, brsf, frsf, dfa, mf)')
