"""Models against direct NumPy computations of what each layer is defined to do."""
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
    for a, e in zip(acts, expected):
        np.testing.assert_allclose(np.asarray(a), e, rtol=1e-5, atol=1e-5)


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


@pytest.mark.parametrize('in_shape,k,padding,pool', [
    ((9, 9, 3), 5, 'SAME', 2), ((10, 10, 2), 4, 'SAME', 3), ((10, 10, 2), 3, 'VALID', 2),
    ((13, 2), 4, 'SAME', 2), ((13, 3), 5, 'VALID', 1)])
def test_conv_impls_agree_with_xla_convolution(in_shape, k, padding, pool, key):
    """im2col (the CPU default) and XLA's convolution: the same layer, values and gradients,
    for 1-D/2-D inputs, odd/even windows (asymmetric SAME padding) and pools with remainders."""
    kx, kp = jax.random.split(key)
    layers = {impl: models.conv('c', in_shape, 4, k, 'relu', pool, padding, impl=impl)
              for impl in ('xla', 'im2col')}
    p = layers['xla'].init(kp)
    x = jax.random.normal(kx, (3,) + in_shape)
    outs = {i: l(p, x) for i, l in layers.items()}
    assert outs['xla'].shape == (3,) + layers['xla'].out_shape
    np.testing.assert_allclose(outs['im2col'], outs['xla'], rtol=1e-5, atol=1e-5)
    z = {i: l.linear(p, x) for i, l in layers.items()}
    pooled = jax.lax.reduce_window(jax.nn.relu(z['xla']), -jnp.inf, jax.lax.max,
                                   (1,) + (pool,) * (len(in_shape) - 1) + (1,),
                                   (1,) + (pool,) * (len(in_shape) - 1) + (1,), 'VALID')
    np.testing.assert_allclose(outs['xla'], pooled, rtol=1e-6, atol=1e-6)
    loss = lambda layer: lambda p_, x_: jnp.sum(jnp.sin(layer(p_, x_)))
    g = {i: jax.grad(loss(l), (0, 1))(p, x) for i, l in layers.items()}
    for a, b in zip(jax.tree.leaves(g['im2col']), jax.tree.leaves(g['xla'])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # no batch axis, or two of them (a stack of batches): each example as in the batch above
    for impl, layer in layers.items():
        np.testing.assert_allclose(layer(p, x[0]), outs['xla'][0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(layer(p, jnp.stack([x, x[::-1]])),
                                   jnp.stack([outs['xla'], outs['xla'][::-1]]),
                                   rtol=1e-5, atol=1e-5, err_msg=impl)
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
    assert all(leaf.dtype == jnp.bfloat16 for leaf in jax.tree.leaves(p))
    out, _ = m.apply(p, jnp.ones((2, 8)))
    assert out.dtype == jnp.bfloat16


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match='valid names: mlp, lenet, cnn4, cnn'):
        models.build('resnet', (8,), 2)


def test_cnn_refuses_pools_or_paddings_that_do_not_match_the_layers():
    # zip() would silently build fewer conv layers than `channels` names.
    with pytest.raises(ValueError, match='3 conv layers'):
        models.cnn((8, 8, 1), 10, channels=(4, 8, 16), pools=(2,))
    with pytest.raises(ValueError, match='paddings'):
        models.cnn((8, 8, 1), 10, channels=(4,), paddings=('SAME', 'VALID'))


# Each integer-ish argument sets an array shape, so the documented contract is a positive
# integer (Python or NumPy, not bool); anything else is refused at construction with a
# one-line error naming the argument and the value, not later inside JAX or as a truncation.
@pytest.mark.parametrize('build, error, match', [
    (lambda: models.mlp((4,), 3, hidden=(0,)), ValueError,
     r'hidden\[0\] must be a positive integer, got 0'),
    (lambda: models.mlp((4,), 3, hidden=(8, -4)), ValueError, r'hidden\[1\] .*got -4'),
    (lambda: models.mlp((4,), 3, hidden=16), TypeError, r'hidden must be a sequence .*got 16'),
    (lambda: models.mlp((4,), 3, hidden=(8.7,)), TypeError, r'hidden\[0\] .*got 8.7'),
    (lambda: models.mlp((4,), 3, hidden=(True,)), TypeError, r'hidden\[0\] .*got True'),
    (lambda: models.mlp((4,), 0, hidden=(8,)), ValueError, 'num_classes .*got 0'),
    (lambda: models.mlp((4,), 2.5), TypeError, 'num_classes .*got 2.5'),
    (lambda: models.mlp((0, 4), 3), ValueError, r'input_shape\[0\] .*got 0'),
    (lambda: models.mlp(784, 3), TypeError, 'input_shape must be a sequence .*got 784'),
    (lambda: models.cnn((8, 8, 1), 3, kernel_size=0), ValueError, 'kernel_size .*got 0'),
    (lambda: models.cnn((8, 8, 1), 3, kernel_size=2.5), TypeError, 'kernel_size .*got 2.5'),
    (lambda: models.cnn((4, 8, 8, 1), 3), ValueError,
     r'input_shape must be .*\(H, W, C\).*\(4, 8, 8, 1\)'),
    (lambda: models.cnn((), 3), ValueError, r'input_shape must be .*got \(\)'),
    (lambda: models.cnn((8, 8, 0), 3), ValueError, r'input_shape\[2\] .*got 0'),
    (lambda: models.cnn((8, 8, 1), 3, channels=(4, 0)), ValueError, r'channels\[1\] .*got 0'),
    (lambda: models.cnn((8, 8, 1), 3, channels=8), TypeError,
     'channels must be a sequence .*got 8'),
    (lambda: models.cnn((8, 8, 1), 3, channels=(4.5,)), TypeError,
     r'channels\[0\] .*got 4.5'),
    (lambda: models.cnn((8, 8, 1), 3, channels=(4,), pools=(0,)), ValueError,
     r'pools\[0\] .*got 0'),
    (lambda: models.cnn((8, 8, 1), 3, channels=(4,), pools=(1.5,)), TypeError,
     r'pools\[0\] .*got 1.5'),
    (lambda: models.cnn((8, 8, 1), 3, channels=(4,), paddings=('same',)), ValueError,
     r"paddings\[0\] must be one of SAME, VALID, got 'same'"),
    (lambda: models.cnn((8, 8, 1), 3, channels=(4,), paddings='SAME'), TypeError,
     'paddings must be'),
    (lambda: models.cnn((8, 8, 1), 3, dense_widths=(0,)), ValueError, r'dense_widths\[0\] .*got 0'),
    (lambda: models.cnn((8, 8, 1), 0), ValueError, 'num_classes .*got 0'),
    (lambda: models.conv('c', (8, 8, 1), 4, pool=0), ValueError, 'pool .*got 0'),
    (lambda: models.conv('c', (8, 8, 1), 0), ValueError, 'features .*got 0'),
    (lambda: models.conv('c', (2, 8, 8, 1), 4), ValueError, r'in_shape must be .*\(2, 8, 8, 1\)'),
    (lambda: models.conv('c', (8, 8, 1), 4, padding='valid'), ValueError, "padding .*got 'valid'"),
    (lambda: models.dense('d', (8,), 0), ValueError, 'n_out .*got 0'),
    (lambda: models.sequential([]), ValueError, 'layers is empty'),
])
def test_bad_model_arguments_are_refused_naming_them(build, error, match):
    with pytest.raises(error, match=match):
        build()


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
