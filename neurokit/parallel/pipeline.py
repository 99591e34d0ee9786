"""Layer-parallel local learning: one block of layers per device, microbatches pipelined.

For block-local rules (`neurokit.rules.combine.chain`: each block's rule sees
the previous block's output behind a stop-gradient) no gradient flows back
between blocks, so a step needs only a FORWARD pipeline: device s receives
block s-1's output for microbatch m, computes block s's local update for it
and passes its own output on. There is no backward wave, so the pipeline is
filled once and drained once per step (GPipe-style flush), and the step is
the single-device step exactly: every microbatch of a step sees the same
params, and the mean of equal microbatches' mean updates is the full batch's.

Implementation: MPMD. Each block has its own jitted functions, placed on its
device by its inputs; Python issues the (stage, microbatch) calls in tick
order and JAX's asynchronous dispatch lets device s work on microbatch m+1
while device s+1 works on m. Each block keeps its own optimizer state, which
equals the whole-model optimizer for element-wise optimizers (sgd, adam,
adamw, rmsprop; not global-norm clipping).

Throughput model (S balanced blocks, M microbatches per step, t the time of
one block on one microbatch, c the transfer of one activation):
  one device: S*M*t per step;  pipeline: (M + S - 1)*(t + c) per step;
  speed-up = S*M / (M + S - 1) (when c << t) -> S as M grows.

Example:
  >>> trainer = LayerPipeline(model, [((0, 1), bp), ((1, 2), bp), ((2, 3), bp)],
  ...                         optax.adam(1e-3), batch_size=128, microbatches=4)
  >>> pstate = trainer.init(jax.random.PRNGKey(0))
  >>> pstate, metrics = trainer.epoch(pstate, x, y, 0)
  >>> params = trainer.params(pstate)     # the whole model's params
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from neurokit.checks import positive_int
from neurokit.rules import combine as combine_lib
from neurokit.rules.base import OptimizerRule
from neurokit.train import loop
from neurokit.train.state import TrainState, init_state, step_key


class PipelineState(NamedTuple):
    """Per-block state, each on its block's device.

    Attributes:
      params: tuple over blocks of the params block k's rule sees.
      opt_state: tuple over blocks of optimizer states.
      rule_state: tuple over blocks of rule states.
      key: the run's base key (host).
      step: steps taken (host int).
    """
    params: tuple
    opt_state: tuple
    rule_state: tuple
    key: jax.Array
    step: int


class LayerPipeline:
    """Trains a `chain` of block-local rules with block k on device k.

    Args:
      model: the whole model.
      parts: as for `combine.chain`: `((start, stop), build)` pairs.
      optimizer: an element-wise optax optimizer (one copy per block).
        Every block's rule must be a plain `Rule` (ValueError otherwise).
      batch_size: global batch size; must divide by `microbatches`.
      microbatches: microbatches per step (M).
      devices: one device per block (default: the first len(parts) devices;
        with fewer devices blocks are assigned round-robin).
    """

    def __init__(self, model, parts: Sequence, optimizer, batch_size: int, microbatches: int,
                 devices=None):
        positive_int(batch_size, 'batch_size', 'LayerPipeline')
        positive_int(microbatches, 'microbatches', 'LayerPipeline')
        if batch_size % microbatches:
            raise ValueError(f'batch_size={batch_size} must divide by microbatches={microbatches}')
        self.model, self.optimizer = model, optimizer
        self.batch_size, self.microbatches = batch_size, microbatches
        self.blocks = combine_lib.parts_of(model, parts)
        for k, part in enumerate(self.blocks):
            if isinstance(part.rule, OptimizerRule):
                raise ValueError(
                    f'LayerPipeline: block {k} (layers [{part.start}, {part.stop})) has a rule '
                    'that steps the optimizer inside its pass (an OptimizerRule: ipc, or a '
                    'layerwise form), but the pipeline averages the microbatches\' updates '
                    'before one optimizer step per block; give that block a plain rule (e.g. '
                    'mf(m), not mf(m, layerwise=True))')
        self.rule = combine_lib.chain(model, parts)  # the single-device equivalent
        devices = list(devices or jax.devices())
        self.devices = [devices[k % len(devices)] for k in range(len(self.blocks))]
        self._micro = [jax.jit(self._make_micro(p)) for p in self.blocks]
        self._apply = jax.jit(self._apply_fn, static_argnums=3)

    @staticmethod
    def _make_micro(part):
        def micro(view, rule_state, h, y, key, acc):
            """One block on one microbatch: local update (accumulated) and output."""
            u, rs, m = part.rule.step(view, rule_state, {'x': h, 'y': y}, key)
            acc = jax.tree.map(jnp.add, acc, (u, m)) if acc is not None else (u, m)
            return acc, rs, combine_lib.part_forward(part, view, h)
        return micro

    def _apply_fn(self, view, opt_state, acc, m):
        updates = jax.tree.map(lambda a: a / m, acc)
        updates, opt_state = self.optimizer.update(updates, opt_state, view)
        return optax.apply_updates(view, updates), opt_state

    def init(self, key) -> PipelineState:
        """Initialises exactly as `init_state(key, model, chain(model, parts), optimizer)`."""
        full = init_state(key, self.model, self.rule, self.optimizer)
        return self.split(full)

    def split(self, state: TrainState) -> PipelineState:
        """Moves a whole-model train state's params and rule state onto the blocks' devices.

        The optimizer state is re-initialised per block (exact at step 0).
        """
        views, opts, rss = [], [], []
        for k, (p, dev) in enumerate(zip(self.blocks, self.devices)):
            view = jax.device_put(combine_lib.part_params(state.params, k, p), dev)
            views.append(view)
            opts.append(jax.device_put(self.optimizer.init(view), dev))
            rss.append(jax.device_put(state.rule_state[k], dev))
        return PipelineState(tuple(views), tuple(opts), tuple(rss), state.key, int(state.step))

    def params(self, pstate: PipelineState):
        """The whole model's params (the `chain` rule's tree), on the first device."""
        layers, extras = [], {}
        dev = self.devices[0]
        for k, view in enumerate(pstate.params):
            view = jax.device_put(view, dev)
            layers.extend(view['layers'])
            ex = {n: v for n, v in view.items() if n != 'layers'}
            if ex:
                extras[str(k)] = ex
        return combine_lib._join(layers, extras)

    def train_step(self, pstate: PipelineState, x, y):
        """One step on the global batch `(x, y)` (any device; moved to block 0)."""
        n_s, n_m = len(self.blocks), self.microbatches
        key = step_key(TrainState(None, None, None, pstate.key, jnp.asarray(pstate.step, jnp.int32)))
        xs = jnp.split(jax.device_put(x, self.devices[0]), n_m)
        ys = [[jax.device_put(yb, d) for d in self.devices] for yb in jnp.split(y, n_m)]
        keys = [jax.device_put(key, d) for d in self.devices]
        acc = [None] * n_s
        rs_new = list(pstate.rule_state)
        h = [[None] * n_m for _ in range(n_s + 1)]
        h[0] = xs
        for t in range(n_m + n_s - 1):  # ticks: block s works on microbatch t - s
            for s in range(n_s):
                m = t - s
                if not 0 <= m < n_m:
                    continue
                h_in = jax.device_put(h[s][m], self.devices[s])  # async transfer from block s-1
                acc[s], rs_new[s], h[s + 1][m] = self._micro[s](
                    pstate.params[s], pstate.rule_state[s], h_in, ys[m][s], keys[s], acc[s])
        views, opts, metrics = [], [], {}
        for s in range(n_s):
            u, m_sum = acc[s]
            view, opt = self._apply(pstate.params[s], pstate.opt_state[s], u, n_m)
            views.append(view)
            opts.append(opt)
            metrics.update({f'block{s}_{k}': v / n_m for k, v in m_sum.items()})
        last = f'block{n_s - 1}_'
        metrics.update({k: metrics[last + k] for k in ('loss', 'accuracy') if last + k in metrics})
        return PipelineState(tuple(views), tuple(opts), tuple(rs_new), pstate.key,
                             pstate.step + 1), metrics

    def epoch(self, pstate: PipelineState, x, y, epoch: int):
        """One epoch in the data order of `neurokit.train.make_epoch`.

        Returns:
          `(pstate, metrics)`: metrics are means over the epoch's steps.
        """
        loop.check_examples(x, y)
        order = np.asarray(loop.epoch_order(pstate.key, epoch, x.shape[0], self.batch_size))
        x0 = jax.device_put(x, self.devices[0])
        sums = None
        for idx in order:
            idx = jnp.asarray(idx)
            pstate, m = self.train_step(pstate, x0[idx], y[idx])
            sums = m if sums is None else {k: sums[k] + m[k] for k in m}
        return pstate, {k: v / len(order) for k, v in sums.items()}
