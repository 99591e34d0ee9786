"""Counted matmul FLOPs (`neurokit.flops.matmul_flops`) against closed forms: backprop on
an MLP, FA (the same matmuls with B in place of W^T), loops counted once per trip."""
import jax
import jax.numpy as jnp
import optax
import pytest

from neurokit import train
from neurokit.flops import matmul_flops
from neurokit.models.mlp import mlp
from neurokit.rules import registry

B, WIDTHS = 32, (20, 16, 12, 10)


def _step_flops(rule_name, **kwargs):
    model = mlp((WIDTHS[0],), WIDTHS[-1], WIDTHS[1:-1])
    rule, opt = registry.build(rule_name, model, **kwargs), optax.sgd(0.1)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    batch = {'x': jnp.ones((B, WIDTHS[0])), 'y': jnp.zeros((B,), jnp.int32)}
    return matmul_flops(train.make_train_step(rule, opt), state, batch)


def test_backprop_counts_its_forward_weight_and_input_gradients():
    layers = [2 * B * a * b for a, b in zip(WIDTHS[:-1], WIDTHS[1:])]
    # forward + weight gradients + input gradients of every layer but the first
    assert _step_flops('bp') == 3 * sum(layers) - layers[0]
    assert _step_flops('fa') == _step_flops('bp')  # B_l has W_l^T's shape


def test_a_loop_counts_its_body_once_per_trip_and_a_conv_its_taps():
    w = jnp.ones((8, 8))
    def loop(x, n):
        return jax.lax.scan(lambda c, _: (c @ w, None), x, None, length=n)[0]
    per = 2 * 4 * 8 * 8
    assert matmul_flops(lambda x: loop(x, 7), jnp.ones((4, 8))) == 7 * per
    conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME',
                                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    assert matmul_flops(conv, jnp.ones((2, 6, 6, 3)), jnp.ones((3, 3, 3, 5))) == \
        2 * (2 * 6 * 6 * 5) * (3 * 3 * 3)


def test_equilibrium_propagation_is_linear_in_its_relaxation_steps():
    counts = [_step_flops('ep', free_steps=n, nudged_steps=5) for n in (10, 20, 30)]
    assert counts[1] - counts[0] == counts[2] - counts[1] > 0


def test_a_loop_of_unknown_length_is_refused():
    def loop(x, n):
        return jax.lax.while_loop(lambda c: c[1] < n, lambda c: (c[0] @ c[0], c[1] + 1), (x, 0))[0]
    with pytest.raises(ValueError, match='trip count'):
        matmul_flops(loop, jnp.ones((3, 3)), 4)
