"""Dual propagation against backprop and against its own second form.

* The output layer's update is backprop's gradient exactly (its nudge is the loss gradient
  and the logits are linear in the weights).
* Hidden updates approach backprop's gradient as the nudge β shrinks; with a smooth
  activation (tanh) the central difference's error shrinks like β² (log-log slope 2).
* The dyadic sweep and the custom-VJP form compute the same numbers.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurokit import models
from neurokit.rules.bp import bp
from neurokit.rules.dualprop import dualprop


def _batch(n=32, d0=12, k=5):
    kx, ky = jax.random.split(jax.random.PRNGKey(2))
    return {'x': 3.0 * jax.random.normal(kx, (n, d0)), 'y': jax.random.randint(ky, (n,), 0, k)}


def _flat(tree):
    return jnp.concatenate([a.ravel() for a in jax.tree.leaves(tree)])


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _updates(model, params, batch, **kw):
    return dualprop(model, **kw).step(params, None, batch, None)[0]


@pytest.mark.parametrize('activation', ['tanh', 'relu'])
def test_sweep_and_vjp_forms_agree(activation):
    model = models.mlp((12,), 5, hidden=(16, 16), activation=activation)
    params, batch = model.init(jax.random.PRNGKey(0)), _batch()
    # float32: both central differences cancel, and their roundings (of terms computed in
    # another order) grow like 1/beta; at beta >= 0.1 they stay under 1e-5
    for beta in (0.1, 1.0):
        a = _updates(model, params, batch, beta=beta, form='sweep')
        b = _updates(model, params, batch, beta=beta, form='vjp')
        assert _rel(_flat(a), _flat(b)) < 1e-5, (activation, beta)


def test_the_output_layer_gets_backprops_gradient():
    model = models.mlp((12,), 5, hidden=(16,), activation='tanh')
    params, batch = model.init(jax.random.PRNGKey(0)), _batch()
    grads = bp(model).step(params, None, batch, None)[0]
    ups = _updates(model, params, batch, beta=4.0)
    for k in ('w', 'b'):
        assert _rel(ups['layers'][-1][k], grads['layers'][-1][k]) < 1e-5


def test_hidden_updates_approach_backprop_like_beta_squared():
    model = models.mlp((12,), 5, hidden=(16, 16), activation='tanh')
    params, batch = model.init(jax.random.PRNGKey(0)), _batch()
    grads = bp(model).step(params, None, batch, None)[0]
    betas = (0.5, 0.25, 0.125)
    errors = [_rel(_flat(_updates(model, params, batch, beta=b)['layers'][0]),
                   _flat(grads['layers'][0])) for b in betas]
    slope = np.polyfit(np.log(betas), np.log(errors), 1)[0]
    assert errors[0] > errors[1] > errors[2] and 1.7 < slope < 2.3, (errors, slope)
    assert errors[-1] < 1e-2


def test_relu_updates_approach_backprop():
    model = models.mlp((12,), 5, hidden=(16, 16), activation='relu')
    params, batch = model.init(jax.random.PRNGKey(0)), _batch()
    grads = _flat(bp(model).step(params, None, batch, None)[0])
    errors = [_rel(_flat(_updates(model, params, batch, beta=b)), grads) for b in (0.5, 0.05, 0.005)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-3, errors


def test_refusals_name_the_fix():
    with pytest.raises(ValueError, match="dense layers only.*config.model.name='mlp'"):
        dualprop(models.cnn((8, 8, 1), 10, channels=(4,), dense_widths=(8,)))
    with pytest.raises(ValueError, match='beta'):
        dualprop(models.mlp((12,), 5), beta=0.0)
    with pytest.raises(ValueError, match='form must be one of'):
        dualprop(models.mlp((12,), 5), form='two-phase')
