"""Forward-forward building blocks against their closed forms (numpy oracles)."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurokit.rules import ff_ops


def _softplus(z):
    return np.log1p(np.exp(z))


class ClosedFormTest(chex.TestCase):
    """The goodness and the two losses, called as they are and under `jax.jit`."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_goodness_mean_and_sum(self):
        a = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
        flat = a.reshape(3, -1)
        mean = self.variant(functools.partial(ff_ops.goodness, kind='mean'))
        total = self.variant(functools.partial(ff_ops.goodness, kind='sum'))
        np.testing.assert_allclose(mean(a), (flat ** 2).mean(1), rtol=1e-6)
        np.testing.assert_allclose(total(a), (flat ** 2).sum(1), rtol=1e-6)
        np.testing.assert_allclose(total(jnp.ones((2, 4))), [4., 4.])

    @chex.variants(with_jit=True, without_jit=True)
    def test_logistic_loss_closed_form(self):
        gp, gn = np.array([3.0, 0.5]), np.array([1.0, 2.5])
        theta, alpha = 2.0, 1.5
        loss = self.variant(ff_ops.logistic_loss)
        want = np.mean(_softplus(-alpha * (gp - theta)) + _softplus(alpha * (gn - theta)))
        np.testing.assert_allclose(loss(gp, gn, theta, alpha), want, rtol=1e-6)
        # alpha = 1 is the paper's loss: -log sigmoid(G+ - theta) - log(1 - sigmoid(G- - theta)).
        sig = lambda z: 1 / (1 + np.exp(-z))
        want1 = np.mean(-np.log(sig(gp - theta)) - np.log(1 - sig(gn - theta)))
        np.testing.assert_allclose(loss(gp, gn, theta), want1, rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_symba_loss_closed_form(self):
        gp, gn = np.array([3.0, 0.5]), np.array([1.0, 2.5])
        np.testing.assert_allclose(self.variant(ff_ops.symba_loss)(gp, gn, 4.0),
                                   np.mean(_softplus(-4.0 * (gp - gn))), rtol=1e-6)


@pytest.mark.parametrize('kind', ['rms', 'l2'])
def test_normalize(kind):
    x = np.random.default_rng(1).normal(size=(4, 6, 2)).astype(np.float32) * 5
    y = np.asarray(ff_ops.normalize(jnp.asarray(x), kind)).reshape(4, -1)
    sq = (y ** 2).mean(1) if kind == 'rms' else (y ** 2).sum(1)
    np.testing.assert_allclose(sq, 1.0, rtol=1e-4)
    # Only the direction is kept: same as x / |x| up to a positive factor per row.
    cos = (y * x.reshape(4, -1)).sum(1) / np.linalg.norm(y, axis=1) / np.linalg.norm(x.reshape(4, -1), axis=1)
    np.testing.assert_allclose(cos, 1.0, rtol=1e-5)
    assert ff_ops.normalize(jnp.asarray(x), 'none') is not None


def test_label_embedding_writes_first_c_values():
    x = jnp.asarray(np.random.default_rng(2).uniform(size=(3, 4, 4, 1)).astype(np.float32))
    y = jnp.array([0, 2, 1])
    e = np.asarray(ff_ops.embed_one_hot(x, y, 3, 1.0)).reshape(3, -1)
    np.testing.assert_array_equal(e[:, :3], np.eye(3)[[0, 2, 1]])
    np.testing.assert_array_equal(e[:, 3:], np.asarray(x).reshape(3, -1)[:, 3:])


def test_wrong_labels():
    y = jnp.arange(10) % 4
    w = ff_ops.random_wrong_labels(jax.random.PRNGKey(0), jnp.tile(y, 50), 4)
    assert np.all(np.asarray(w) != np.tile(np.asarray(y), 50))
    assert set(np.asarray(w).tolist()) == {0, 1, 2, 3}
    scores = jnp.array([[5., 4., 1.], [0., 3., 2.]])
    np.testing.assert_array_equal(ff_ops.hardest_wrong_labels(scores, jnp.array([0, 1])), [1, 2])


def _numpy_blur_mask(bits, steps):
    """Box filter over the cells inside the image, repeated, then > 0.5."""
    m = bits.astype(np.float64)
    h, w = m.shape[1:]
    for _ in range(steps):
        out = np.zeros_like(m)
        for i in range(h):
            for j in range(w):
                win = m[:, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]
                out[:, i, j] = win.reshape(m.shape[0], -1).mean(1)
        m = out
    return m > 0.5


def test_blurred_mask_matches_numpy_box_filter():
    key = jax.random.PRNGKey(3)
    got = np.asarray(ff_ops.blurred_mask(key, (2, 7, 6), 3))
    bits = np.asarray(jax.random.bernoulli(key, 0.5, (2, 7, 6)))
    np.testing.assert_array_equal(got, _numpy_blur_mask(bits, 3))


@pytest.mark.parametrize('shape', [(16, 28, 28, 1), (16, 40, 1)])
def test_hybrid_negatives_mix_two_real_images(shape):
    x = jnp.asarray(np.random.default_rng(4).uniform(size=shape).astype(np.float32))
    hybrid, partner = ff_ops.hybrid_images(jax.random.PRNGKey(5), x, 6)
    hybrid, partner, xs = map(np.asarray, (hybrid, partner, x))
    from_x, from_p = hybrid == xs, hybrid == partner
    assert np.all(from_x | from_p)  # every pixel is one of the two sources
    # The partner is another real image of the batch, never the image itself.
    rows = [int(np.argmin(np.abs(xs - partner[i]).reshape(len(xs), -1).sum(1))) for i in range(len(xs))]
    assert all(r != i for i, r in enumerate(rows))
    np.testing.assert_array_equal(partner, xs[rows])
    # A blurred mask makes large regions from each source: both appear in most images.
    both = [from_x[i].any() and from_p[i].any() for i in range(len(xs))]
    assert np.mean(both) > 0.5
