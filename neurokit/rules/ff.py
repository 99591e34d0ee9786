"""Forward-forward (Hinton 2022) and collaborative forward-forward (Lorberbom et al. 2024).

Every hidden layer has its own objective and no gradient crosses a layer: the
input of layer l is `stop_gradient(normalize(a_{l-1}))`. Because of that stop
gradient, the gradient of the SUM of all layers' local losses is, for each
layer, exactly the gradient of its own loss; so one batched forward pass over
positive and negative data (concatenated along the batch) and one `jax.grad`
give every layer's update at about the cost of one backprop step.

Three modes:

* 'supervised' (Hinton): the one-hot label is written into the first C values
  of the flattened input; negatives carry a wrong label (random, or the
  hardest by current goodness). Prediction: run the C label-embedded copies as
  one batch and take the label with the largest goodness summed over the
  readout layers; or (`predict='head'`) a linear softmax head on the
  normalised activities of a neutral-label pass ("one pass").
* 'unsupervised' (Hinton): negatives are hybrid images (two real images mixed
  through a blurred random mask); a linear softmax head on the normalised
  activities of the readout layers, trained jointly on a stop-gradient input,
  makes `predict` work.
* 'class_groups' (Scalable FF, Krutsylo 2025; the default for models with conv
  layers): one pass, no label in the input. Layer l gives each class c a
  goodness: the mean squared activity of the c-th channel group of its output
  ('groups'), or of channel c of a rule-owned 1x1 projection ('aux', Scalable
  FF's auxiliary convolution; used when a layer has fewer channels than
  classes). Loss: softmax cross-entropy over the class goodnesses.
  Prediction: argmax of the class goodness averaged over the readout layers.
  Dense layers of a CNN use the same scheme (their units are the channels), so
  one objective trains the whole network.

The model's output layer (the logits layer) plays no part in FF: its update is
zero and `predict` never uses it.

Greedy training (`greedy_steps_per_layer=N > 0`, Hinton's layer-by-layer
schedule): layer 0 trains for N steps, then layer 1, ...; a layer outside its
window must not change at all. One optimizer over the whole parameter tree
cannot give that: a zero gradient still moves a layer through Adam's momentum
or AdamW's weight decay. So greedy training needs the layerwise form
(`ff(model, ..., layerwise=True)`, `config.layerwise_updates=True`), an
`OptimizerRule` (see `neurokit.rules.base`): its blocks are one per hidden
layer (with its 'aux' projection) plus one for the rest (the model's output
layer and the 'ff_head'), each with its own optimizer state, and its step
steps only the active layer's block (and the rest): every other block keeps
its parameters and its optimizer state bit for bit. A layer's optimizer (its
step count, so its learning-rate schedule and Adam's bias correction) thus
counts only the steps of its own window, as if it were trained alone. The
constructor refuses a greedy schedule without `layerwise` (ValueError) rather
than build a rule whose updates an optimizer would spread. Without a greedy
schedule the layerwise form gives the numbers of the plain form + one
optimizer update for element-wise optimizers (FF takes one gradient of the
summed local losses either way, so it saves no memory).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from neurokit import losses
from neurokit.checks import check_count, check_range
from neurokit.models import Model
from neurokit.models.model import param_dtype, refuse_stateful
from neurokit.rules import ff_ops
from neurokit.rules.base import (OptimizerRule, Rule, check_batch, check_state, declare,
                                 layerwise_form)

MODES = ('auto', 'supervised', 'unsupervised', 'class_groups')
NEGATIVES = ('random', 'hard')
PREDICT = ('goodness', 'head')
CLASS_GOODNESS = ('auto', 'groups', 'aux')


class FFState(NamedTuple):
    """Forward-forward's state: the number of steps taken (drives the greedy schedule)."""
    step: jax.Array


def _check(value, valid, what):
    if value not in valid:
        raise ValueError(f'unknown {what} {value!r}; valid: {", ".join(valid)}')


def _forward_forward(model, *, collaborative, earlier_only, mode, goodness, threshold, loss,
                     alpha, normalize, negatives, label_scale, predict, predict_from,
                     greedy_steps_per_layer, class_goodness, blur_steps,
                     layerwise) -> Rule | OptimizerRule:
    refuse_stateful(model, 'cff' if collaborative else 'ff', "its positive and negative "
                    "passes would each normalise by their own batch's statistics")
    _check(mode, MODES, 'mode')
    _check(goodness, ff_ops.GOODNESS, 'goodness')
    _check(loss, ff_ops.LOSSES, 'loss')
    _check(normalize, ff_ops.NORMALIZE, 'normalize')
    _check(negatives, NEGATIVES, 'negatives')
    _check(predict, PREDICT, 'predict')
    _check(class_goodness, CLASS_GOODNESS, 'class_goodness')
    hidden = tuple(model.layers[:-1])
    n_layers, n_classes = len(hidden), model.num_classes
    if n_layers == 0:
        raise ValueError('forward-forward needs a model with at least one hidden layer')
    greedy_steps_per_layer = check_count('greedy_steps_per_layer', greedy_steps_per_layer, 0,
                                         'sets the training schedule')
    if greedy_steps_per_layer and not layerwise:
        raise ValueError(
            f'greedy_steps_per_layer={greedy_steps_per_layer} needs the layerwise form '
            '(layerwise=True; config.layerwise_updates=True): with one optimizer over all '
            "layers, a layer outside its window keeps moving through the optimizer's state "
            "(Adam's momentum, AdamW's weight decay)")
    blur_steps = check_count('blur_steps', blur_steps, 0, 'sets a loop length')
    check_range('alpha (the loss sharpness)', alpha, lambda v: v > 0, 'a finite number > 0')
    check_range('threshold', threshold, lambda v: True, 'a finite number')
    check_range('label_scale', label_scale, lambda v: True, 'a finite number')
    if mode == 'auto':
        mode = 'class_groups' if any(len(l.out_shape) > 1 for l in hidden) else 'supervised'
    if mode == 'supervised' and math.prod(model.input_shape) <= n_classes:
        raise ValueError(f'input of {math.prod(model.input_shape)} values is too small to hold '
                         f'a {n_classes}-way label')
    predict_from = check_count('predict_from', predict_from, -n_layers, 'picks the readout layers')
    if not -n_layers <= predict_from < n_layers:
        raise ValueError(f'predict_from={predict_from} is not a hidden layer index '
                         f'(the model has {n_layers} hidden layers)')
    readout = tuple(range(predict_from % n_layers, n_layers))
    use_head = mode == 'unsupervised' or (mode == 'supervised' and predict == 'head')
    widths = [l.out_shape[-1] for l in hidden]
    if class_goodness == 'auto':
        class_goodness = 'groups' if min(widths) >= n_classes else 'aux'
    if mode == 'class_groups' and class_goodness == 'groups' and min(widths) < n_classes:
        raise ValueError(f"class_goodness='groups' needs >= {n_classes} channels per layer, "
                         f"got {widths}; use 'aux'")
    use_aux = mode == 'class_groups' and class_goodness == 'aux'
    greedy = int(greedy_steps_per_layer)

    def run_layers(layer_params, x):
        """Activities of every hidden layer; nothing flows back across a layer."""
        acts, h = [], x
        for layer, p in zip(hidden, layer_params):
            h = layer(p, jax.lax.stop_gradient(ff_ops.normalize(h, normalize)))
            acts.append(h)
        return acts

    def label_scores(params, x):
        """Goodness summed over the readout layers, for every label: (B, C)."""
        b = x.shape[0]
        xs = jnp.broadcast_to(x[None], (n_classes,) + x.shape).reshape((n_classes * b,) + x.shape[1:])
        labels = jnp.repeat(jnp.arange(n_classes), b)
        acts = run_layers(params['layers'], ff_ops.embed_one_hot(xs, labels, n_classes, label_scale))
        g = sum(ff_ops.goodness(acts[l], goodness) for l in readout)
        return g.reshape(n_classes, b).T

    def head_logits(params, acts):
        # The head only reads the activities: stop_gradient keeps it from shaping the layers.
        feats = jnp.concatenate(
            [ff_ops.normalize(acts[l], normalize).reshape(acts[l].shape[0], -1) for l in readout], -1)
        h = params['ff_head']
        return jax.lax.stop_gradient(feats).astype(h['w'].dtype) @ h['w'] + h['b']

    def class_scores(params, acts):
        """Per layer, a goodness for every class: list of (B, C)."""
        out = []
        for i, a in enumerate(acts):
            a = a.reshape(a.shape[0], -1, a.shape[-1]).astype(jnp.float32)  # (B, positions, channels)
            if use_aux:
                p = params['ff_aux'][i]
                out.append(jnp.mean(jnp.square(a @ p['w'].astype(jnp.float32) + p['b']), axis=1))
            else:
                k = a.shape[-1] // n_classes  # channels left over after C equal groups are unused
                grouped = a[..., :k * n_classes].reshape(a.shape[:2] + (n_classes, k))
                out.append(jnp.mean(jnp.square(grouped), axis=(1, 3)))
        return out

    def collaborate(values):
        """CFF: add the other layers' (frozen) values to each layer's own."""
        if not collaborative:
            return values, [1] * len(values)
        frozen = [jax.lax.stop_gradient(v) for v in values]
        out, counts = [], []
        for i, v in enumerate(values):
            others = [frozen[t] for t in range(len(values)) if (t < i if earlier_only else t != i)]
            out.append(v + sum(others) if others else v)
            counts.append(1 + len(others))
        return out, counts

    def active_layer(state):
        """The hidden layer the greedy schedule trains at this step."""
        return jnp.minimum(state.step // greedy, n_layers - 1)

    def layer_weights(state):
        if not greedy:
            return [1.0] * n_layers
        active = active_layer(state)
        return [(active == l).astype(jnp.float32) for l in range(n_layers)]

    def init_params(key, params):
        params = dict(params)
        if use_head:
            n_in = sum(math.prod(hidden[l].out_shape) for l in readout)
            dtype = param_dtype(params['layers'][0])
            params['ff_head'] = {'w': jnp.zeros((n_in, n_classes), dtype),
                                 'b': jnp.zeros((n_classes,), dtype)}
        if use_aux:
            keys = jax.random.split(key, n_layers)
            params['ff_aux'] = tuple(
                {'w': jax.random.normal(k, (c, n_classes), param_dtype(params['layers'][i])) / math.sqrt(c),
                 'b': jnp.zeros((n_classes,), param_dtype(params['layers'][i]))}
                for i, (k, c) in enumerate(zip(keys, widths)))
        return params

    def init(key, params):
        del key, params
        return FFState(jnp.zeros((), jnp.int32))

    def gradients(params, state, batch, key):
        """The gradient of the (schedule-weighted) sum of the local losses, and metrics."""
        batch = check_batch(model, batch, params)
        check_state(state, FFState, 'cff' if collaborative else 'ff')
        x, y = batch['x'], batch['y']
        b = x.shape[0]
        if mode == 'supervised':
            if negatives == 'hard':
                y_neg = ff_ops.hardest_wrong_labels(
                    jax.lax.stop_gradient(label_scores(params, x)), y)
            else:
                y_neg = ff_ops.random_wrong_labels(key, y, n_classes)
            parts = [ff_ops.embed_one_hot(x, y, n_classes, label_scale),
                     ff_ops.embed_one_hot(x, y_neg, n_classes, label_scale)]
            if use_head:
                parts.append(ff_ops.embed_label(
                    x, jnp.full((b, n_classes), label_scale / n_classes, x.dtype)))
        elif mode == 'unsupervised':
            parts = [x, ff_ops.hybrid_images(key, x, blur_steps)[0]]
        else:
            parts = [x]
        xx = jnp.concatenate(parts) if len(parts) > 1 else parts[0]
        weights = layer_weights(state)

        def objective(params):
            acts = run_layers(params['layers'], xx)
            metrics, total = {}, 0.0
            if mode == 'class_groups':
                scores = class_scores(params, acts)
                logits, _ = collaborate(scores)
                for l, (z, w) in enumerate(zip(logits, weights)):
                    metrics[f'loss_{l}'] = losses.cross_entropy(z, y)
                    total = total + w * metrics[f'loss_{l}']
                avg = sum(scores[l] for l in readout) / len(readout)
                metrics['accuracy'] = jnp.mean(jnp.argmax(avg, -1) == y)
            else:
                gs = [ff_ops.goodness(a[:2 * b], goodness) for a in acts]
                es, counts = collaborate(gs)
                for l, (e, n, w) in enumerate(zip(es, counts, weights)):
                    if loss == 'symba':
                        value = ff_ops.symba_loss(e[:b], e[b:], alpha)
                    else:
                        value = ff_ops.logistic_loss(e[:b], e[b:], threshold * n, alpha)
                    metrics[f'loss_{l}'] = value
                    metrics[f'goodness_pos_{l}'] = gs[l][:b].mean()
                    metrics[f'goodness_neg_{l}'] = gs[l][b:].mean()
                    total = total + w * value
                if use_head:
                    head_acts = [a[2 * b:] if mode == 'supervised' else a[:b] for a in acts]
                    z = head_logits(params, head_acts)
                    metrics['head_loss'] = losses.cross_entropy(z, y)
                    metrics['accuracy'] = jnp.mean(jnp.argmax(z, -1) == y)
                    total = total + metrics['head_loss']
            metrics['loss'] = total
            return total, metrics

        return jax.grad(objective, has_aux=True)(params)

    def step(params, state, batch, key):
        grads, metrics = gradients(params, state, batch, key)
        return grads, FFState(state.step + 1), metrics

    def blocks(params):
        """The blocks a layerwise step updates: hidden layer l (with its aux projection),
        then the rest (the model's output layer, which gets zero gradients, and the head)."""
        hidden_blocks = tuple(
            {'layer': params['layers'][l], **({'aux': params['ff_aux'][l]} if use_aux else {})}
            for l in range(n_layers))
        rest = {'layers': tuple(params['layers'][n_layers:])}
        if use_head:
            rest['head'] = params['ff_head']
        return hidden_blocks + (rest,)

    def join_blocks(trees):
        """The inverse of `blocks`: per-block trees -> the entries of params FF owns."""
        out = {'layers': tuple(b['layer'] for b in trees[:-1]) + tuple(trees[-1]['layers'])}
        if use_aux:
            out['ff_aux'] = tuple(b['aux'] for b in trees[:-1])
        if use_head:
            out['ff_head'] = trees[-1]['head']
        return out

    def step_blocks(params, state, opt_states, batch, key, optimizer):
        grads, metrics = gradients(params, state, batch, key)
        old = blocks(params)
        new, new_states = [], []
        for i, (p, g, s) in enumerate(zip(old, blocks(grads), opt_states)):
            updates, s_new = optimizer.update(g, s, p)
            p_new = optax.apply_updates(p, updates)
            if greedy and i < n_layers:
                # Outside its window a layer keeps its parameters and optimizer state exactly.
                on = active_layer(state) == i
                p_new, s_new = jax.tree.map(lambda n, o: jnp.where(on, n, o), (p_new, s_new), (p, s))
            new.append(p_new)
            new_states.append(s_new)
        params = {**params, **join_blocks(new)}
        return params, FFState(state.step + 1), tuple(new_states), metrics

    def predict(params, state, x):
        del state
        if mode == 'class_groups':
            scores = class_scores(params, run_layers(params['layers'], x))
            return sum(scores[l] for l in readout) / len(readout)
        if use_head:
            if mode == 'supervised':
                x = ff_ops.embed_label(
                    x, jnp.full((x.shape[0], n_classes), label_scale / n_classes, x.dtype))
            return head_logits(params, run_layers(params['layers'], x))
        return label_scores(params, x)

    rule = Rule(init, step, predict, init_params)
    return layerwise_form(rule, blocks, step_blocks) if layerwise else rule


@declare(pmap_exact=False)  # random negatives drawn per device
def ff(model: Model, mode: str = 'auto', goodness: str = 'mean', threshold: float = 2.0,
       loss: str = 'symba', alpha: float = 40.0, normalize: str = 'rms',
       negatives: str = 'random', label_scale: float = 1.0, predict: str = 'goodness',
       predict_from: int = 0, greedy_steps_per_layer: int = 0, class_goodness: str = 'auto',
       blur_steps: int = 6, layerwise: bool = False) -> Rule | OptimizerRule:
    """Hinton's forward-forward as a `Rule`.

    Args:
      model: the network; its hidden layers are trained, its output layer is
        left unchanged (zero updates).
      mode: 'supervised', 'unsupervised', 'class_groups' or 'auto'
        (class_groups if the model has conv layers, else supervised).
      goodness: 'mean' or 'sum' of squared activities.
      threshold: theta in `p = sigmoid(alpha (G - theta))`; only the logistic loss uses it
        (the default SymBa loss compares G+ with G- and ignores it).
      loss: 'logistic' (Hinton: `softplus(-a(G+ - theta)) + softplus(a(G- - theta))`)
        or 'symba' (`softplus(-a (G+ - G-))`, SymBa). The default is SymBa:
        on a validation split of digits it learned faster than the logistic
        loss at any threshold tried (0.84 vs 0.75 after 5 epochs), and on a
        Fashion-MNIST validation split (0.81 vs 0.75 after 2 epochs).
      alpha: sharpness a (1/T, the temperature of Hinton's code); the paper's
        logistic loss has a = 1 with sum goodness. With mean goodness (values
        O(1)) a large a is needed: 40 was best of {4, 20, 40} on digits.
      normalize: each layer's input normalisation: 'rms', 'l2' or 'none'.
      negatives: supervised wrong labels: 'random' or 'hard' (the wrong label
        with the highest current goodness; costs C extra forward passes).
      label_scale: value written for the label in the input.
      predict: supervised prediction: 'goodness' (C passes) or 'head' (one
        neutral-label pass through a trained softmax head).
      predict_from: first hidden layer read by the prediction (goodness sum,
        head or class goodness average); negative counts from the end (Hinton
        skips the first: 1).
      greedy_steps_per_layer: 0 trains all layers on every batch; N > 0 trains
        layer 0 for N steps, then layer 1, ... (the last one until the end); the
        other layers do not change at all. N > 0 needs `layerwise` (see the
        module docstring): ValueError without it.
      class_goodness: class_groups mode: 'groups' (channel groups), 'aux'
        (a 1x1 projection to C channels, rule-owned) or 'auto'.
      blur_steps: unsupervised mode: 3x3 blur passes of the hybrid-image mask.
      layerwise: return the layerwise form, an `OptimizerRule` with one
        optimizer state per block (a `LayerwiseOptState`); needed by a greedy
        schedule.

    Returns:
      A `Rule` (an `OptimizerRule` with `layerwise`) whose state counts steps and
      whose `init_params` adds 'ff_head' (head) or 'ff_aux' (aux class goodness)
      when used.

    Example:
      >>> model = mlp((28, 28, 1), 10, (1000, 1000))
      >>> rule = ff(model)
      >>> params = rule.init_params(key, model.init(key))
      >>> updates, state, metrics = rule.step(params, rule.init(key, params), batch, key)
    """
    return _forward_forward(
        model, collaborative=False, earlier_only=False, mode=mode, goodness=goodness,
        threshold=threshold, loss=loss, alpha=alpha, normalize=normalize,
        negatives=negatives, label_scale=label_scale, predict=predict, predict_from=predict_from,
        greedy_steps_per_layer=greedy_steps_per_layer, class_goodness=class_goodness,
        blur_steps=blur_steps, layerwise=layerwise)


@declare(pmap_exact=False)
def cff(model: Model, earlier_only: bool = False, mode: str = 'auto', goodness: str = 'mean',
        threshold: float = 2.0, loss: str = 'symba', alpha: float = 40.0,
        normalize: str = 'rms', negatives: str = 'random', label_scale: float = 1.0,
        predict: str = 'goodness', predict_from: int = 0, greedy_steps_per_layer: int = 0,
        class_goodness: str = 'auto', blur_steps: int = 6,
        layerwise: bool = False) -> Rule | OptimizerRule:
    """Collaborative forward-forward: each layer's probability uses every layer's goodness.

    `p_i = sigmoid(G_i + gamma_i - n_i theta)` with `gamma_i = sum_{t != i} G_t`
    held constant (stop_gradient; the paper's frozen copy), or only `t < i`
    with `earlier_only`. `n_i` is the number of goodness terms summed, so
    `theta` keeps its per-layer meaning (the paper writes one theta for the
    sum). In class_groups mode the class goodnesses are summed the same way
    before the softmax. All layers update on every batch (unless
    `greedy_steps_per_layer > 0`, which works as in `ff`: the layerwise
    form only); still no gradient crosses a layer.

    Args:
      model: the network.
      earlier_only: sum only the earlier layers' goodness into gamma_i.
      Others: as in `ff`.

    Returns:
      A `Rule` (an `OptimizerRule` with `layerwise`).

    Example:
      >>> rule = cff(mlp((28, 28, 1), 10, (1000, 1000)), earlier_only=True)
    """
    return _forward_forward(
        model, collaborative=True, earlier_only=earlier_only, mode=mode, goodness=goodness,
        threshold=threshold, loss=loss, alpha=alpha, normalize=normalize,
        negatives=negatives, label_scale=label_scale, predict=predict, predict_from=predict_from,
        greedy_steps_per_layer=greedy_steps_per_layer, class_goodness=class_goodness,
        blur_steps=blur_steps, layerwise=layerwise)
