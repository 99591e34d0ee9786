"""Models against direct NumPy computations of what each layer is defined to do."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurokit import models


def _np_relu(z):
    return np.maximum(z, 0)


def test_mlp_apply_matches_numpy(key):
    m = models.mlp((4, 3), 5, hidden=(7, 6))
    p = m.init(key)
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (2, 4, 3)))
    logits, acts = m.apply(p, jnp.asarray(x))
    h = x.reshape(2, 12)
    expected = []
    for i, lp in enumerate(p['layers']):
        h = h @ np.asarray(lp['w']) + np.asarray(lp['b'])
        if i < 2:
            h = _np_relu(h)
        expected.append(h)
    assert len(acts) == 3 and acts[-1] is logits
    chex.assert_trees_all_close(list(acts), expected, rtol=1e-5, atol=1e-5)


def _np_conv2d_same(x, w):
    """Direct cross-correlation with zero 'SAME' padding: x (N,H,W,C), w (k,k,C,O)."""
    k = w.shape[0]
    pad = (k - 1) // 2
    xp = np.pad(x, ((0, 0), (pad, k - 1 - pad), (pad, k - 1 - pad), (0, 0)))
    n, h, wd, _ = x.shape
    out = np.zeros((n, h, wd, w.shape[-1]))
    for i in range(h):
        for j in range(wd):
            patch = xp[:, i:i + k, j:j + k, :]
            out[:, i, j, :] = np.einsum('nijc,ijco->no', patch, w)
    return out


def test_conv_layer_matches_direct_convolution(key):
    layer = models.conv('c', (6, 6, 2), 3, kernel_size=3, activation='relu', pool=2)
    p = layer.init(key)
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (2, 6, 6, 2)))
    z = _np_conv2d_same(x, np.asarray(p['w'])) + np.asarray(p['b'])
    a = _np_relu(z)
    pooled = a.reshape(2, 3, 2, 3, 2, 3).max(axis=(2, 4))
    np.testing.assert_allclose(np.asarray(layer.linear(p, jnp.asarray(x))), z, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(layer(p, jnp.asarray(x))), pooled, rtol=1e-5, atol=1e-5)
    assert layer.out_shape == (3, 3, 3)


# 2-D SAME with an even window (asymmetric padding) and a pool with a remainder, 2-D VALID,
# 1-D SAME with an even window, 1-D VALID with no pool. (Odd-window SAME is the symmetric
# special case of the even-window code.)
@pytest.mark.parametrize('in_shape,k,padding,pool', [
    ((10, 10, 2), 4, 'SAME', 3), ((10, 10, 2), 3, 'VALID', 2),
    ((13, 2), 4, 'SAME', 2), ((13, 3), 5, 'VALID', 1)])
def test_conv_impls_agree_with_xla_convolution(in_shape, k, padding, pool, key):
    """im2col (the CPU default) and XLA's convolution: the same layer, values and gradients,
    for 1-D/2-D inputs, odd/even windows (asymmetric SAME padding) and pools with remainders."""
    kx, kp = jax.random.split(key)
    layers = {impl: models.conv('c', in_shape, 4, k, 'relu', pool, padding, impl=impl)
              for impl in ('xla', 'im2col')}
    p = layers['xla'].init(kp)
    x = jax.random.normal(kx, (3,) + in_shape)
    window = (1,) + (pool,) * (len(in_shape) - 1) + (1,)

    # One compiled program per implementation (op by op, the gradients alone took seconds).
    @jax.jit
    def run(p, x):
        def per_impl(layer):
            loss = lambda p_, x_: jnp.sum(jnp.sin(layer(p_, x_)))
            return {'out': layer(p, x), 'z': layer.linear(p, x),
                    'grad': jax.grad(loss, (0, 1))(p, x),
                    # no batch axis, or two of them (a stack of batches)
                    'single': layer(p, x[0]), 'stacked': layer(p, jnp.stack([x, x[::-1]]))}
        return {impl: per_impl(layer) for impl, layer in layers.items()}

    got = run(p, x)
    xla = got['xla']
    chex.assert_shape(xla['out'], (3,) + layers['xla'].out_shape)
    pooled = jax.lax.reduce_window(jax.nn.relu(xla['z']), -jnp.inf, jax.lax.max, window, window,
                                   'VALID')
    chex.assert_trees_all_close(xla['out'], pooled, rtol=1e-6, atol=1e-6)
    chex.assert_trees_all_close(got['im2col']['out'], xla['out'], rtol=1e-5, atol=1e-5)
    chex.assert_trees_all_close(got['im2col']['grad'], xla['grad'], rtol=1e-4, atol=1e-5)
    for impl, out in got.items():
        chex.assert_trees_all_close(out['single'], xla['out'][0], rtol=1e-5, atol=1e-5)
        chex.assert_trees_all_close(out['stacked'], jnp.stack([xla['out'], xla['out'][::-1]]),
                                    rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='unknown conv impl'):
        models.conv('c', in_shape, 4, k, impl='cudnn')


def test_conv1d_and_presets_shapes(key):
    # Shapes only: traced abstractly (eval_shape), not run op by op.
    def shapes(m, x_shape):
        params = jax.eval_shape(m.init, key)
        return jax.eval_shape(m.apply, params, jax.ShapeDtypeStruct(x_shape, jnp.float32))

    for name, shape in [('lenet', (28, 28, 1)), ('cnn4', (28, 28, 1))]:
        m = models.build(name, shape, 10)
        out, acts = shapes(m, (3,) + shape)
        assert out.shape == (3, 10)
        assert [a.shape[1:] for a in acts] == [layer.out_shape for layer in m.layers]
    m = models.build('cnn', (40, 1), 10, channels=(4, 8))
    out, _ = shapes(m, (2, 40, 1))
    assert out.shape == (2, 10) and m.layers[0].kind == 'conv'


@pytest.mark.parametrize('scheme,std', [('lecun_normal', (1 / 500) ** 0.5), ('he_normal', (2 / 500) ** 0.5),
                                        ('xavier_uniform', (2 / 800) ** 0.5),
                                        ('torch', (1 / (3 * 500)) ** 0.5)])
def test_init_scales(scheme, std, key):
    layer = models.dense('d', (500,), 300, init=scheme)
    w = np.asarray(layer.init(key)['w'])
    assert abs(w.std() / std - 1) < 0.03
    assert abs(w.mean()) < 3 * std / np.sqrt(w.size) * 10


def test_param_dtype_is_kept(key):
    m = models.mlp((8,), 3, hidden=(4,), dtype=jnp.bfloat16)
    p = m.init(key)
    out, _ = m.apply(p, jnp.ones((2, 8)))
    chex.assert_type(jax.tree.leaves(p) + [out], jnp.bfloat16)


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match='valid names: mlp, lenet, cnn4, cnn, resnet, vgg'):
        models.build('alexnet', (8,), 2)


def test_cnn_refuses_pools_or_paddings_that_do_not_match_the_layers():
    # zip() would silently build fewer conv layers than `channels` names.
    with pytest.raises(ValueError, match='3 conv layers'):
        models.cnn((8, 8, 1), 10, channels=(4, 8, 16), pools=(2,))
    with pytest.raises(ValueError, match='paddings'):
        models.cnn((8, 8, 1), 10, channels=(4,), paddings=('SAME', 'VALID'))


# Each integer-ish argument sets an array shape, so the documented contract is a positive
# integer (Python or NumPy, not bool); anything else is refused at construction with a
# one-line error naming the argument and the value, not later inside JAX or as a truncation.
# One case per kind of refusal and per constructor, not every argument.
@pytest.mark.parametrize('build, error, match', [
    # a count below one; the message names the element of a sequence
    (lambda: models.mlp((4,), 3, hidden=(8, -4)), ValueError,
     r'hidden\[1\] must be a positive integer, got -4'),
    (lambda: models.dense('d', (8,), 0), ValueError, 'n_out .*got 0'),
    (lambda: models.conv('c', (8, 8, 1), 4, pool=0), ValueError, 'pool .*got 0'),
    # a fraction or a bool where an integer belongs: a type error, not a truncation
    (lambda: models.cnn((8, 8, 1), 3, kernel_size=2.5), TypeError, 'kernel_size .*got 2.5'),
    (lambda: models.mlp((4,), 3, hidden=(True,)), TypeError, r'hidden\[0\] .*got True'),
    # one number where a sequence belongs
    (lambda: models.mlp(784, 3), TypeError, 'input_shape must be a sequence .*got 784'),
    # an input of the wrong rank for the layer
    (lambda: models.cnn((4, 8, 8, 1), 3), ValueError,
     r'input_shape must be .*\(H, W, C\).*\(4, 8, 8, 1\)'),
    (lambda: models.conv('c', (2, 8, 8, 1), 4), ValueError, r'in_shape must be .*\(2, 8, 8, 1\)'),
    # a padding name, checked case-sensitively, and a padding that is not a sequence
    (lambda: models.cnn((8, 8, 1), 3, channels=(4,), paddings=('same',)), ValueError,
     r"paddings\[0\] must be one of SAME, VALID, got 'same'"),
    (lambda: models.cnn((8, 8, 1), 3, channels=(4,), paddings='SAME'), TypeError,
     'paddings must be'),
    (lambda: models.conv('c', (8, 8, 1), 4, padding='valid'), ValueError, "padding .*got 'valid'"),
    (lambda: models.sequential([]), ValueError, 'layers is empty'),
])
def test_bad_model_arguments_are_refused_naming_them(build, error, match):
    with pytest.raises(error, match=match) as e:
        build()
    assert '\n' not in str(e.value)


def test_numpy_integers_lists_and_no_hidden_layers_build(key):
    m = models.mlp(np.array([4, 3]), np.int64(5), hidden=[np.int32(7), 6])
    assert [layer.out_shape for layer in m.layers] == [(7,), (6,), (5,)]
    assert all(type(d) is int for layer in m.layers for d in layer.out_shape + layer.in_shape)
    assert models.mlp((4,), 2, hidden=()).layers[0].out_shape == (2,)  # a linear model
    c = models.cnn([8, 8, 1], np.int64(3), channels=[np.int64(4)], kernel_size=np.int64(3),
                   pools=[np.int64(2)], paddings=['VALID'], dense_widths=[])
    assert [layer.out_shape for layer in c.layers] == [(3, 3, 4), (3,)]
    out, _ = c.apply(c.init(key), jnp.zeros((2, 8, 8, 1)))
    assert out.shape == (2, 3)
