"""How strongly each block amplifies a change of its input: the largest singular value of
its Jacobian, per example, at given params and inputs.

Energy-based rules care. Predictive coding's inference descends
`E = sum_l ||v_l - f_l(v_{l-1})||^2 / 2`; near the feed-forward pass the curvature of `E` in
a value node `v_l` is `I + J_{l+1}^T J_{l+1}`, with `J_{l+1}` block `l+1`'s Jacobian, so a
gradient step `gamma` on that node stays stable only while `gamma * (1 + s_{l+1}^2) < 2`
(`s` the largest singular value). A LayerNorm over a token or a channel group of small
spread has a large `s` (about its weights over that spread): `block_gains` finds such a
block before a run diverges.
"""
import jax
import jax.numpy as jnp

from neurokit.models.model import Model, call_block


def block_gains(model: Model, params, x, key, iters: int = 50):
    """Each block's largest Jacobian singular value over the examples of `x`.

    Args:
      model: the model.
      params: its params (a stateful block runs in evaluation mode, so that each example's
        output depends on that example alone).
      x: a batch of inputs, `(N, *model.input_shape)`.
      key: PRNG key for the power iteration's start.
      iters: power iterations on `J^T J` (each one JVP and one VJP per block).

    Returns:
      A float32 array of `len(model.layers)` values: entry l is `max_n ||J_l(n)||_2`, block
      l's Jacobian at example n with respect to its input (block 0's input is `x`).
    """
    _, acts = model.apply(params, x, train=False)
    inputs = [x] + list(acts[:-1])
    gains = []
    for l, (block, h) in enumerate(zip(model.layers, inputs)):
        f = lambda u, block=block, p=params['layers'][l]: call_block(block, p, u, False)  # noqa: E731
        gains.append(_top_singular(f, h, jax.random.fold_in(key, l), iters))
    return jnp.stack(gains)


def _top_singular(f, h, key, iters):
    """max over examples of the top singular value of df/dh, by power iteration on each
    example's `J^T J` at once (the batch's Jacobian is block-diagonal by example)."""
    _, jvp = jax.linearize(f, h)  # one forward pass; J and J^T reuse it
    vjp = jax.linear_transpose(jvp, h)

    def norms(v):  # one per example
        return jnp.sqrt(jnp.sum(jnp.square(v), axis=tuple(range(1, v.ndim)), keepdims=True))

    def step(v, _):
        (w,) = vjp(jvp(v))
        return w / jnp.maximum(norms(w), 1e-30), None

    v = jax.random.normal(key, h.shape, h.dtype)
    v, _ = jax.lax.scan(step, v / norms(v), None, length=iters)
    gain = norms(jvp(v))
    return jnp.max(gain).astype(jnp.float32)
