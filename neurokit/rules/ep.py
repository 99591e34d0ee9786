"""Equilibrium propagation (Scellier & Bengio 2017; the symmetric nudge of Laborieux et al.
2021) on a layered energy-based network.

The model's dense layers are the network's symmetric connections: layer l's kernel `W_l`
(in, out) and bias `b_l` connect state `s_{l-1}` to `s_l` both ways. With the input clamped
(`ρ(s_0) = x`) and `s_1 .. s_L` free, each example has the Hopfield-like energy

  E(s) = Σ_l ½‖s_l‖² - Σ_l ρ(s_l) · (ρ(s_{l-1}) W_l + b_l),      ρ = the activation,

and the cost `C(s) = ½‖s_L - onehot(y)‖²` on the output states. Training one batch:

  free phase:    s⁰ = the states after `free_steps` steps of s ← s - ε ∂E/∂s, from a
                 feedforward sweep s_l = ρ(s_{l-1}) W_l + b_l;
  nudged phases: from s⁰, `nudged_steps` steps on F = E ± βC, giving s^{+β} and s^{-β};
  update:        (∂E/∂θ(s^{+β}) - ∂E/∂θ(s^{-β})) / (2β),  the batch mean,

which is local (`∂E/∂W_l = -ρ(s_{l-1})ᵀ ρ(s_l)`: pre- times post-synaptic activity) and
contrastive. As β → 0, with the phases relaxed to their fixed points, it tends to the
gradient of `C(s⁰(θ))` (the equilibrium propagation theorem), the symmetric form with an
error of order β² (tests/rules/test_ep.py checks both against the implicit-function
gradient). `symmetric=False` uses the one-sided (s^{+β} - s⁰)/β, biased by O(β).
`predict` runs the free phase and reads the output states.

Cost per step: `free_steps + 2 nudged_steps` relaxation steps, each one product by every
kernel and one by its transpose. Trains dense layers (an MLP).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from neurokit import losses
from neurokit.checks import check_count, check_range
from neurokit.models import Model
from neurokit.models.model import require_layers
from neurokit.rules.base import EmptyState, Rule, check_batch, declare


# ρ: bounded activations (the energy then has a minimum); 'hard_sigmoid' is Scellier & Bengio's
RHO = {'hard_sigmoid': lambda s: jnp.clip(s, 0.0, 1.0), 'sigmoid': jax.nn.sigmoid,
       'tanh': jnp.tanh}


def energy(params, states, x, rho):
    """E of each example (`(B,)`): `Σ ½‖s_l‖² - Σ ρ(s_l)·(ρ(s_{l-1}) W_l + b_l)`, ρ(s_0) = x."""
    below = x.reshape(x.shape[0], -1)
    e = 0.0
    for p, s in zip(params['layers'], states):
        r = rho(s)
        e = e + 0.5 * jnp.sum(s * s, -1) - jnp.sum(r * (below @ p['w'] + p['b']), -1)
        below = r
    return e


def cost(states, y, num_classes):
    """C of each example: `½‖s_L - onehot(y)‖²`."""
    return 0.5 * jnp.sum((states[-1] - jax.nn.one_hot(y, num_classes, dtype=states[-1].dtype)) ** 2,
                         -1)


# multihost_tolerance: hard-sigmoid units saturated at 0 or 1 get updates at rounding level,
# which differ between the sharded and the one-device programs, and Adam turns each into a
# step of about the learning rate (a 2-process run differs by ~5e-3 after 8 steps at lr 1e-3;
# one step's update splits over slices to 5e-7)
@declare(layers=('dense',), toy_learning_rate=3e-3, multihost_tolerance=2e-2)
def ep(model: Model, beta: float = 0.5, free_steps: int = 40, nudged_steps: int = 15,
       step_size: float = 0.5, symmetric: bool = True, activation: str = 'hard_sigmoid') -> Rule:
    """Equilibrium propagation (see the module docstring).

    Args:
      model: an MLP: its dense layers' kernels and biases are the network's connections
        (its own activations are not used: ρ is `activation`).
      beta: the nudge (> 0).
      free_steps, nudged_steps: relaxation steps of the free and of each nudged phase.
      step_size: ε of the relaxation `s ← s - ε ∂F/∂s`.
      symmetric: nudge with +β and -β (else +β against the free phase).
      activation: ρ of every state (hidden and output): 'hard_sigmoid' (clip to [0, 1],
        Scellier & Bengio's), 'sigmoid' or 'tanh'; bounded, so the energy has a minimum.

    Returns:
      A `Rule` with no state.
    """
    check_range('beta', beta, lambda v: v > 0, 'a finite number > 0', where='ep')
    check_range('step_size', step_size, lambda v: 0 < v <= 1, 'a number in (0, 1]', where='ep')
    check_count('free_steps', free_steps, 1, where='ep')
    check_count('nudged_steps', nudged_steps, 1, where='ep')
    require_layers(model, 'ep', ('dense',), 'its states relax to an equilibrium, not one pass')
    if activation not in RHO:
        raise ValueError(f'ep: activation must be one of {tuple(RHO)} (bounded, so the energy '
                         f'has a minimum), got {activation!r}')
    rho = RHO[activation]
    k = model.num_classes

    def relax(params, states, x, y, nudge, steps):
        def total(s):  # per-example energies summed: each example's own dynamics
            f = energy(params, s, x, rho)
            return jnp.sum(f) if nudge is None else jnp.sum(f + nudge * cost(s, y, k))

        def one(s, _):
            g = jax.grad(total)(s)
            return jax.tree.map(lambda a, b: a - step_size * b, s, g), None

        return jax.lax.scan(one, states, None, length=steps)[0]

    def free(params, x, y=None):
        # start from a feedforward sweep (s_l = ρ(s_{l-1}) W_l + b_l): the relaxation then
        # only corrects for the top-down terms (a start at 0 leaves hard-sigmoid units
        # where ρ' = 0, stuck)
        states, below = [], x.reshape(x.shape[0], -1)
        for p in params['layers']:
            s = below @ p['w'] + p['b']
            states.append(s)
            below = rho(s)
        return relax(params, tuple(states), x, y, None, free_steps)

    def init(key, params):
        del key, params
        return EmptyState()

    def step(params, state, batch, key):
        batch = check_batch(model, batch, params)
        del key
        x, y = batch['x'], batch['y']
        s0 = free(params, x)
        plus = relax(params, s0, x, y, beta, nudged_steps)
        minus = relax(params, s0, x, y, -beta, nudged_steps) if symmetric else s0
        scale = 2.0 * beta if symmetric else beta

        def mean_energy(p, s):
            return jnp.mean(energy(p, jax.lax.stop_gradient(s), x, rho))

        g_plus = jax.grad(mean_energy)(params, plus)
        g_minus = jax.grad(mean_energy)(params, minus)
        updates = jax.tree.map(lambda a, b: (a - b) / scale, g_plus, g_minus)
        out = s0[-1]
        return updates, state, {'loss': jnp.mean(cost(s0, y, k)),
                                'accuracy': losses.accuracy(out, y)}

    def predict(params, state, x):
        del state
        return free(params, x)[-1]

    return Rule(init, step, predict)
