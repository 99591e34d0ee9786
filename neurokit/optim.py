"""optax optimizers and schedules: from a config (`build`) or from values (`make`).

A leaf module: it imports no rule and no training code.
"""
from __future__ import annotations

import jax
import optax

from neurokit.checks import check_range
from neurokit.precision import in_float32
from neurokit.traced import is_traced

OPTIMIZERS = ('sgd', 'adam', 'adamw', 'rmsprop')
SCHEDULES = ('constant', 'cosine', 'warmup_cosine', 'linear_decay_second_half')


def schedule(name, learning_rate, total_steps, warmup_steps=0):
    """A learning-rate schedule over `total_steps` steps."""
    if name == 'constant':
        return optax.constant_schedule(learning_rate)
    if name == 'cosine':
        return optax.cosine_decay_schedule(learning_rate, max(total_steps, 1))
    if name == 'warmup_cosine':
        # optax.warmup_cosine_decay_schedule's numbers, built from its parts: it tests
        # `peak_value == 0.0` in Python, which a traced (swept) learning rate cannot pass.
        warmup = max(warmup_steps, 1)
        return optax.join_schedules(
            [optax.linear_schedule(0.0, learning_rate, warmup),
             optax.cosine_decay_schedule(learning_rate, max(total_steps, warmup + 1) - warmup)],
            [warmup])
    if name == 'linear_decay_second_half':  # Hinton's FF code: flat, then linearly to 0.
        half = total_steps // 2
        return optax.join_schedules([optax.constant_schedule(learning_rate),
                                     optax.linear_schedule(learning_rate, 0.0, max(total_steps - half, 1))],
                                    [half])
    raise ValueError(f'unknown schedule {name!r}; valid: {", ".join(SCHEDULES)}')


def weight_decay(cfg, steps_per_epoch: int):
    """`cfg.weight_decay`, or a step schedule: `initial_weight_decay` for the first
    `initial_weight_decay_epochs` epochs, then `weight_decay`.

    Product feedback alignment (Li & Benna 2024) uses a large decay in the first
    epoch only, to pull its feedback product towards the forward weights early.
    """
    epochs0 = cfg.get('initial_weight_decay_epochs', 0)
    if not epochs0:
        return cfg.weight_decay
    return optax.join_schedules([optax.constant_schedule(cfg.initial_weight_decay),
                                 optax.constant_schedule(cfg.weight_decay)],
                                [int(epochs0 * steps_per_epoch)])


def _used(value) -> bool:
    """Whether a transform switched by `value` goes in: a schedule or a traced value (a
    sweep member, for which 0 changes nothing) always, a concrete number unless 0."""
    return callable(value) or is_traced(value) or bool(value)


def make(name: str, learning_rate, weight_decay=0.0, momentum=0.0,
         grad_clip: float = 0.0) -> optax.GradientTransformation:
    """The optimizer `name` ('sgd', 'adam', 'adamw', 'rmsprop').

    Args:
      learning_rate: a number > 0 or an optax schedule.
      weight_decay: a number >= 0 or a schedule; L2 added to the gradient for 'sgd' and
        'adam' (as torch.optim does), decoupled for 'adamw', unused by 'rmsprop'.
      momentum: in [0, 1), of 'sgd' (0 or None: none) and 'rmsprop'.
      grad_clip: clip the update's global norm to this first (0: no clipping).

    A concrete 0 for `weight_decay` or `momentum` leaves its transform out; a traced
    value (a sweep, see `neurokit.traced`) always keeps it, so that one program
    serves every member. Concrete values are range-checked (a negative learning rate
    or clip norm would train uphill); traced ones are used as they are.

    Raises:
      ValueError: an unknown `name` or a value out of range; TypeError: a non-number.

    Example:
      >>> opt = make('sgd', 0.1, weight_decay=5e-4, momentum=0.9)
    """
    if name not in OPTIMIZERS:
        raise ValueError(f'unknown optimizer {name!r}; valid: {", ".join(OPTIMIZERS)}')
    check_range('learning_rate', learning_rate, lambda v: v > 0,
                'a finite number > 0 or a schedule', where='optim.make', schedule=True)
    check_range('weight_decay', weight_decay, lambda v: v >= 0,
                'a finite number >= 0 or a schedule', where='optim.make', schedule=True)
    if momentum is not None:
        check_range('momentum', momentum, lambda v: 0 <= v < 1, 'a number in [0, 1) (0: none)',
                    where='optim.make')
    check_range('grad_clip', grad_clip, lambda v: v >= 0, 'a finite number >= 0 (0: no clipping)',
                where='optim.make')
    if name == 'sgd':
        opt = optax.sgd(learning_rate, momentum=momentum if _used(momentum) else None)
        if _used(weight_decay):
            opt = optax.chain(optax.add_decayed_weights(weight_decay), opt)
    elif name == 'adam':
        opt = optax.adam(learning_rate)
        if _used(weight_decay):
            opt = optax.chain(optax.add_decayed_weights(weight_decay), opt)
    elif name == 'adamw':
        opt = optax.adamw(learning_rate, weight_decay=weight_decay)
    else:  # 'rmsprop'
        opt = optax.rmsprop(learning_rate, momentum=momentum)
    if grad_clip:
        opt = optax.chain(optax.clip_by_global_norm(grad_clip), opt)
    return opt


# the label of the parameters no configured group names (`grouped`)
DEFAULT_GROUP = 'default'


def build(cfg, steps_per_epoch: int, epochs: int, param_dtype: str = 'float32',
          groups=None, labels=None) -> optax.GradientTransformation:
    """Builds `config.optimizer`, with per-group settings where `groups` names some.

    Args:
      cfg: has name, learning_rate, momentum, weight_decay, schedule, warmup_epochs,
        grad_clip (0: none), and optionally initial_weight_decay(_epochs).
      steps_per_epoch, epochs: to size the schedule.
      param_dtype: the model's dtype; for 'float16' the optimizer keeps its state
        and does its arithmetic in float32 (`in_float32`).
      groups: `{label: {key: value}}` (`config.optimizer_groups`): the parameters `labels`
        names `label` step with `cfg` changed by those keys (`grouped`).
      labels: `params -> pytree of str` (a rule's `param_labels`), with `groups`.
    """
    if groups:
        return grouped(_one(cfg, steps_per_epoch, epochs),
                       {label: _one(Settings({**dict(cfg), **dict(over)}), steps_per_epoch,
                                    epochs)
                        for label, over in groups.items()}, labels, param_dtype)
    opt = _one(cfg, steps_per_epoch, epochs)
    return in_float32(opt) if param_dtype == 'float16' else opt


def _one(cfg, steps_per_epoch, epochs):
    lr = schedule(cfg.schedule, cfg.learning_rate, steps_per_epoch * epochs,
                  int(cfg.warmup_epochs * steps_per_epoch))
    return make(cfg.name, lr, weight_decay(cfg, steps_per_epoch), cfg.momentum, cfg.grad_clip)


class Settings(dict):
    """A dict read like a ConfigDict (`cfg.name`, `cfg.get`), able to hold tracers (a
    sweep member's values): what `build` takes besides `config.optimizer` itself."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def grouped(default: optax.GradientTransformation, groups: dict, labels,
            param_dtype: str = 'float32') -> optax.GradientTransformation:
    """`optax.multi_transform`: the parameters `labels(params)` names `g` step with
    `groups[g]`, every other parameter with `default` (its label need not be listed).

    Args:
      default: the optimizer of the parameters no group names.
      groups: `{label: optimizer}`.
      labels: `params -> pytree of str` with the tree of `params` (a rule's `param_labels`).
      param_dtype: as in `build`.
    """
    if labels is None:
        raise ValueError(f'optimizer groups {sorted(groups)} need parameter labels; the rule '
                         'names none (its param_labels is None): drop the groups')

    def label(params):
        return jax.tree.map(lambda g: g if g in groups else DEFAULT_GROUP, labels(params))

    opt = optax.multi_transform({**groups, DEFAULT_GROUP: default}, label)
    return in_float32(opt) if param_dtype == 'float16' else opt
