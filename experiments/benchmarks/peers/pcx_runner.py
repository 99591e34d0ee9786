"""PCX's PC-SE MLP training step, timed on the same data: run inside the PCX venv.

  .venvs/pcx/bin/python experiments/benchmarks/peers/pcx_runner.py --data=/tmp/fm.npz \
      --T=5 --hidden=128 --layers=4 --batches=200

Mirrors PCX's own example (examples/discriminative_experiments/MLP/fmnist/PC_SE.py
at liukidar/pcx): a Python loop over batches calling one `pxf.jit`-compiled
`train_on_batch` (forward init, T activity steps with SGD+momentum, one AdamW
weight step). Prints one JSON line: samples/s over `--batches` steady-state
batches (after a compile/warm-up batch) and the test accuracy after them. This
file is standalone (PCX pins jax<0.5, so it cannot share neurokit's process).

The activity step: PCX's F-MNIST example was tuned (SGD 0.026) on a pcax whose
`Optim.step(..., True)` multiplied the batch-mean gradient by the batch size, so
its tuned step is 0.026 times the PER-EXAMPLE energy gradient (neurokit's
`inference_lr=0.026`). pcx 0.6.3 differentiates the batch-mean energy below with
no such factor, so `--activity_lr` (per example, as tuned) is multiplied by the
batch size here; without it PCX would relax `batch` times slower than tuned.
"""
import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pcx as px
import pcx.functional as pxf
import pcx.nn as pxnn
import pcx.predictive_coding as pxc
import pcx.utils as pxu


class Model(pxc.EnergyModule):
    def __init__(self, input_dim, hidden_dim, output_dim, nm_layers, act_fn):
        super().__init__()
        self.act_fn = px.static(act_fn)
        self.layers = [pxnn.Linear(input_dim, hidden_dim)] + [
            pxnn.Linear(hidden_dim, hidden_dim) for _ in range(nm_layers - 2)] + [
            pxnn.Linear(hidden_dim, output_dim)]
        self.vodes = [pxc.Vode() for _ in range(nm_layers - 1)] + [
            pxc.Vode(pxc.se_energy)]
        self.vodes[-1].h.frozen = True

    def __call__(self, x, y, beta=1.0):
        for v, l in zip(self.vodes[:-1], self.layers[:-1]):
            x = v(self.act_fn(l(x)))
        x = self.vodes[-1](self.layers[-1](x))
        if y is not None:
            self.vodes[-1].set('h', self.vodes[-1].get('u') - beta * (self.vodes[-1].get('u') - y))
        return self.vodes[-1].get('u')


@pxf.vmap(pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)), in_axes=(0, 0), out_axes=0)
def forward(x, y, *, model, beta=1.0):
    return model(x, y, beta=beta)


@pxf.vmap(pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)), in_axes=(0,), out_axes=(None, 0),
          axis_name='batch')
def energy(x, *, model):
    y_ = model(x, None)
    return jax.lax.pmean(model.energy().sum(), 'batch'), y_


@pxf.jit(static_argnums=0)
def train_on_batch(T, x, y, *, model, optim_w, optim_h, beta=1.0):
    model.train()
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(x, y, model=model, beta=beta)
    # Only the free (not frozen) value nodes: PCX's Optim.step silently skips the whole update
    # when any parameter it was initialised with gets no gradient (the frozen output node), so
    # initialising it with every VodeParam and passing allow_none=True makes inference a no-op.
    optim_h.init(pxu.M_hasnot(pxc.VodeParam, frozen=True)(model))
    for _ in range(T):
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            _, g = pxf.value_and_grad(pxu.M_hasnot(pxc.VodeParam, frozen=True).to([False, True]),
                                      has_aux=True)(energy)(x, model=model)
        optim_h.step(model, g['model'])
    optim_h.clear()
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        _, g = pxf.value_and_grad(pxu.M(pxnn.LayerParam).to([False, True]), has_aux=True)(energy)(
            x, model=model)
    optim_w.step(model, g['model'], scale_by=1 / beta)


@pxf.jit()
def eval_on_batch(x, y, *, model):
    model.eval()
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        y_ = forward(x, None, model=model).argmax(axis=-1)
    return (y_ == y).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', required=True)
    ap.add_argument('--T', type=int, default=5)
    ap.add_argument('--hidden', type=int, default=128)
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--batches', type=int, default=200)
    ap.add_argument('--act', default='gelu')
    ap.add_argument('--activity_lr', type=float, default=0.026,
                    help='activity step per example (the tuned 0.026); see the docstring')
    args = ap.parse_args()
    d = np.load(args.data)
    x, y = d['x_train'].reshape(len(d['x_train']), -1), d['y_train']
    xt, yt = d['x_test'].reshape(len(d['x_test']), -1), d['y_test']
    model = Model(x.shape[1], args.hidden, 10, args.layers, getattr(jax.nn, args.act))
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(jnp.zeros((args.batch, x.shape[1])), None, model=model)
        # The energy is a batch mean: scale the per-example step by the batch size.
        optim_h = pxu.Optim(lambda: optax.sgd(args.activity_lr * args.batch, momentum=0.1))
        optim_w = pxu.Optim(lambda: optax.adamw(2.97e-4, weight_decay=1.8e-3),
                            pxu.M(pxnn.LayerParam)(model))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    nb = len(x) // args.batch

    def batch(i):
        idx = order[(i % nb) * args.batch:((i % nb) + 1) * args.batch]
        return jnp.asarray(x[idx]), jax.nn.one_hot(jnp.asarray(y[idx]), 10)

    for i in range(2):  # compile + warm-up
        train_on_batch(args.T, *batch(i), model=model, optim_w=optim_w, optim_h=optim_h)
    jax.block_until_ready(jax.tree.leaves(model))
    t0 = time.perf_counter()
    for i in range(args.batches):
        train_on_batch(args.T, *batch(i + 2), model=model, optim_w=optim_w, optim_h=optim_h)
    jax.block_until_ready(jax.tree.leaves(model))
    dt = time.perf_counter() - t0
    b = args.batch  # PCX's vodes keep the batch size they were initialised with
    accs = [float(eval_on_batch(jnp.asarray(xt[i:i + b]), jnp.asarray(yt[i:i + b]), model=model))
            for i in range(0, len(xt) - b + 1, b)]
    print(json.dumps({'samples_per_second': args.batches * args.batch / dt, 'seconds': dt,
                      'batches': args.batches, 'test_accuracy': float(np.mean(accs)),
                      'activity_lr_per_example': args.activity_lr,
                      'jax': jax.__version__}))


if __name__ == '__main__':
    main()
