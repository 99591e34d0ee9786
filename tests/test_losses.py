"""The losses against their closed forms, called as they are and under `jax.jit`."""
import chex
import jax
import jax.numpy as jnp
import numpy as np

from neurokit import losses


def _data(n=6, c=4):
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    return jax.random.normal(k1, (n, c)) * 3.0, jax.random.randint(k2, (n,), 0, c)


class LossesTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_cross_entropy_is_minus_mean_log_probability_of_the_label(self):
        logits, y = _data()
        p = np.exp(np.asarray(logits, np.float64))
        p /= p.sum(-1, keepdims=True)
        expected = -np.mean(np.log(p[np.arange(len(y)), np.asarray(y)]))
        value = self.variant(losses.cross_entropy)(logits, y)
        chex.assert_shape(value, ())
        np.testing.assert_allclose(value, expected, rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_batch(self):
        logits, y = _data()
        g = self.variant(jax.grad(losses.cross_entropy))(logits, y)
        expected = (jax.nn.softmax(logits) - jax.nn.one_hot(y, logits.shape[-1])) / len(y)
        chex.assert_trees_all_close(g, expected, rtol=1e-5, atol=1e-7)

    @chex.variants(with_jit=True, without_jit=True)
    def test_cross_entropy_of_bfloat16_logits_is_float32(self):
        logits, y = _data()
        value = self.variant(losses.cross_entropy)(logits.astype(jnp.bfloat16), y)
        chex.assert_type(value, jnp.float32)
        want = losses.cross_entropy(logits.astype(jnp.bfloat16).astype(jnp.float32), y)
        np.testing.assert_allclose(value, want, rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_mse_is_half_squared_distance_to_one_hot(self):
        logits, y = _data()
        onehot = np.eye(logits.shape[-1])[np.asarray(y)]
        expected = 0.5 * np.mean(np.sum((np.asarray(logits) - onehot) ** 2, -1))
        np.testing.assert_allclose(self.variant(losses.mse)(logits, y), expected, rtol=1e-6)
