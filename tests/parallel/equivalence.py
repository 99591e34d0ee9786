"""Checks that the parallel paths give the single-device results, rule by rule.

Run in a process whose XLA_FLAGS fake several CPU devices (set before JAX is
imported), e.g.::

  XLA_FLAGS=--xla_force_host_platform_device_count=8 \\
    python -m tests.parallel.equivalence --rules=bp,fa --out=/tmp/eq.json

For each rule it trains a small MLP on digits for a few steps and reports the
largest absolute parameter difference between:
  * `sharded`: the scanned epoch on one device vs jit-sharded over all devices;
  * `fsdp`: the same with every weight split over the 'data' axis;
  * `pmap`: the pmap path vs one device (only for rules whose update is a
    mean of per-example terms with no per-batch randomness: checked first, by
    comparing a full-batch step with the mean of sliced steps);
  * `pipeline`: `chain` of the rule on one-layer blocks, one block per device,
    vs the same chain on one device (same precondition as pmap).
This module is the engine of tests/parallel/test_parallel_devices.py; the
conformance battery can call `check_rule` too.
"""
from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
import optax

from neurokit import models
from neurokit.parallel import mesh as mesh_lib
from neurokit.parallel import pipeline as pipeline_lib
from neurokit.parallel import pmap as pmap_lib
from neurokit.rules import combine, registry
from neurokit.rules.base import Rule
from neurokit.train import loop
from neurokit.train.state import init_state

TOL = 1e-5


def max_diff(a, b) -> float:
    """Largest absolute difference between two pytrees of the same structure."""
    diffs = jax.tree.map(lambda u, v: float(jnp.max(jnp.abs(jnp.asarray(u, jnp.float32)
                                                            - jnp.asarray(v, jnp.float32)))), a, b)
    return max(jax.tree.leaves(diffs), default=0.0)


def batch_decomposable(rule, params, rule_state, batch, key, parts: int) -> tuple[bool, float]:
    """Whether a full-batch step equals the mean of `parts` equal slices' steps.

    That is the condition under which pmap (per-device slices, averaged) and
    microbatch pipelining reproduce the single-device step.
    """
    if not isinstance(rule, Rule):  # an OptimizerRule steps the optimizer: no update to average
        return False, float('inf')
    step = jax.jit(rule.step)
    full = step(params, rule_state, batch, key)[0]
    n = batch['y'].shape[0] // parts
    sliced = [step(params, rule_state, jax.tree.map(lambda a: a[i * n:(i + 1) * n], batch), key)[0]
              for i in range(parts)]
    mean = jax.tree.map(lambda *u: sum(u) / parts, *sliced)
    d = max_diff(full, mean)
    return d < TOL, d


def check_rule(name: str, x, y, steps: int = 4, batch_size: int = 64, hidden=(32, 32),
               paths=('sharded', 'fsdp', 'pmap', 'pipeline'), microbatches: int = 4) -> dict:
    """Trains `steps` steps with rule `name` on every path; returns the differences.

    Returns:
      `{path: {'diff': float, 'ok': bool} or {'skipped': reason}}`, plus 'seconds'.
    """
    t0 = time.perf_counter()
    n_dev = jax.device_count()
    model = models.mlp(x.shape[1:], 10, hidden)
    rule = registry.build(name, model)
    tol = registry.capabilities(name).multihost_tolerance  # declared by the rule
    opt = optax.adam(1e-3)
    key = jax.random.PRNGKey(0)
    x, y = x[:steps * batch_size], y[:steps * batch_size]
    state0 = jax.jit(lambda k: init_state(k, model, rule, opt))(key)
    ref, _ = jax.jit(loop.make_epoch(rule, opt, batch_size))(state0, x, y, 0)
    out = {}
    mesh = mesh_lib.make_mesh()
    xs, ys = mesh_lib.put_dataset(x, y, mesh)
    if 'sharded' in paths:
        epoch = mesh_lib.sharded_epoch(rule, opt, batch_size, mesh, donate=False)
        sharded, _ = epoch(mesh_lib.put_state(state0, mesh), xs, ys, 0)
        d = max_diff(ref.params, sharded.params)
        out['sharded'] = {'diff': d, 'ok': d < tol}
    if 'fsdp' in paths:
        epoch = mesh_lib.sharded_epoch(rule, opt, batch_size, mesh, state0, fsdp=True,
                                       donate=False, fsdp_min_size=0)
        fs, _ = epoch(mesh_lib.put_state(state0, mesh, fsdp=True, min_size=0), xs, ys, 0)
        d = max_diff(ref.params, fs.params)
        out['fsdp'] = {'diff': d, 'ok': d < tol}
    batch = {'x': x[:batch_size], 'y': y[:batch_size]}
    if 'pmap' in paths:
        ok, d = batch_decomposable(rule, state0.params, state0.rule_state, batch, key, n_dev)
        if not ok:
            out['pmap'] = {'skipped': f'update is not a mean of slice updates (diff {d:.2e})'}
        else:
            pm, _ = pmap_lib.pmap_epoch(rule, opt, batch_size)(pmap_lib.replicate(state0), x, y, 0)
            d = max_diff(ref.params, pmap_lib.unreplicate(pm).params)
            out['pmap'] = {'diff': d, 'ok': d < tol}
    if 'pipeline' in paths:
        out['pipeline'] = _check_pipeline(name, model, opt, key, x, y, batch, batch_size,
                                          microbatches)
    out['seconds'] = time.perf_counter() - t0
    return out


def _check_pipeline(name, model, opt, key, x, y, batch, batch_size, microbatches):
    parts = [((i, i + 1), lambda m: registry.build(name, m)) for i in range(len(model.layers))]
    try:
        chained = combine.chain(model, parts)
        state0 = jax.jit(lambda k: init_state(k, model, chained, opt))(key)
        ok, d = batch_decomposable(chained, state0.params, state0.rule_state, batch, key,
                                   microbatches)
    except Exception as e:  # a rule that cannot train a one-layer block on its own
        return {'skipped': f'{name} on one-layer blocks: {type(e).__name__}: {str(e)[:120]}'}
    if not ok:
        return {'skipped': f'update is not a mean of microbatch updates (diff {d:.2e})'}
    ref, _ = jax.jit(loop.make_epoch(chained, opt, batch_size))(state0, x, y, 0)
    trainer = pipeline_lib.LayerPipeline(model, parts, opt, batch_size, microbatches)
    pstate, _ = trainer.epoch(trainer.split(state0), x, y, 0)
    d = max_diff(ref.params, trainer.params(pstate))
    tol = registry.capabilities(name).multihost_tolerance
    return {'diff': d, 'ok': d < tol, 'devices': len(set(trainer.devices))}


def main(argv):
    import argparse
    from neurokit import data
    p = argparse.ArgumentParser()
    p.add_argument('--rules', default='all')
    p.add_argument('--paths', default='sharded,fsdp,pmap,pipeline')
    p.add_argument('--steps', type=int, default=4)
    p.add_argument('--out', default='')
    a = p.parse_args(argv)
    # --rules=all | name,name | name:path+path,name  (per-rule paths override --paths)
    specs = sorted(registry.RULES) if a.rules == 'all' else a.rules.split(',')
    ds = data.load('digits')
    x, y = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
    result = {'devices': jax.device_count(), 'rules': {}}
    for spec in specs:
        name, _, own = spec.partition(':')
        paths = tuple(own.split('+')) if own else tuple(a.paths.split(','))
        try:
            result['rules'][name] = check_rule(name, x, y, a.steps, paths=paths)
        except Exception as e:
            result['rules'][name] = {'error': f'{type(e).__name__}: {str(e)[:300]}'}
        print(name, json.dumps(result['rules'][name]), file=sys.stderr, flush=True)
    text = json.dumps(result, indent=1)
    if a.out:
        with open(a.out, 'w') as f:
            f.write(text)
    else:
        print(text)


if __name__ == '__main__':
    main(sys.argv[1:])
