"""Backprop rule against closed forms, its step called as it is and under `jax.jit`."""
import chex
import jax
import jax.numpy as jnp
import numpy as np

from neurokit import models, rules

KEY = jax.random.PRNGKey(0)


class BackpropTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_softmax_regression_gradient_closed_form(self):
        # One dense layer: dL/dW = x^T (softmax(z) - onehot(y)) / B, dL/db = mean(softmax - onehot).
        m = models.mlp((5,), 3, hidden=())
        rule = rules.bp(m)
        p = m.init(KEY)
        x = jax.random.normal(jax.random.PRNGKey(1), (4, 5))
        y = jnp.array([0, 2, 1, 2])
        updates, _, metrics = self.variant(rule.step)(p, rule.init(KEY, p), {'x': x, 'y': y}, KEY)
        z = np.asarray(x) @ np.asarray(p['layers'][0]['w']) + np.asarray(p['layers'][0]['b'])
        s = np.exp(z - z.max(1, keepdims=True))
        s /= s.sum(1, keepdims=True)
        d = (s - np.eye(3)[np.asarray(y)]) / 4
        chex.assert_trees_all_close(updates, {'layers': ({'w': np.asarray(x).T @ d,
                                                          'b': d.sum(0)},)},
                                    rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(float(metrics['loss']),
                                   -np.log(s[np.arange(4), np.asarray(y)]).mean(), rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_mse_loss_gradient_closed_form(self):
        m = models.mlp((3,), 2, hidden=())
        rule = rules.bp(m, loss='mse')
        p = m.init(KEY)
        x, y = jnp.ones((2, 3)), jnp.array([0, 1])
        updates, _, _ = self.variant(rule.step)(p, rule.init(KEY, p), {'x': x, 'y': y}, KEY)
        z = np.asarray(m.apply(p, x)[0])
        d = (z - np.eye(2)[[0, 1]]) / 2
        np.testing.assert_allclose(np.asarray(updates['layers'][0]['b']), d.sum(0), rtol=1e-5)

    def test_predict_is_forward_pass(self):
        m = models.mlp((3,), 2, hidden=(4,))
        rule = rules.bp(m)
        p = m.init(KEY)
        x = jnp.ones((2, 3))
        chex.assert_trees_all_equal(rule.predict(p, rule.init(KEY, p), x), m.apply(p, x)[0])
