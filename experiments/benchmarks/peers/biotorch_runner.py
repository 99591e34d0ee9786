"""BioTorch's training steps on an MLP, timed: run inside the BioTorch venv.

  .venvs/biotorch/bin/python experiments/benchmarks/peers/biotorch_runner.py '{"data": ..., \
      "hidden": [256, ...], "batch": 128, "steps": 3, "repeats": 2, "modes": ["bp", "fa"], "threads": 2}'

Same MLP, batch, Adam (lr 1e-3) and data as neurokit's side in
`experiments.benchmarks.measure.biotorch`; every mode ('bp' is plain torch) is
warmed up once, then the modes are timed round-robin. Prints one JSON line:
samples/s (median) per mode. Standalone: never imports neurokit or jax.
"""
import json, statistics, sys, time, warnings
warnings.filterwarnings('ignore')
import numpy as np, torch, torch.nn as nn
from biotorch.module.biomodule import BioModule
args = json.loads(sys.argv[1])
torch.set_num_threads(args['threads'])
torch.manual_seed(0)
d = np.load(args['data'])
x = torch.from_numpy(d['x']).reshape(-1, 784)
y = torch.from_numpy(d['y']).long()
bs, steps = args['batch'], args['steps']

def net():
    layers, n = [], 784
    for h in args['hidden']:
        layers += [nn.Linear(n, h), nn.ReLU()]
        n = h
    return nn.Sequential(*layers, nn.Linear(n, 10))

loss_fn = nn.CrossEntropyLoss()
def make(mode):
    m = net() if mode == 'bp' else BioModule(net(), mode=mode, output_dim=10)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-3)
    def run():
        for i in range(steps):
            xb, yb = x[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs]
            opt.zero_grad()
            out = m(xb, targets=yb, loss_function=loss_fn) if mode == 'dfa' else m(xb)
            loss_fn(out, yb).backward()
            opt.step()
    run()  # warm-up
    return run

runs = {mode: make(mode) for mode in args['modes']}
times = {mode: [] for mode in runs}
for _ in range(args['repeats']):
    for mode, run in runs.items():
        t0 = time.perf_counter(); run(); times[mode].append(time.perf_counter() - t0)
print(json.dumps({m: bs * steps / statistics.median(t) for m, t in times.items()}))
