"""XLA:GPU temporary memory of a train step, compiled for a GPU on a machine without one.

  python -m venv --system-site-packages /tmp/vcuda
  /tmp/vcuda/bin/pip install "jax-cuda12-plugin[with-cuda]==$(python -c 'import jax; print(jax.__version__)')"
  /tmp/vcuda/bin/python -m experiments.benchmarks.gpu_aot           # ~15 s on 2 cores
  /tmp/vcuda/bin/python -m experiments.benchmarks.gpu_aot --quick   # tiny sizes (/tmp)

The CUDA plugin (about 4.6 GB with its CUDA wheels) stays in its own virtual
environment, so the project's own environment and tests never see it.

`jax.experimental.topologies` gives a compile-only client for the GPU described
by `h200_target_config.txtpb` (a GpuTargetConfigProto with an H200's published
facts: compute capability 9.0, 132 SMs); the jitted train step (state
donated, as the training loop runs it) is compiled for it and its
`memory_analysis().temp_size_in_bytes` recorded: the buffers the GPU program
needs besides its arguments and outputs. On the H200 lent in session 5 that
number equalled the device's measured step peak (`gpu.py`: bp 72.0 / mf 72.3 MiB
at batch 1024, 276.2 / 60.8 MiB at 4096; this script gives the same four
numbers), so it stands in for the device between GPU sessions. The acceptance
figure of issue #5 is still the device's peak (`gpu.py --peak_only`).

Rows: bp; mf with `rule.step` + one Adam update after the pass; mf with
`layerwise_updates=True` (each block's Adam step inside the pass). MLP with 16
hidden layers of `--width`, float32, each batch of `--batches`.

Second table: the step of gpu.py's speed network (MLP 784-(4096 x 8)-10,
bfloat16, batch 1024) compiled the same way, with its temp memory and its
kernels counted by kind from the optimized program (each top-level instruction
of the entry computation that launches work: a gemm, a fusion, a copy). Kernel
counts are exact facts of the compiled program; what they cost in time only the
device can say (gpu_profile.py), so this table explains and does not replace it.
Writes experiments/benchmarks/results/gpu_aot.{json,md}.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault('JAX_PLATFORMS', 'cpu')  # compile-only GPU client; no device needed

import jax  # noqa: E402
from absl import app, flags  # noqa: E402

from experiments.benchmarks import common  # noqa: E402

_QUICK = flags.DEFINE_bool('quick', False, 'Tiny sizes: checks the script, not the numbers.')
_WIDTH = flags.DEFINE_integer('width', 1024, 'Width of the 16 hidden layers.')
_BATCHES = flags.DEFINE_list('batches', ['128', '256', '1024', '4096'], 'Batch sizes.')
_TARGET = flags.DEFINE_string('target_config', os.path.join(os.path.dirname(__file__),
                                                            'h200_target_config.txtpb'),
                              'GpuTargetConfigProto (text) of the GPU to compile for.')

NAME = 'gpu_aot'
DEPTH = 16
VARIANTS = (('bp', False), ('mf', False), ('mf', True))  # (rule, layerwise)


def gpu_sharding(target_config: str):
    """A one-device sharding on a compile-only GPU client built from `target_config`."""
    from jax.experimental import topologies
    try:
        topo = topologies.get_topology_desc(platform='cuda', target_config=target_config,
                                            topology='1x1x1')
    except Exception as e:  # noqa: BLE001 - the plugin's errors have no common type
        sys.exit(f'gpu_aot.py: no compile-only CUDA client ({type(e).__name__}: '
                 f'{str(e).splitlines()[0] if str(e) else ""}); install the plugin in a venv '
                 '(see this module\'s docstring) and run with that venv\'s python')
    mesh = topologies.make_mesh(topo=topo, mesh_shape=(1,), axis_names=('x',))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())


SPEED_NET = ((4096,) * 8, 'bfloat16', 1024)  # gpu.py's 'large' network: hidden, dtype, batch


def compiled_step(sharding, rule_name, layerwise, hidden, dtype, batch):
    """The donated train step (Adam) compiled for the target GPU."""
    return common.lowered_train_step(rule_name, hidden, dtype, batch, layerwise, donate=True,
                                     sharding=sharding).compile()


def temp_bytes(sharding, rule_name, layerwise, width, batch):
    """Temp bytes of the donated train step of the 16-layer float32 MLP."""
    return compiled_step(sharding, rule_name, layerwise, (width,) * DEPTH, 'float32',
                         batch).memory_analysis().temp_size_in_bytes


def markdown(res):
    lines = ['## GPU program memory without a GPU (XLA:GPU memory analysis, deviceless compile)', '',
             f"- Command: `{res['command']}`", f"- Machine: {res['machine']}", f"- Date: {res['date']}",
             f"- Versions: jax {res['jax']}, python {res['python']}",
             f"- Target: {res['target']} (`{os.path.basename(res['target_config'])}`), "
             f"compile-only client of jax-cuda12-plugin {res.get('plugin', '?')}"
             + (f"; the same numbers with {res['same_numbers_with']}" if res.get('same_numbers_with') else ''),
             '',
             f'Temporary buffers of one train step (Adam, state donated), MLP with {DEPTH} hidden '
             f"layers of {res['width']}, float32: what the GPU program allocates besides its "
             'arguments and outputs. The H200 run of session 5 measured the device peak of these '
             'steps equal to this number (gpu.py). "mf" applies Adam after the pass (`rule.step`); '
             '"mf layerwise" applies each block\'s Adam step inside the pass '
             '(`config.layerwise_updates=True`, the mf config\'s default). Both rules need at least '
             f"one layer's weight gradient ({res['width'] ** 2 * 4 / 2**20:.0f} MiB) besides the "
             'activations, so as the batch shrinks and activations stop dominating, the ratio rises '
             'towards 1 (BP applies each update right after its gradient in its backward pass).', '',
             '| rule | batch | temp MiB | / bp |', '|---|---|---|---|']
    for r in res['rows']:
        lines.append(f"| {r['rule']}{' layerwise' if r['layerwise'] else ''} | {r['batch_size']} | "
                     f"{r['temp_bytes'] / 2**20:.1f} | {r['ratio_to_bp']:.2f} |")
    speed = res.get('speed_net')
    if speed:
        hidden, dtype, batch = speed['hidden'], speed['dtype'], speed['batch_size']
        kinds = ('gemm', 'loop', 'reduce', 'triton', 'copy', 'other')
        lines += ['', f"gpu.py's speed network (MLP 784-({hidden[0]} x {len(hidden)})-10, {dtype}, "
                  f'batch {batch}), same compile: temp memory and the kernels of one step by kind '
                  "('reduce' includes scatters; 'triton' other custom fusions such as a softmax). "
                  'Its step time is measured on the device by gpu.py, and per kernel by '
                  'gpu_profile.py.', '',
                  '| rule | temp MiB | / bp | kernels | ' + ' | '.join(kinds) + ' |',
                  '|---|---|---|---|' + '---|' * len(kinds)]
        for r in speed['rows']:
            k = r['kernels']
            lines.append(f"| {r['rule']}{' layerwise' if r['layerwise'] else ''} | "
                         f"{r['temp_bytes'] / 2**20:.1f} | {r['ratio_to_bp']:.2f} | {k['total']} | "
                         + ' | '.join(str(k.get(x, 0)) for x in kinds) + ' |')
    return '\n'.join(lines) + '\n'


def main(argv):
    del argv
    quick = _QUICK.value
    with open(_TARGET.value) as f:
        target_config = f.read()
    sharding = gpu_sharding(target_config)
    width = 64 if quick else _WIDTH.value
    batches = [32] if quick else [int(b) for b in _BATCHES.value]
    rows = []
    for batch in batches:
        base = None
        for rule_name, layerwise in VARIANTS:
            b = temp_bytes(sharding, rule_name, layerwise, width, batch)
            base = b if rule_name == 'bp' else base
            rows.append({'rule': rule_name, 'layerwise': layerwise, 'batch_size': batch,
                         'width': width, 'hidden_layers': DEPTH, 'temp_bytes': b,
                         'ratio_to_bp': b / base})
            print(rows[-1], flush=True)
    hidden, dtype, batch = ((64,) * 2, 'bfloat16', 32) if quick else SPEED_NET
    speed_rows, base = [], None
    for rule_name, layerwise in VARIANTS:
        c = compiled_step(sharding, rule_name, layerwise, hidden, dtype, batch)
        b = c.memory_analysis().temp_size_in_bytes
        base = b if rule_name == 'bp' else base
        speed_rows.append({'rule': rule_name, 'layerwise': layerwise, 'temp_bytes': b,
                           'ratio_to_bp': b / base, 'kernels': common.kernel_counts(c.as_text())})
        print(speed_rows[-1], flush=True)
    try:
        from importlib.metadata import version
        plugin = version('jax-cuda12-plugin')
    except Exception:  # noqa: BLE001
        plugin = '?'
    device = sharding.mesh.devices.flat[0]
    facts = common.run_facts(NAME, quick)
    # the interpreter is part of the command: only the venv with the CUDA plugin can run it
    facts['command'] = facts['command'].replace('python', sys.executable, 1)
    res = {**facts, 'target': device.device_kind,
           'target_config': _TARGET.value, 'plugin': plugin, 'width': width, 'rows': rows,
           'speed_net': {'hidden': list(hidden), 'dtype': dtype, 'batch_size': batch,
                         'rows': speed_rows}}
    common.write(NAME, res, markdown(res), quick)


if __name__ == '__main__':
    app.run(main)
