"""Optimizer config: the first-epochs weight decay (product feedback alignment's schedule)."""
import jax.numpy as jnp
import numpy as np

from neurokit.config import base_config
from neurokit.train import optim


def test_initial_weight_decay_then_weight_decay_closed_form():
    """Zero gradients, plain SGD: each step multiplies p by (1 - lr * decay_of_that_step)."""
    cfg = base_config().optimizer
    cfg.name, cfg.learning_rate, cfg.momentum = 'sgd', 0.1, 0.0
    cfg.weight_decay, cfg.initial_weight_decay, cfg.initial_weight_decay_epochs = 1e-3, 0.5, 1.0
    steps_per_epoch = 3
    opt = optim.build(cfg, steps_per_epoch, epochs=2)
    p = {'w': jnp.ones((2,))}
    state = opt.init(p)
    for _ in range(2 * steps_per_epoch):
        upd, state = opt.update({'w': jnp.zeros((2,))}, state, p)
        p = {'w': p['w'] + upd['w']}
    expected = (1 - 0.1 * 0.5) ** 3 * (1 - 0.1 * 1e-3) ** 3
    np.testing.assert_allclose(np.asarray(p['w']), expected, rtol=1e-6)


def test_no_initial_epochs_means_constant_decay():
    cfg = base_config().optimizer
    cfg.weight_decay, cfg.initial_weight_decay = 1e-2, 0.9  # ignored without epochs
    assert optim.weight_decay(cfg, 10) == 1e-2
