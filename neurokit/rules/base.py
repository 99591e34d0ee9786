"""The learning-rule interfaces: `Rule`, and `OptimizerRule` for rules that step the optimizer.

A rule is built by a constructor that closes over the model and the rule's
hyperparameters, like an optax `GradientTransformation`::

    rule = neurokit.rules.bp(model)
    params = rule.init_params(key, model.init(key))   # adds rule-owned trainables
    rule_state = rule.init(key, params)               # fixed things: feedback matrices...
    updates, rule_state, metrics = rule.step(params, rule_state, batch, key)
    updates, opt_state = optimizer.update(updates, opt_state, params)
    params = optax.apply_updates(params, updates)
    logits = rule.predict(params, rule_state, x)

`updates` has the tree of `params` and the sign of a gradient (the optimizer
descends it), so any optax optimizer, schedule or `multi_transform` applies to
any rule.

Some rules must step the optimizer inside their own pass: incremental PC takes
a weight step at every inference step, and a layerwise form (mono-forward's,
forward-forward's) updates each block of layers as soon as its gradient exists,
so that a block's gradient is dead before the next block's forward runs. Such a
rule is an `OptimizerRule` (the way optax has `GradientTransformationExtraArgs`
beside `GradientTransformation`): its step is handed the optimizer and its
state and returns the new parameters::

    opt_state = rule.init_opt_state(optimizer, params)
    params, rule_state, opt_state, metrics = rule.step(
        params, rule_state, opt_state, batch, key, optimizer)

`with_optimizer(rule)` turns a `Rule` into an `OptimizerRule` (its step is
`rule.step`, then `optimizer.update` and `optax.apply_updates`), so the training
step has one path for both. A rule with a layerwise form takes a keyword
`layerwise: bool = False` and returns its `OptimizerRule` when it is True
(`neurokit.rules.registry.build(name, model, layerwise=True)` for a rule by name);
its optimizer state is a `LayerwiseOptState`, one optax state per block. For
element-wise optimizers (sgd, adam, adamw, rmsprop, their schedules) that
computes the numbers of the plain form + one optimizer update; an optimizer that
couples blocks (global-norm clipping) would see one block at a time.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from neurokit.checks import check_count, check_range, finite
from neurokit.models.model import check_layer_count
from neurokit.traced import is_traced

# The number checks rules use live in `neurokit.checks` (optim and config share them);
# they are re-exported here, where rule code has always found them.
__all__ = ['Batch', 'Capabilities', 'EmptyState', 'LayerwiseOptState', 'Metrics', 'OptimizerRule', 'Params',
           'Rule', 'RuleState', 'check_batch', 'check_count', 'check_examples',
           'check_label_range', 'check_params', 'check_range', 'check_state', 'declare',
           'finite',
           'layerwise_form', 'no_extra_params', 'optimizer_init', 'with_optimizer',
           'zeros_like_tree']

Params = Any
RuleState = Any
Batch = dict  # {'x': inputs, 'y': integer labels}
Metrics = dict


class EmptyState(NamedTuple):
    """Rule state of rules that keep none."""


def no_extra_params(key, params):
    """Default `init_params`: the rule adds no trainable parameters."""
    del key
    return params


def optimizer_init(optimizer: optax.GradientTransformation, params):
    """Default `OptimizerRule.init_opt_state`: one optimizer state for all of `params`."""
    return optimizer.init(params)


class Capabilities(NamedTuple):
    """What a rule declares about itself (`declare`), read by the registry, the runner and
    the test batteries, so that adding a rule edits no test file.

    Attributes:
      layers: the layer kinds the rule trains: 'dense' and 'conv' (`models.layers`), and
        'block' for Flax modules as blocks (`models.from_linen`/`from_nnx`).
      toy_learning_rate: the Adam step the conformance battery trains its toy task with
        (the same budget for every rule; a rule with a noisier update asks for a larger one).
      pmap_exact: whether a pmap run (each device steps on its slice of the batch, the
        updates averaged) is the one-device run up to rounding: False for a rule whose
        update is not the mean of equal slices' updates (random negatives drawn per
        device, optimizer steps inside its pass).
      multihost_tolerance: the largest parameter difference the 2-process and 8-device
        checks accept against one device (cross-device sums round differently).
    """
    layers: tuple = ('dense', 'conv', 'block')
    toy_learning_rate: float = 1e-3
    pmap_exact: bool = True
    multihost_tolerance: float = 1e-5


def declare(**capabilities):
    """Decorator for a rule constructor: its `Capabilities` (unnamed fields keep their
    defaults), read back by `neurokit.rules.registry.capabilities(name)`.

    Example:
      @declare(toy_learning_rate=3e-3)
      def fa(model, ...): ...
    """
    declared = Capabilities(**capabilities)

    def mark(constructor):
        constructor.capabilities = declared
        return constructor

    return mark


class Rule(NamedTuple):
    """A learning rule: pure functions over pytrees; the optimizer steps its updates.

    Attributes:
      init: `(key, params) -> rule_state`; fixed, non-trained state.
      step: `(params, rule_state, batch, key) -> (updates, rule_state, metrics)`.
        `metrics` is a dict of scalars and must hold 'loss'.
      predict: `(params, rule_state, x) -> logits`; `x` is a batch `(B, *input_shape)`
        (one example: `x[None]`).
      init_params: `(key, model_params) -> params`; adds the rule's own
        trainable parameters beside `'layers'`.
      update_stats: `(params, x) -> stats` for a model with BatchNorm statistics
        (`models.stats_pass(model)`), else None: the training step puts the statistics
        of the pre-step params on the batch into the new params (`models.with_stats`).
      project: `(params, rule_state) -> params`, applied to the parameters after every
        optimizer step (a projection in optax's sense: FOTON's orthonormalisation), or
        None. `rule_state` is the step's new one.
      param_labels: `params -> pytree of str` naming each parameter's group (the labels
        of `optax.multi_transform`), or None (one group). A config gives a group its own
        optimizer settings (`config.optimizer_groups.<label>`); unnamed groups take
        `config.optimizer`.
    """
    init: Callable
    step: Callable
    predict: Callable
    init_params: Callable = no_extra_params
    update_stats: Callable | None = None
    project: Callable | None = None
    param_labels: Callable | None = None


class OptimizerRule(NamedTuple):
    """A learning rule that steps the optimizer inside its own pass.

    Attributes:
      init, predict, init_params: as in `Rule`.
      step: `(params, rule_state, opt_state, batch, key, optimizer) -> (params,
        rule_state, opt_state, metrics)`: the new parameters, not updates.
      init_opt_state: `(optimizer, params) -> opt_state`, the optimizer state
        `step` takes (default `optimizer.init(params)`; a layerwise form keeps
        one state per block).
      update_stats, project, param_labels: as in `Rule`.
    """
    init: Callable
    step: Callable
    predict: Callable
    init_params: Callable = no_extra_params
    init_opt_state: Callable = optimizer_init
    update_stats: Callable | None = None
    project: Callable | None = None
    param_labels: Callable | None = None


def with_optimizer(rule: Rule | OptimizerRule, reduce: Callable | None = None) -> OptimizerRule:
    """`rule` as an `OptimizerRule`; an `OptimizerRule` comes back as it is.

    The step of a `Rule` adapted here is `rule.step`, then `optimizer.update` and
    `optax.apply_updates`: the numbers of calling the three in turn, bit for bit.

    Args:
      rule: a `Rule` or an `OptimizerRule`.
      reduce: optional tree -> tree function (the pmap path's mean over devices).
        For a `Rule` it is applied to `(updates, rule_state, metrics)` between the
        rule and the optimizer; an `OptimizerRule` has no updates to average, so it
        is applied after its step to `(params, rule_state, opt_state, metrics)`:
        each device steps on its slice and the results are averaged (exact for
        plain SGD, not for optimizers whose step is not linear in the gradient).

    Returns:
      An `OptimizerRule` whose optimizer state is `rule`'s (`optimizer.init(params)`
      for a `Rule`).

    Raises:
      ValueError: `rule` is neither kind (a constructor passed instead of a rule).
    """
    if isinstance(rule, OptimizerRule):
        if reduce is None:
            return rule

        def reduced_step(params, rule_state, opt_state, batch, key, optimizer):
            return reduce(rule.step(params, rule_state, opt_state, batch, key, optimizer))

        return rule._replace(step=reduced_step)
    if not isinstance(rule, Rule):
        raise ValueError(f'expected a Rule or an OptimizerRule, got a {type(rule).__name__}; '
                         'pass a built rule, e.g. bp(model), not its constructor')

    def step(params, rule_state, opt_state, batch, key, optimizer):
        updates, rule_state, metrics = rule.step(params, rule_state, batch, key)
        if reduce is not None:
            updates, rule_state, metrics = reduce((updates, rule_state, metrics))
        updates, opt_state = optimizer.update(updates, opt_state, params)
        return optax.apply_updates(params, updates), rule_state, opt_state, metrics

    return OptimizerRule(rule.init, step, rule.predict, rule.init_params,
                         update_stats=rule.update_stats, project=rule.project,
                         param_labels=rule.param_labels)


class LayerwiseOptState(NamedTuple):
    """Optimizer state of a layerwise form (`layerwise_form`): one optax state per block."""
    blocks: tuple


def layerwise_form(rule: Rule, blocks: Callable, step_blocks: Callable) -> OptimizerRule:
    """The layerwise form of `rule`: each block of parameters has its own optimizer state
    and is stepped inside the rule's pass.

    Args:
      rule: the plain form (its init, predict and init_params are shared).
      blocks: `params -> tuple of pytrees`, the blocks stepped one at a time
        (together they hold every parameter the rule trains).
      step_blocks: `(params, rule_state, opt_states, batch, key, optimizer) ->
        (params, rule_state, opt_states, metrics)`, `opt_states` a tuple with one
        optimizer state per block.

    Returns:
      An `OptimizerRule` whose optimizer state is a `LayerwiseOptState`.
    """
    def init_opt_state(optimizer, params):
        return LayerwiseOptState(tuple(optimizer.init(b) for b in blocks(params)))

    def step(params, rule_state, opt_state, batch, key, optimizer):
        if not isinstance(opt_state, LayerwiseOptState):
            raise ValueError(f'a layerwise rule steps one optimizer state per block, got a '
                             f'{type(opt_state).__name__}; make it with '
                             'rule.init_opt_state(optimizer, params) (init_state does)')
        params, rule_state, states, metrics = step_blocks(
            params, rule_state, opt_state.blocks, batch, key, optimizer)
        return params, rule_state, LayerwiseOptState(tuple(states)), metrics

    return OptimizerRule(rule.init, step, rule.predict, rule.init_params, init_opt_state,
                         rule.update_stats, rule.project, rule.param_labels)


def zeros_like_tree(tree):
    """Zero updates for the parts of params a rule does not train."""
    return jax.tree.map(lambda x: jax.numpy.zeros_like(x), tree)


def check_examples(x, y):
    """ValueError unless `x` and `y` hold the same number of examples and `y` is a vector
    of integer labels.

    Checked at trace time: a mismatch would otherwise be silent (a gather clamps
    indices past the end of a shorter `y`, and a float label 3.5 is a zero one-hot row).
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f'x has {x.shape[0]} examples but y has {y.shape[0]}; pass matching '
                         'arrays')
    if y.ndim != 1:
        raise ValueError(f'y must be integer class labels of shape (N,), got shape {y.shape} '
                         '(one-hot labels: pass argmax(y, -1))')
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f'y must be integer class labels, got dtype {y.dtype}; pass '
                         'y.astype(jnp.int32) if they are whole numbers')


def check_batch(model, batch, params=None) -> dict:
    """`batch` with `x` and `y` as JAX arrays, checked against `model`; every rule's step
    calls it first.

    At trace time: `y` is a vector of integer labels with as many entries as `x` has
    examples (`check_examples`), and each example of `x` holds the model's
    `prod(input_shape)` values. Labels that are concrete (a step called outside `jit`)
    must also lie in [0, num_classes): one outside it is an all-zero one-hot row, a
    zero loss and no learning, without any error. Under `jit` the values cannot be
    inspected; `neurokit.data`'s loaders check every data set's labels when they load it.
    With `params`, also that they hold one entry per model layer (`check_layer_count`).
    """
    if params is not None:
        check_layer_count(model.layers, params)
    x, y = jnp.asarray(batch['x']), jnp.asarray(batch['y'])
    check_examples(x, y)
    want = math.prod(model.input_shape)
    if math.prod(x.shape[1:]) != want:
        raise ValueError(f'x has examples of shape {tuple(x.shape[1:])} but the model takes '
                         f'{tuple(model.input_shape)} ({want} values); pass inputs of shape '
                         f'(N, {", ".join(map(str, model.input_shape))})')
    check_label_range(batch['y'], model.num_classes)
    return {**batch, 'x': x, 'y': y}


def check_label_range(y, num_classes: int) -> None:
    """ValueError if concrete labels `y` fall outside [0, num_classes): such a label is an
    all-zero one-hot row, a zero loss and no error. Traced labels (under `jit`) cannot be
    inspected and pass; one pass over `y` on the host otherwise."""
    if is_traced(y) or not np.size(y):
        return
    labels = np.asarray(y)  # on the host: inside a trace, jnp.min would be traced
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(f'labels fall outside [0, {num_classes}) (found {lo}..{hi}); '
                         'pass class indices 0..num_classes-1')


def check_state(state, kind: type, rule: str) -> None:
    """ValueError unless `state` is the `kind` that rule `rule`'s `init` returns."""
    if not isinstance(state, kind):
        raise ValueError(f'{rule}: the rule state is {type(state).__name__}, not {kind.__name__}; '
                         'pass the state this rule made: state = rule.init(key, params)')


def check_params(params, key: str, rule: str) -> None:
    """ValueError unless `params` holds the entry `key` that rule `rule`'s `init_params` adds."""
    if not isinstance(params, dict) or key not in params:
        raise ValueError(f'{rule}: params have no {key!r} (the rule\'s own trainables); build them '
                         'with params = rule.init_params(key, model.init(key))')

