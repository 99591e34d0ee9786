"""optax optimizers and schedules from a config."""
from __future__ import annotations

import optax

from neurokit.precision import in_float32

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


def _traced(value) -> bool:
    return not isinstance(value, (int, float))


def _any_decay(cfg) -> bool:
    """Whether to add a decay term; a traced value (a sweep) always gets one."""
    if _traced(cfg.weight_decay):
        return True
    return bool(cfg.weight_decay) or bool(cfg.get('initial_weight_decay_epochs', 0))


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


def build(cfg, steps_per_epoch: int, epochs: int,
          param_dtype: str = 'float32') -> optax.GradientTransformation:
    """Builds `config.optimizer`.

    Args:
      cfg: has name, learning_rate, momentum, weight_decay, schedule, warmup_epochs,
        grad_clip (0: none).
      steps_per_epoch, epochs: to size the schedule.
      param_dtype: the model's dtype; for 'float16' the optimizer keeps its state
        and does its arithmetic in float32 (`in_float32`).
    """
    lr = schedule(cfg.schedule, cfg.learning_rate, steps_per_epoch * epochs,
                  int(cfg.warmup_epochs * steps_per_epoch))
    wd = weight_decay(cfg, steps_per_epoch)
    if cfg.name == 'sgd':
        # a traced (swept) momentum is always used, a concrete 0 leaves the trace out
        opt = optax.sgd(lr, momentum=cfg.momentum if _traced(cfg.momentum) or cfg.momentum
                        else None)
        if _any_decay(cfg):
            opt = optax.chain(optax.add_decayed_weights(wd), opt)
    elif cfg.name == 'adam':
        opt = optax.adam(lr)
        if _any_decay(cfg):  # L2 penalty on the gradient, as torch.optim.Adam does
            opt = optax.chain(optax.add_decayed_weights(wd), opt)
    elif cfg.name == 'adamw':
        opt = optax.adamw(lr, weight_decay=wd)
    elif cfg.name == 'rmsprop':
        opt = optax.rmsprop(lr, momentum=cfg.momentum)
    else:
        raise ValueError(f'unknown optimizer {cfg.name!r}; valid: {", ".join(OPTIMIZERS)}')
    if cfg.grad_clip:
        opt = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), opt)
    if param_dtype == 'float16':
        opt = in_float32(opt)
    return opt
