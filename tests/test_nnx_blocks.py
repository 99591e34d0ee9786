"""`from_nnx`: nnx Modules as pure blocks, their sites, and the hooked call."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from neurokit.models.flax_blocks import from_flax
from neurokit.models.nnx_blocks import from_nnx

pytestmark = pytest.mark.filterwarnings('ignore:.*cannot re-draw:UserWarning')


class Residual(nnx.Module):
    def __init__(self, d, rngs):
        self.norm = nnx.LayerNorm(d, rngs=rngs)
        self.linear1 = nnx.Linear(d, 2 * d, rngs=rngs)
        self.linear2 = nnx.Linear(2 * d, d, rngs=rngs)
        self.unused = nnx.Linear(d, d, rngs=rngs)  # never called: not a site

    def __call__(self, x):
        return x + self.linear2(jax.nn.relu(self.linear1(self.norm(x))))


class ConvPool(nnx.Module):
    def __init__(self, c_in, c_out, rngs):
        self.conv = nnx.Conv(c_in, c_out, (3, 3), rngs=rngs)

    def __call__(self, x):
        return jax.nn.relu(self.conv(x)).mean((1, 2))


class Mixed(nnx.Module):
    """A list of residual blocks, a LinearGeneral over two axes, and a conv."""
    def __init__(self, rngs):
        self.conv = nnx.Conv(2, 3, (2, 2), padding='VALID', rngs=rngs)
        self.general = nnx.LinearGeneral((2, 3), 4, axis=(-2, -1), rngs=rngs)
        self.blocks = nnx.List([Residual(4, rngs), Residual(4, rngs)])

    def __call__(self, x):  # x: (3, 3, 2) -> conv (2, 2, 3) -> mean (2, 3) -> (4,)
        h = self.general(self.conv(x).mean(1))
        for block in self.blocks:
            h = block(h)
        return h


def _x(shape, seed=1):
    return jax.random.normal(jax.random.PRNGKey(seed), (2,) + shape)


def _with(module, params):
    """A clone of `module` holding `params`: the module called directly, as its user would."""
    clone = nnx.clone(module)
    nnx.update(clone, params)
    return clone


def _get(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def _close(a, b, **kw):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6, **kw), a, b)


def test_model_from_nnx_modules_computes_what_the_modules_compute():
    mods = [ConvPool(2, 4, nnx.Rngs(0)), Residual(4, nnx.Rngs(1)), nnx.Linear(4, 3, rngs=nnx.Rngs(2))]
    model = from_flax(mods, (5, 5, 2), 3)
    assert [b.kind for b in model.layers] == ['nnx'] * 3
    assert [b.out_shape for b in model.layers] == [(4,), (4,), (3,)]
    # other params than the modules' own: apply must use the params it is given
    params = jax.tree.map(lambda a: a + 0.3, model.init(jax.random.PRNGKey(5)))
    x = _x((5, 5, 2))
    want = x
    for m, p in zip(mods, params['layers']):
        want = _with(m, p)(want)
    _close(model.apply(params, x)[0], want)


def test_factory_init_draws_per_key_and_is_the_same_under_jit():
    block = from_nnx(lambda rngs: Residual(4, rngs), (4,))
    k1, k2 = jax.random.PRNGKey(0), jax.random.PRNGKey(1)
    p1, p2 = block.init(k1), block.init(k2)
    assert not np.allclose(p1['linear1']['kernel'], p2['linear1']['kernel'])
    # the parameters the module itself draws from that key
    _close(p1, nnx.to_pure_dict(nnx.state(Residual(4, nnx.Rngs(k1)), nnx.Param)))
    jax.tree.map(np.testing.assert_array_equal, jax.jit(block.init)(k1), p1)


def test_instance_init_gives_its_own_parameters_for_every_key():
    module = Residual(4, nnx.Rngs(0))
    with pytest.warns(UserWarning, match='factory'):
        block = from_nnx(module, (4,))
    own = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    jax.tree.map(np.testing.assert_array_equal, block.init(jax.random.PRNGKey(7)), own)
    x = _x((4,))
    _close(block.hooked(own, x, lambda s, fn, q, h: fn(q, h)), module(x))
    assert type(module.linear1) is nnx.Linear  # hooked changed no class of the user's module


def _identity_vjp(site, fn, q, h):
    """`fn` under a custom_vjp whose backward is fn's own: possible only if fn is pure."""
    @jax.custom_vjp
    def f(q, h):
        return fn(q, h)

    def fwd(q, h):
        y, back = jax.vjp(fn, q, h)
        return y, back
    f.defvjp(fwd, lambda back, g: back(g))
    return f(q, h)


@pytest.mark.parametrize('hook', [lambda s, fn, q, h: fn(q, h), _identity_vjp])
def test_identity_hook_gives_apply_value_and_gradient(hook):
    block = from_nnx(lambda rngs: Mixed(rngs), (3, 3, 2))
    params, x = block.init(jax.random.PRNGKey(0)), _x((3, 3, 2))
    _close(jax.jit(lambda p: block.hooked(p, x, hook))(params), block.apply(params, x))
    grad_hooked = jax.grad(lambda p: block.hooked(p, x, hook).sum())(params)
    _close(grad_hooked, jax.grad(lambda p: block.apply(p, x).sum())(params))


def test_hook_computes_every_site_with_its_own_params():
    module = Mixed(nnx.Rngs(0))
    block = from_nnx(lambda rngs: Mixed(rngs), (3, 3, 2))
    params, x = block.init(jax.random.PRNGKey(3)), _x((3, 3, 2))
    seen = []

    def zero_kernel(site, fn, q, h):
        seen.append(site.name)
        _close(q, _get(params, site.path))  # q is that sub-module's slice of params
        return fn({**q, 'kernel': jnp.zeros_like(q['kernel'])}, h)

    zeroed = jax.tree.map(lambda a: a, params)
    for site in block.sites:
        _get(zeroed, site.path)['kernel'] = jnp.zeros_like(_get(params, site.path)['kernel'])
    got = block.hooked(params, x, zero_kernel)
    _close(got, _with(module, zeroed)(x))
    assert not np.allclose(got, block.apply(params, x))
    assert sorted(seen) == sorted(s.name for s in block.sites)


def test_sites_name_kind_and_fans_of_a_known_module():
    block = from_nnx(lambda rngs: Mixed(rngs), (3, 3, 2))
    got = {s.name: (s.kind, s.fan_in, s.fan_out) for s in block.sites}
    want = {'conv': ('conv', 2 * 2 * 2, 2 * 2 * 3), 'general': ('dense', 2 * 3, 4)}
    for i in (0, 1):
        want |= {f'blocks/{i}/linear1': ('dense', 4, 8), f'blocks/{i}/linear2': ('dense', 8, 4)}
    assert got == want and [s.name for s in block.sites][:2] == ['conv', 'general']  # call order
    params = block.init(jax.random.PRNGKey(0))
    for s in block.sites:
        assert set(_get(params, s.path)) == {'kernel', 'bias'} and s.kernel == 'kernel'


def test_batchnorm_dropout_and_bad_shape_are_refused_in_one_line():
    with pytest.raises(ValueError, match='write that block in linen.*GroupNorm.*LayerNorm') as err:
        from_nnx(lambda rngs: nnx.BatchNorm(4, rngs=rngs), (4,))
    assert '\n' not in str(err.value)
    with pytest.raises(ValueError, match=r'cannot take inputs of shape \(5,\)') as err:
        from_nnx(lambda rngs: Residual(4, rngs), (5,))
    assert '\n' not in str(err.value)
    with pytest.raises(ValueError, match='deterministic=True'):
        from_nnx(lambda rngs: nnx.Dropout(0.5, rngs=rngs), (4,))
    kept = from_nnx(lambda rngs: nnx.Dropout(0.5, deterministic=True, rngs=rngs), (4,))
    x = _x((4,))
    _close(kept.apply(kept.init(jax.random.PRNGKey(0)), x), x)
