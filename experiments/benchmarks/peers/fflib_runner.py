"""fflib's forward-forward MLP, driven step by step from stdin: run inside the fflib venv.

  .venvs/fflib/bin/python experiments/benchmarks/peers/fflib_runner.py --data=/tmp/d.npz \
      --hidden=1000 --layers=2 --batch=128 --steps=40

Builds fflib 0.3.0's `FFNet` of `FFLinear` layers (each layer: input rows
normalised to unit length, ReLU, its own Adam, softplus goodness loss around a
threshold) on inputs = image (784) ++ one-hot label (10), and trains it the way
fflib's `FFSuite._train` does: positive = true label, negative = a random wrong
label (`FFDataProcessor.generate_negative`, RANDOM), `run_train_combined`. The
suite/data helpers themselves are not imported (fflib.utils.data.mnist needs
torchvision, which fflib pins to a torch 2.6 release).

Protocol (one JSON line per command, so the parent can interleave timings with
its own in one run): stdin `run` -> trains `--steps` batches, prints
{"seconds": ...}; `eval` -> {"test_accuracy": ...} (label with the highest summed
goodness over the hidden layers, as fflib's probes do); `quit`. The first line
printed at start is {"ready": true, "torch": ..., "fflib": ...}.
This file is standalone: it never imports neurokit or jax.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from torch.nn.functional import one_hot

import fflib
from fflib.nn.ff_linear import FFLinear
from fflib.nn.ff_net import FFNet


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', required=True)
    ap.add_argument('--hidden', type=int, default=1000)
    ap.add_argument('--layers', type=int, default=2)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--steps', type=int, default=40)
    # fflib's own example (examples/ff_net_mnist.py at mitkonikov/ff): lt = 20, lr = 0.02
    ap.add_argument('--lr', type=float, default=0.02)
    ap.add_argument('--threshold', type=float, default=20.0)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d = np.load(args.data)
    x = torch.from_numpy(d['x_train'].reshape(len(d['x_train']), -1).astype(np.float32))
    y = torch.from_numpy(d['y_train'].astype(np.int64))
    xt = torch.from_numpy(d['x_test'].reshape(len(d['x_test']), -1).astype(np.float32))
    yt = torch.from_numpy(d['y_test'].astype(np.int64))
    sizes = [x.shape[1] + 10] + [args.hidden] * args.layers
    net = FFNet([FFLinear(a, b, args.threshold, args.lr) for a, b in zip(sizes[:-1], sizes[1:])],
                device=None)
    nb = len(x) // args.batch
    cursor = [0]

    def step():
        i = cursor[0] % nb
        cursor[0] += 1
        xb, yb = x[i * args.batch:(i + 1) * args.batch], y[i * args.batch:(i + 1) * args.batch]
        x_pos = torch.cat((xb, one_hot(yb, 10).float()), 1)
        rnd = torch.rand((xb.shape[0], 10))  # FFDataProcessor.generate_negative (RANDOM)
        rnd[torch.arange(xb.shape[0]), yb] = 0
        x_neg = torch.cat((xb, one_hot(rnd.argmax(1), 10).float()), 1)
        net.run_train_combined(x_pos, x_neg)

    def evaluate():
        with torch.no_grad():
            good = torch.stack([net(torch.cat((xt, one_hot(torch.full_like(yt, c), 10).float()), 1))
                                for c in range(10)], 1)
        return float((good.argmax(1) == yt).float().mean())

    print(json.dumps({'ready': True, 'torch': torch.__version__, 'fflib': fflib.__version__,
                      'threads': torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == 'run':
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            print(json.dumps({'seconds': time.perf_counter() - t0}), flush=True)
        elif cmd == 'eval':
            print(json.dumps({'test_accuracy': evaluate()}), flush=True)
        elif cmd == 'quit':
            break


if __name__ == '__main__':
    main()
