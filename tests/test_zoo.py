"""The model zoo (neurokit/models/zoo.py): shapes, block layout, parameter counts from the
architectures' own formulas, residual and permutation properties, and that each trains."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurokit.models import zoo

KEY = jax.random.PRNGKey(0)


def n_params(model):
    return sum(a.size for a in jax.tree.leaves(jax.eval_shape(model.init, KEY)))


# (builder, input shape, number of blocks the architecture has)
TINY = [
    (lambda s: zoo.resnet(s, 5, depth=8, width=4), (8, 8, 3), 1 + 3 + 1),
    (lambda s: zoo.resnet(s, 5, depth=14, width=4, norm='layer'), (8, 8, 3), 1 + 6 + 1),
    (lambda s: zoo.resnet(s, 5, depth=8, width=4, norm='none'), (8, 8, 1), 1 + 3 + 1),
    (lambda s: zoo.vgg(s, 5, (4, 8), 2, dense_width=16), (8, 8, 3), 2 + 1 + 1),
    (lambda s: zoo.vgg(s, 5, (4, 8, 8), 1, 'layer', None), (8, 8, 1), 3 + 1),
    (lambda s: zoo.vit(s, 5, patch=4, dim=8, depth=3, heads=2), (8, 8, 1), 3 + 2),
    (lambda s: zoo.transformer(s, 5, dim=8, depth=2, heads=2), (40,), 2 + 2),
    (lambda s: zoo.transformer(s, 5, dim=8, depth=1, heads=2), (40, 1), 1 + 2),
]


@pytest.mark.parametrize('build,shape,blocks', TINY)
def test_output_shape_and_block_count(build, shape, blocks):
    model = build(shape)
    x = jax.ShapeDtypeStruct((3,) + shape, jnp.float32)
    logits, acts = jax.eval_shape(model.apply, jax.eval_shape(model.init, KEY), x)
    assert logits.shape == (3, 5)
    assert len(model.layers) == len(acts) == blocks
    assert [a.shape[1:] for a in acts] == [tuple(b.out_shape) for b in model.layers]


@pytest.fixture(scope='module')
def small():
    """One small model of each kind, shared (on CPU most of a test's time is compiling)."""
    return {'resnet': (zoo.resnet((8, 8, 3), 10, depth=8, width=8), (8, 8, 3)),
            'vgg': (zoo.vgg((8, 8, 3), 10, (8, 8), 1, 'layer', 16), (8, 8, 3)),
            'vit': (zoo.vit((8, 8, 1), 10, patch=4, dim=16, depth=2, heads=2), (8, 8, 1)),
            'transformer': (zoo.transformer((40,), 10, dim=8, depth=1, heads=2), (40,))}


@pytest.mark.parametrize('name', ['resnet', 'vgg', 'vit', 'transformer'])
def test_logits_are_finite(small, name):
    model, shape = small[name]
    x = jax.random.normal(jax.random.PRNGKey(1), (3,) + shape)
    logits = jax.jit(lambda p, x: model.apply(p, x)[0])(jax.jit(model.init)(KEY), x)
    assert logits.shape == (3, 10) and bool(jnp.all(jnp.isfinite(logits)))


def test_presets_block_counts_and_pcx_vgg5_size():
    # PCX's VGG-5: convs 3->128->256->512->512 (3x3, bias), then 2*2*512 -> 10.
    chans = [3, 128, 256, 512, 512]
    want = sum(9 * a * b + b for a, b in zip(chans, chans[1:])) + 2 * 2 * 512 * 10 + 10
    vgg5 = zoo.vgg5((32, 32, 3), 10, norm='none')
    assert len(vgg5.layers) == 5 and n_params(vgg5) == want
    vgg7 = zoo.vgg7((32, 32, 3), 10)
    assert len(vgg7.layers) == 3 + 1
    assert sum(s.kind == 'conv' for b in vgg7.layers for s in b.sites) == 6


def _basic_block(c_in, c_out, stride):
    """Parameters of a basic block with norm (2 per channel) in place of conv biases."""
    n = 9 * c_in * c_out + 2 * c_out + 9 * c_out * c_out + 2 * c_out
    if stride != 1 or c_in != c_out:
        n += c_in * c_out + 2 * c_out  # 1x1 projection + its norm
    return n


def _resnet_count(widths, layout, c_in, classes):
    n = 9 * c_in * widths[0] + 2 * widths[0]
    prev = widths[0]
    for stage, (w, count) in enumerate(zip(widths, layout)):
        for i in range(count):
            n += _basic_block(prev, w, 2 if stage and i == 0 else 1)
            prev = w
    return n + prev * classes + classes


def test_resnet18_cifar_parameter_count():
    want = _resnet_count((64, 128, 256, 512), (2, 2, 2, 2), 3, 10)
    assert abs(want - 11.17e6) < 0.01e6  # the CIFAR ResNet-18's well-known size
    model = zoo.resnet((32, 32, 3), 10, depth=18)
    assert n_params(model) == want
    assert len(model.layers) == 1 + 8 + 1


@pytest.mark.parametrize('norm', ['group', 'layer'])
def test_resnet8_parameter_count(norm):
    model = zoo.resnet((32, 32, 3), 10, depth=8, width=16, norm=norm)
    assert n_params(model) == _resnet_count((16, 32, 64), (1, 1, 1), 3, 10)


@pytest.mark.parametrize('norm,last', [('group', 'GroupNorm_1'), ('layer', 'LayerNorm_1'),
                                       ('none', 'Conv_1')])
def test_identity_block_with_zero_kernels_is_relu_of_input_plus_last_bias(norm, last):
    # out = relu(branch(x) + x). With every kernel 0 the branch is the bias of its last
    # op `last` (a norm of a constant is its bias), whatever the other params: relu(x + b).
    model = zoo.resnet((8, 8, 3), 5, depth=8, width=8, norm=norm)
    block = model.layers[1]  # stage 1's block: stride 1, width unchanged
    shapes = jax.eval_shape(block.init, KEY)
    keys = iter(jax.random.split(jax.random.PRNGKey(2), 16))
    noise = jax.tree.map(lambda a: jax.random.normal(next(keys), a.shape), shapes)
    zero_kernels = jax.tree_util.tree_map_with_path(
        lambda path, a: jnp.zeros_like(a) if path[-1].key == 'kernel' else a, noise)
    x = jax.random.normal(jax.random.PRNGKey(3), (2, 8, 8, 8))
    run = jax.jit(block.apply)
    want = jax.nn.relu(x + noise[last]['bias'])
    np.testing.assert_allclose(run(zero_kernels, x), want, atol=1e-5)
    assert not np.allclose(run(noise, x), want, atol=1e-3)  # the kernels count


def test_group_count_rule():
    assert [zoo.group_count(c) for c in (4, 6, 16, 64, 128, 512, 24)] == [1, 1, 4, 16, 32, 32, 6]


def _without_pos(params):
    """Params with every position embedding set to zero."""
    return jax.tree_util.tree_map_with_path(
        lambda path, a: jnp.zeros_like(a) if path[-1].key == 'pos' else a, params)


def _permute_patches(x, perm, p=4):
    n, h, w, c = x.shape
    patches = x.reshape(n, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
    patches = patches.reshape(n, -1, p, p, c)[:, perm]
    return patches.reshape(n, h // p, w // p, p, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(x.shape)


def test_vit_class_token_reads_every_patch_and_only_positions_order_them(small):
    model, _ = small['vit']
    params = jax.jit(model.init)(KEY)
    logits = jax.jit(lambda p, x: model.apply(p, x)[0])
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 8, 1))
    grad = jax.grad(lambda x: logits(params, x)[:, 0].sum())(x)
    per_patch = jnp.abs(grad).reshape(2, 2, 4, 2, 4).sum((2, 4))  # (image, patch row, col)
    assert bool(jnp.all(per_patch > 0))  # the class token sees every patch of every image
    shuffled = _permute_patches(x, np.array([2, 0, 3, 1]))
    bare = _without_pos(params)
    np.testing.assert_allclose(logits(bare, shuffled), logits(bare, x), rtol=1e-5, atol=1e-5)
    assert not np.allclose(logits(params, shuffled), logits(params, x), atol=1e-5)


def test_transformer_mean_pool_is_order_free_without_positions(small):
    model, _ = small['transformer']
    params = jax.jit(model.init)(KEY)
    logits = jax.jit(lambda p, x: model.apply(p, x)[0])
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 40))
    shuffled = x[:, np.random.default_rng(0).permutation(40)]
    bare = _without_pos(params)
    np.testing.assert_allclose(logits(bare, shuffled), logits(bare, x), rtol=1e-5, atol=1e-5)
    assert not np.allclose(logits(params, shuffled), logits(params, x), atol=1e-5)


def test_dtype_reaches_every_parameter():
    model = zoo.vit((8, 8, 1), 3, patch=4, dim=8, depth=1, heads=2, dtype=jnp.bfloat16)
    params = jax.eval_shape(model.init, KEY)
    assert {a.dtype for a in jax.tree.leaves(params)} == {jnp.dtype(jnp.bfloat16)}
    x = jax.ShapeDtypeStruct((2, 8, 8, 1), jnp.bfloat16)
    assert jax.eval_shape(model.apply, params, x)[0].dtype == jnp.bfloat16


@pytest.mark.parametrize('name', ['resnet', 'vit'])
def test_memorises_random_labels(small, name):
    model, shape = small[name]
    kx, ky = jax.random.split(jax.random.PRNGKey(4))
    x = jax.random.normal(kx, (64,) + shape)
    y = jax.random.randint(ky, (64,), 0, 10)
    opt = optax.adam(1e-2)

    def loss(p):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x)[0], y).mean()

    @jax.jit
    def step(p, s):
        value, g = jax.value_and_grad(loss)(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, value

    params = jax.jit(model.init)(KEY)
    state = opt.init(params)
    params, state, first = step(params, state)  # the loss before the first update
    for _ in range(29):
        params, state, _ = step(params, state)
    assert float(jax.jit(loss)(params)) < 0.1 * float(first)  # from ~ln 10 to memorised


@pytest.mark.parametrize('call,words', [
    (lambda: zoo.resnet((8, 8, 3), 10, depth=10), 'depth must be 6n + 2'),
    (lambda: zoo.resnet((8, 8, 3), 10, norm='batchnorm'), 'norm must be one of group, layer, batch'),
    (lambda: zoo.resnet((64,), 10), '(H, W, C)'),
    (lambda: zoo.vgg((8, 8, 3), 10, (4, 4, 4, 4)), 'at least 16 pixels'),
    (lambda: zoo.vit((10, 10, 1), 10, patch=4), 'multiples of patch'),
    (lambda: zoo.vit((8, 8, 1), 10, dim=10, heads=4), 'multiple of heads'),
    (lambda: zoo.transformer((4, 4, 4), 10), '(L,) or (L, C)'),
])
def test_refusals_are_one_line(call, words):
    with pytest.raises(ValueError) as err:
        call()
    assert words in str(err.value) and '\n' not in str(err.value)
