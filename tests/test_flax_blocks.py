"""Every rule on a Flax model: the block path against oracles and against neurokit's layers.

* Twins: neurokit's MLP rebuilt from linen `nn.Dense` modules (`linen_layers.to_linen`) and
  started from the same weights follows the native model step for step under every rule;
  so does a CNN whose convolutions use XLA's convolution, as Flax's `nn.Conv` does (on CPU
  the native conv defaults to an im2col matmul: other rounding, not another model).
* Oracles on models no neurokit layer can express (a residual block with LayerNorm, a
  transformer encoder block with attention): FA with every feedback matrix equal to its
  kernel is backprop; DFA with one hidden block and feedback equal to the next kernel is
  backprop; PC in its Z-IL setting is backprop.
* uSF's `scale_by='xavier'` against its closed form; refusals in one line.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurokit import models, train
from neurokit.models import layers as L
from neurokit.models.linen_layers import to_linen
from neurokit.models.model import sequential
from neurokit.rules import fa as fa_lib
from neurokit.rules import registry

# One rule per code path through the blocks: usf and frsf take fa's path with other feedback
# (brsf's, drawn per step, stands for them), cff takes ff's; the blocks.vs_native benchmark
# runs every rule on the MLP and LeNet configs.
RULES = ('bp', 'fa', 'brsf', 'dfa', 'mf', 'ff', 'pc', 'ipc')


class Residual(nn.Module):
    """x + W2 relu(W1 LN(x)): pre-norm residual MLP block."""
    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Dense(24)(nn.LayerNorm()(x)))
        return x + nn.Dense(x.shape[-1])(h)


class Encoder(nn.Module):
    """A pre-LN transformer encoder block over (tokens, dim)."""
    @nn.compact
    def __call__(self, x):
        x = x + nn.MultiHeadDotProductAttention(num_heads=2)(nn.LayerNorm()(x))
        return x + nn.Dense(x.shape[-1])(nn.gelu(nn.Dense(16)(nn.LayerNorm()(x))))


class Counting(nn.Module):
    """Keeps a call count: state in a collection of its own (not BatchNorm's)."""
    @nn.compact
    def __call__(self, x):
        n = self.variable('counts', 'n', lambda: jnp.zeros((), jnp.int32))
        n.value += 1
        return x


def _relative(a, b):
    a, b = jnp.concatenate([v.ravel() for v in jax.tree.leaves(a)]), \
        jnp.concatenate([v.ravel() for v in jax.tree.leaves(b)])
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _batch(shape, n=16, seed=1):
    x = jax.random.normal(jax.random.PRNGKey(seed), (n,) + shape)
    return {'x': x, 'y': jnp.arange(n) % 10}


def _train(model, name, steps=2):
    """Params after `steps` steps of adam from `init_state(PRNGKey(0))`."""
    rule, opt = registry.build(name, model), optax.adam(1e-2)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    step = jax.jit(train.make_train_step(rule, opt))
    for i in range(steps):
        state, _ = step(state, _batch(model.input_shape, seed=i))
    return state.params['layers']


def _native_layout(twin_layers):
    """A twin's per-layer params back in the native `{'w', 'b'}` layout."""
    out = []
    for p in twin_layers:
        if 'w' not in p:
            (q,) = p.values()
            p = {'w': q['kernel'], 'b': q['bias']}
        out.append(p)
    return tuple(out)


@pytest.mark.parametrize('name', RULES)
def test_linen_mlp_follows_the_native_mlp(name):
    native = models.mlp((8, 8, 1), 10, (16, 16))
    # the first layer stays native, so that the feedback rules draw the same random
    # matrices (a first Flax block has a feedback site of its own, see fa.feedback_sites)
    twin = to_linen(native, keep_first=True)
    got, want = _native_layout(_train(twin, name)), _train(native, name)
    assert _relative(got, want) <= 1e-6


@pytest.mark.parametrize('name', ['bp', 'fa', 'pc'])
def test_linen_cnn_follows_the_native_cnn(name):
    c0 = L.conv('conv_0', (8, 8, 1), 4, 3, 'relu', 2, 'SAME', impl='xla')
    c1 = L.conv('conv_1', c0.out_shape, 8, 3, 'relu', 1, 'VALID', impl='xla')
    native = sequential([c0, c1, L.dense('dense_0', c1.out_shape, 10, 'identity')])
    got = _native_layout(_train(to_linen(native, keep_first=True), name))
    assert _relative(got, _train(native, name)) <= 1e-6


def _bp_grads(model, params, batch):
    from neurokit import losses
    return jax.grad(lambda p: losses.cross_entropy(model.apply(p, batch['x'])[0],
                                                    batch['y']))(params)


RESIDUAL = lambda: models.from_flax([nn.Sequential([nn.Dense(12), nn.relu]), Residual(),
                                     Residual(), nn.Dense(10)], (8,), 10)
ENCODER = lambda: models.from_flax(
    [nn.Dense(8), Encoder(), nn.Sequential([lambda x: x.mean(-2), nn.Dense(10)])], (5, 3), 10)


@pytest.mark.parametrize('build', [RESIDUAL, ENCODER], ids=['residual_layernorm', 'attention'])
def test_fa_with_feedback_equal_to_the_kernels_is_backprop(build):
    model = build()
    params = model.init(jax.random.PRNGKey(0))
    rule = registry.build('fa', model)
    sites = fa_lib.feedback_sites(model)
    # every Dense inside the blocks, attention's query/key/value/out projections included
    assert len(sites) == sum(len(b.sites) for b in model.layers) > len(model.layers)
    state = fa_lib.with_feedback(rule.init(jax.random.PRNGKey(1), params),
                                 fa_lib._site_kernels(sites, params))
    batch = _batch(model.input_shape)
    # compiled, as training runs it (one program each, not op by op: about half the time)
    step = jax.jit(rule.step)
    bp_grads = jax.jit(lambda p, b: _bp_grads(model, p, b))(params, batch)
    updates, _, _ = step(params, state, batch, jax.random.PRNGKey(2))
    assert _relative(updates, bp_grads) <= 1e-5
    # and random feedback is not backprop (the check can fail)
    random = step(params, rule.init(jax.random.PRNGKey(1), params), batch, None)[0]
    assert _relative(random, bp_grads) > 1e-2


def test_dfa_with_one_hidden_block_and_the_next_kernel_as_feedback_is_backprop():
    model = models.from_flax([nn.Sequential([nn.Dense(12), Residual()]), nn.Dense(10)], (8,), 10)
    params = model.init(jax.random.PRNGKey(0))
    rule = registry.build('dfa', model)
    state = fa_lib.with_feedback(rule.init(jax.random.PRNGKey(1), params),
                                 (params['layers'][1]['kernel'],))
    batch = _batch((8,))
    updates, _, _ = rule.step(params, state, batch, None)
    assert _relative(updates, _bp_grads(model, params, batch)) <= 1e-5


def test_pc_in_the_zil_setting_is_backprop_on_a_residual_model():
    model = RESIDUAL()
    params = model.init(jax.random.PRNGKey(0))
    rule = registry.build('pc', model, fixed_prediction=True, inference_lr=1.0,
                          inference_steps=len(model.layers) - 1, output_energy='cross_entropy')
    batch = _batch((8,))
    updates, _, _ = rule.step(params, rule.init(None, params), batch, None)
    assert _relative(updates, _bp_grads(model, params, batch)) <= 1e-5


def test_usf_xavier_scale_is_the_fan_in_scale_times_its_closed_form_ratio():
    """Only the last layer's feedback (500 -> 10) differs between the two scales; ReLU masks
    come from the forward pass, so the updates of the layers below scale by exactly
    sqrt(2 fan_in / (fan_in + fan_out)) = sqrt(1000/510) (1.40), the last layer's not at all."""
    model = models.mlp((784,), 10, (500, 500))
    params = model.init(jax.random.PRNGKey(0))
    batch = _batch((784,), n=8)
    state = registry.build('usf', model).init(None, params)
    step = lambda **kw: registry.build('usf', model, **kw).step(params, state, batch, None)[0]
    a, b = step(), step(scale_by='xavier')
    ratio = np.sqrt(2 * 500 / 510)
    for l in (0, 1):
        assert _relative(b['layers'][l], jax.tree.map(lambda u: ratio * u, a['layers'][l])) < 1e-5
    assert _relative(b['layers'][2], a['layers'][2]) == 0


@pytest.mark.parametrize('make, match', [
    (lambda: registry.build('pfa', RESIDUAL()), r'^pfa cannot apply to block block_0 \(linen\)'),
    (lambda: models.from_flax([Counting(), nn.Dense(10)], (8,), 10),
     r'^block block_0 \(Counting\) keeps state besides its parameters \(counts\)'),
    (lambda: models.from_flax([nn.Dense(16), nn.Dense(5)], (8,), 10),
     r'^the last block \(block_1\) outputs shape \(5,\) .* 10 classes'),
    (lambda: models.from_flax([nn.Conv(4, (3, 3)), nn.Dense(10)], (8,), 10),
     r'^block block_0 \(Conv\) cannot take inputs of shape \(8,\)'),
], ids=['rule_cannot_apply', 'state_not_batchnorm', 'wrong_classes', 'wrong_input'])
def test_what_cannot_be_built_is_refused_in_one_line(make, match):
    with pytest.raises(ValueError, match=match) as err:
        make()
    assert '\n' not in str(err.value)
