"""Rule composition: assign learning rules to parts of a model.

Two combinators, both returning a `Rule` (an `OptimizerRule` when any part is
one: see below), so a combination trains, vmaps, shards and checkpoints like
any single rule:

* `combine(rules, labels)` — like `optax.multi_transform`: every rule is built
  on the WHOLE model and run on it; layer l takes its update from the rule
  labelled for it, and gets zero from the others. Exact for mixtures such as
  mono-forward on the hidden layers + backprop on the head (backprop's head
  gradient only needs the forward pass), or FA on the convolutions + DFA on
  the dense layers. Combining a rule with itself on all layers is the rule.
* `chain(model, parts)` — block-local learning: the layers are cut into
  consecutive blocks, each block's rule is built on its own sub-model and sees
  the previous block's output as its input, with a stop-gradient at the
  boundary. Blocks then have no backward dependency on each other, which is
  what `neurokit.parallel.pipeline` exploits to put them on different devices.

Rule-owned trainables (the extras a rule's `init_params` adds beside
'layers') are kept per rule under `params['rules'][label]`, so two rules that
both add, say, 'mf_proj' never collide; each rule's `step` and `predict` see
`{'layers': ..., **its extras}` as if it were alone.

Every rule is called with the step's key unchanged (that is what makes a rule
combined with itself equal to the rule, randomness included).

A part that steps the optimizer inside its pass (an `OptimizerRule`: ipc, a
layerwise form such as `mf(model, layerwise=True)`) makes the combination an
`OptimizerRule`: every part is then adapted (`with_optimizer`) and keeps its own
optimizer state for what it sees (combine: the whole model, of which only the
layers it owns and its extras are kept; chain: its block). For element-wise
optimizers that gives the numbers of the plain combination + one optimizer
update (combine keeps one optimizer state per part, so it costs that memory).

Example:
  >>> model = mlp((784,), 10, (1000, 1000))
  >>> rule = combine({'hidden': mf(model), 'head': bp(model)},
  ...                ('hidden', 'hidden', 'head'))
  >>> blocks = chain(model, [((0, 2), bp), ((2, 3), bp)])
"""
from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

import jax

from neurokit.models.model import Model, refuse_stateful, sequential
from neurokit.rules.base import OptimizerRule, Rule, with_optimizer, zeros_like_tree

EXTRAS = 'rules'


def _split(params):
    """params -> (layers, extras dict without 'layers')."""
    return params['layers'], {k: v for k, v in params.items() if k != 'layers'}


def _join(layers, extras_by_label):
    """Combined params: the layers, plus per-rule extras where a rule has any."""
    out = {'layers': tuple(layers)}
    kept = {k: v for k, v in extras_by_label.items() if v}
    if kept:
        out[EXTRAS] = kept
    return out


def _view(params, label):
    """What one rule sees: the layers and its own extras."""
    return {'layers': params['layers'], **params.get(EXTRAS, {}).get(label, {})}


def _wider(rules) -> dict | None:
    """Every rule adapted to an `OptimizerRule` when any is one, else None (all plain)."""
    rules = dict(rules)
    if not any(isinstance(r, OptimizerRule) for r in rules.values()):
        return None
    return {name: with_optimizer(r) for name, r in rules.items()}


def _prefixed(metrics, label):
    return {f'{label}_{k}': v for k, v in metrics.items()}


def layer_labels(num_layers: int, **ranges) -> tuple:
    """Per-layer labels from index ranges, e.g. `layer_labels(3, hidden=(0, 2), head=(2, 3))`.

    Ranges are half-open `(start, stop)`; negative indices count from the end.
    Raises ValueError if a layer is labelled twice or left unlabelled.
    """
    labels = [None] * num_layers
    for label, (start, stop) in ranges.items():
        for i in range(num_layers)[start:stop]:
            if labels[i] is not None:
                raise ValueError(f'layer {i} labelled both {labels[i]!r} and {label!r}')
            labels[i] = label
    if None in labels:
        raise ValueError(f'layers {[i for i, l in enumerate(labels) if l is None]} have no rule')
    return tuple(labels)


def combine(rules: Mapping[str, Rule | OptimizerRule], labels: Sequence[str] | Callable,
            predict_with: str | None = None) -> Rule | OptimizerRule:
    """A rule that trains each layer with the rule of its label.

    Args:
      rules: label -> `Rule` or `OptimizerRule`, each built on the same (whole) model.
      labels: one label per layer, or a function `layers_params -> labels`
        (called on `params['layers']`, like optax's `param_labels`).
      predict_with: the label whose rule predicts (and whose 'loss' is the
        combination's 'loss'); default: the label of the last layer.

    Returns:
      A `Rule`, or an `OptimizerRule` when any part is one (its optimizer state is
      `{label: that part's optimizer state}`). Its metrics are each rule's metrics
      prefixed `<label>_`, plus 'loss' (and 'accuracy' when present) of the
      predicting rule.

    Raises:
      ValueError: a label without a rule, or a part that is not a rule.

    Example:
      >>> rule = combine({'hidden': mf(model), 'head': bp(model)},
      ...                layer_labels(3, hidden=(0, 2), head=(2, 3)))
    """
    rules = dict(rules)
    if not rules:
        raise ValueError('combine needs at least one rule: pass {label: rule, ...}')
    for name, r in rules.items():
        if not isinstance(r, (Rule, OptimizerRule)):
            raise ValueError(f'combine: rules[{name!r}] is a {type(r).__name__}, not a Rule; pass '
                             'a built rule (e.g. mf(model)), not its constructor')
        refuse_hooks(r, f'combine: rules[{name!r}]')
    if predict_with is not None and predict_with not in rules:
        raise ValueError(f'predict_with={predict_with!r} is not a label; labels: {sorted(rules)}')
    wide = _wider(rules)
    # every part is built on the whole model, so any part's statistics pass is the model's
    stats = next((r.update_stats for r in rules.values() if r.update_stats is not None), None)

    def resolve(layers):
        lab = tuple(labels(layers) if callable(labels) else labels)
        if len(lab) != len(layers):
            raise ValueError(f'{len(lab)} labels for {len(layers)} layers')
        unknown = sorted(set(lab) - set(rules))
        if unknown:
            raise ValueError(f'labels {unknown} have no rule; rules: {sorted(rules)}')
        return lab

    def head_label(lab):
        return predict_with if predict_with is not None else lab[-1]

    def init_params(key, model_params):
        lab = resolve(model_params['layers'])
        full = {name: r.init_params(key, model_params) for name, r in rules.items()}
        # Each layer's initial values come from the rule that will train it.
        layers = tuple(full[lab[i]]['layers'][i] for i in range(len(lab)))
        return _join(layers, {name: _split(p)[1] for name, p in full.items()})

    def init(key, params):
        return {name: r.init(key, _view(params, name)) for name, r in rules.items()}

    def step(params, state, batch, key):
        layers = params['layers']
        lab = resolve(layers)
        head = head_label(lab)
        layer_updates = [None] * len(layers)
        extra_updates, new_state, metrics = {}, {}, {}
        for name, r in rules.items():
            view = _view(params, name)
            owns = [i for i, l in enumerate(lab) if l == name]
            if not owns and len(view) == 1 and name != head:
                new_state[name] = state[name]  # owns nothing, trains nothing: skip its work
                continue
            u, new_state[name], m = r.step(view, state[name], batch, key)
            u_layers, u_extras = _split(u)
            for i in owns:
                layer_updates[i] = u_layers[i]
            if u_extras:
                extra_updates[name] = u_extras
            metrics.update(_prefixed(m, name))
            if name == head:
                metrics.update({k: m[k] for k in ('loss', 'accuracy') if k in m})
        for i, u in enumerate(layer_updates):
            if u is None:  # unreachable with resolved labels; kept for safety
                layer_updates[i] = zeros_like_tree(layers[i])
        updates = _join(layer_updates, extra_updates)
        # Keep the exact params tree even for extras of a rule whose step was skipped.
        for name, ex in params.get(EXTRAS, {}).items():
            updates.setdefault(EXTRAS, {}).setdefault(name, zeros_like_tree(ex))
        return updates, new_state, metrics

    def predict(params, state, x):
        head = head_label(resolve(params['layers']))
        return rules[head].predict(_view(params, head), state[head], x)

    if wide is None:
        return Rule(init, step, predict, init_params, stats)

    def init_opt_state(optimizer, params):
        return {name: r.init_opt_state(optimizer, _view(params, name)) for name, r in wide.items()}

    def optimizer_step(params, state, opt_state, batch, key, optimizer):
        layers = params['layers']
        lab = resolve(layers)
        head = head_label(lab)
        new_layers = list(layers)
        new_extras = dict(params.get(EXTRAS, {}))
        new_state, new_opt, metrics = {}, {}, {}
        for name, r in wide.items():
            view = _view(params, name)
            owns = [i for i, l in enumerate(lab) if l == name]
            if not owns and len(view) == 1 and name != head:  # as in `step`: skip its work
                new_state[name], new_opt[name] = state[name], opt_state[name]
                continue
            p, new_state[name], new_opt[name], m = r.step(view, state[name], opt_state[name],
                                                           batch, key, optimizer)
            p_layers, p_extras = _split(p)
            for i in owns:
                new_layers[i] = p_layers[i]
            if p_extras:
                new_extras[name] = p_extras
            metrics.update(_prefixed(m, name))
            if name == head:
                metrics.update({k: m[k] for k in ('loss', 'accuracy') if k in m})
        return _join(new_layers, new_extras), new_state, new_opt, metrics

    return OptimizerRule(init, optimizer_step, predict, init_params, init_opt_state, stats)


class Part(NamedTuple):
    """One block of a `chain`: layers [start, stop), its sub-model and its rule."""
    start: int
    stop: int
    model: Model
    rule: Rule


def refuse_hooks(rule, where: str) -> None:
    """ValueError for a rule with a projection or parameter groups: a composition would
    have to split them over its parts, which it does not."""
    for hook in ('project', 'param_labels'):
        if getattr(rule, hook, None) is not None:
            raise ValueError(f'{where} has a {hook} hook, which combine and chain do not pass '
                             'on to the composed rule; train that rule on its own')


def parts_of(model: Model, parts: Sequence) -> list[Part]:
    """Builds the blocks of a chain.

    Args:
      model: the whole model.
      parts: a sequence of `((start, stop), build)` with `build(sub_model) -> Rule`
        (or `OptimizerRule`),
        covering the layers in order without gaps.

    Raises:
      ValueError: parts that leave gaps or overlap, or a block whose last layer
        has fewer units than the model has classes (its rule reads those units
        as the logits of the whole label set: a label >= the width would get an
        all-zero one-hot and contribute a zero loss, silently).
    """
    out, expect = [], 0
    for k, ((start, stop), build) in enumerate(parts):
        if not callable(build) or isinstance(build, (Rule, OptimizerRule)):
            raise ValueError(f'chain part {k}: {type(build).__name__} is not a rule builder; pass '
                             'a function sub_model -> Rule, e.g. bp or lambda m: mf(m, ...)')
        if start != expect or stop <= start:
            raise ValueError(f'chain parts must cover consecutive layers; got ({start}, {stop}) '
                             f'after layer {expect}')
        sub = sequential(model.layers[start:stop])
        if sub.num_classes < model.num_classes:
            raise ValueError(
                f'chain block {k} (layers [{start}, {stop})) ends with {sub.num_classes} units, '
                f'which its rule reads as the class scores, but the model has '
                f'{model.num_classes} classes: labels >= {sub.num_classes} would be dropped '
                f'(zero one-hot, zero loss); end the block at a layer with >= '
                f'{model.num_classes} units')
        out.append(Part(start, stop, sub, build(sub)))
        expect = stop
    if expect != len(model.layers):
        raise ValueError(f'chain parts cover layers [0, {expect}) of {len(model.layers)}')
    return out


def part_params(params, k: int, part: Part):
    """The params part k's rule sees."""
    return {'layers': tuple(params['layers'][part.start:part.stop]),
            **params.get(EXTRAS, {}).get(str(k), {})}


def part_forward(part: Part, sub_params, x):
    """A block's output, as the next block's input: no gradient crosses the boundary."""
    return jax.lax.stop_gradient(part.model.apply({'layers': sub_params['layers']}, x)[0])


def chain(model: Model, parts: Sequence) -> Rule | OptimizerRule:
    """Block-local learning: each block of layers has its own rule.

    Args:
      model: the whole model.
      parts: `((start, stop), build)` pairs in layer order, where
        `build(sub_model) -> Rule` or `OptimizerRule` (a rule constructor such as
        `bp`, or a lambda setting its hyperparameters). Block k's rule trains
        layers [start, stop) on the previous block's (stop-gradient) output.

    Returns:
      A `Rule` (an `OptimizerRule` when any block's rule is one; its optimizer
      state is a tuple, one per block) whose state is a tuple (one per block) and
      whose extras live in `params['rules'][str(k)]`. `predict` runs the blocks' forward passes then
      the last block's `predict`. Metrics: each block's prefixed `block<k>_`,
      'loss'/'accuracy' of the last block.

    Raises:
      ValueError: as `parts_of` (gaps, or a block narrower than the class count).

    Example:
      >>> rule = chain(model, [((0, 2), bp), ((2, 3), lambda m: bp(m, loss='mse'))])
    """
    refuse_stateful(model, 'chain', "each block's rule sees a sub-model, and the statistics "
                    'pass runs the whole model')
    blocks = parts_of(model, parts)
    for k, p in enumerate(blocks):
        refuse_hooks(p.rule, f'chain part {k}')
    wide = _wider((k, p.rule) for k, p in enumerate(blocks))

    def init_params(key, model_params):
        layers, extras = [], {}
        for k, p in enumerate(blocks):
            sub = p.rule.init_params(key, {'layers': tuple(model_params['layers'][p.start:p.stop])})
            sub_layers, extras[str(k)] = _split(sub)
            layers.extend(sub_layers)
        return _join(layers, extras)

    def init(key, params):
        return tuple(p.rule.init(key, part_params(params, k, p)) for k, p in enumerate(blocks))

    def step(params, state, batch, key):
        h, y = batch['x'], batch['y']
        layer_updates, extra_updates, new_state, metrics = [], {}, [], {}
        for k, p in enumerate(blocks):
            view = part_params(params, k, p)
            u, s, m = p.rule.step(view, state[k], {'x': h, 'y': y}, key)
            u_layers, u_extras = _split(u)
            layer_updates.extend(u_layers)
            if u_extras:
                extra_updates[str(k)] = u_extras
            new_state.append(s)
            metrics.update(_prefixed(m, f'block{k}'))
            if k < len(blocks) - 1:
                h = part_forward(p, view, h)
        metrics.update({key_: m[key_] for key_ in ('loss', 'accuracy') if key_ in m})
        return _join(layer_updates, extra_updates), tuple(new_state), metrics

    def predict(params, state, x):
        for k, p in enumerate(blocks[:-1]):
            x = part_forward(p, part_params(params, k, p), x)
        k = len(blocks) - 1
        return blocks[k].rule.predict(part_params(params, k, blocks[k]), state[k], x)

    if wide is None:
        return Rule(init, step, predict, init_params)

    def init_opt_state(optimizer, params):
        return tuple(wide[k].init_opt_state(optimizer, part_params(params, k, p))
                     for k, p in enumerate(blocks))

    def optimizer_step(params, state, opt_state, batch, key, optimizer):
        h, y = batch['x'], batch['y']
        layers, extras, new_state, new_opt, metrics = [], {}, [], [], {}
        for k, p in enumerate(blocks):
            view = part_params(params, k, p)
            new, s, o, m = wide[k].step(view, state[k], opt_state[k], {'x': h, 'y': y}, key,
                                        optimizer)
            new_layers, new_extras = _split(new)
            layers.extend(new_layers)
            if new_extras:
                extras[str(k)] = new_extras
            new_state.append(s)
            new_opt.append(o)
            metrics.update(_prefixed(m, f'block{k}'))
            if k < len(blocks) - 1:
                h = part_forward(p, view, h)  # the block's input before its step, as in `step`
        metrics.update({key_: m[key_] for key_ in ('loss', 'accuracy') if key_ in m})
        return _join(layers, extras), tuple(new_state), tuple(new_opt), metrics

    return OptimizerRule(init, optimizer_step, predict, init_params, init_opt_state)
