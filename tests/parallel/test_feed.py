"""The host feed (`--config.feed=host`): each process reads only its rows of every batch.

* Through the CLI on MNIST-format files written here (uncompressed, so the images are
  mapped and only the rows indexed are read): one process with the host feed trains bit
  for bit as the device feed (the same batches; the uint8 pixels are decoded on the device
  to the loader's own floats); two processes (CPU, gloo) with the host feed match one
  process to float rounding (the gradient sums cross processes), and, instrumented
  (NEUROKIT_TEST_READS), process p reads exactly its half of every batch the one-process
  run reads, nothing more.
* Compiled on 8 devices (own subprocess: XLA_FLAGS before JAX starts): a step fed with
  batches split over 'data' has only parameter-sized all-reduces, while the device feed
  with the training set split over the processes' devices (how a multi-process run
  holds it) gathers each batch with an all-reduce of the batch's size.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import multihost_check  # tests/parallel/multihost_check.py
from idx_files import write_mnist

EPOCHS, BATCH = 2, 32
FLAGS = ['--config=experiments/configs/bp.py', '--config.dataset=mnist',
         '--config.model.hidden=16,', f'--config.epochs={EPOCHS}',
         f'--config.batch_size={BATCH}', '--config.eval_batch_size=64', '--config.progress=off',
         '--config.tensorboard=False', '--config.steps_per_call=3']


@pytest.fixture
def server(cli):
    """The test process's command server (tests/conftest.py's `cli`)."""
    return cli


def _launch(server, data, workdir, processes=1, feed='host', reads=None, hook=None, extra=()):
    """One run of `processes` processes; `[(returncode, log), ...]`."""
    xla = re.sub(r'--xla_force_host_platform_device_count=\d+', '', os.environ.get('XLA_FLAGS', ''))
    flags = FLAGS + [f'--config.data_dir={data}', f'--config.feed={feed}', f'--workdir={workdir}',
                     *extra]
    if processes > 1:
        flags += ['--config.distributed.enabled=True',
                  f'--config.distributed.num_processes={processes}',
                  f'--config.distributed.coordinator_address=localhost:'
                  f'{multihost_check._free_port()}']
    env = {'XLA_FLAGS': xla, **({'NEUROKIT_TEST_READS': str(reads)} if reads else {}),
           **({'NEUROKIT_TEST_HOOK': hook} if hook else {})}
    jobs = [server.start('experiments.train', flags + (
        [f'--config.distributed.process_id={i}'] if processes > 1 else []), env)
        for i in range(processes)]
    runs = [job.wait(240) for job in jobs]
    return [(r.returncode, r.stdout + r.stderr) for r in runs]


def _reads(folder, process):
    """The rows each call read, in order: one array per call."""
    lines = (folder / f'reads.{process}').read_text().splitlines()
    return [np.array(line.split(), dtype=np.int64) for line in lines]


def _metrics(workdir):
    return [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]


def _checksums(workdir):
    meta = workdir / 'checkpoints' / str(EPOCHS) / 'meta' / 'metadata'
    return json.loads(meta.read_text())['checksums']


def test_two_processes_each_read_half_of_every_batch_and_train_as_one(server, tmp_path):
    data = tmp_path / 'idx'
    write_mnist(str(data), n_train=320, n_test=64)  # 10 steps of 32 per epoch: calls of 3,3,3,1
    runs = {}
    for name, processes, feed in (('device', 1, 'device'), ('one', 1, 'host'),
                                  ('two', 2, 'host')):
        reads = tmp_path / f'reads_{name}'
        reads.mkdir()
        for rc, log in _launch(server, data, tmp_path / name, processes, feed, reads):
            assert rc == 0, log[-3000:]
        runs[name] = reads

    # one process: the host feed is the device feed, bit for bit
    assert _checksums(tmp_path / 'one') == _checksums(tmp_path / 'device')
    assert not (runs['device'] / 'reads.0').exists()  # the device feed slices nothing lazily

    # what was read: the one-process run reads each call's K batches once, whole
    one = _reads(runs['one'], 0)
    assert [len(r) for r in one] == [3 * BATCH, 3 * BATCH, 3 * BATCH, BATCH] * EPOCHS
    for e in range(EPOCHS):
        assert sorted(np.concatenate(one[4 * e:4 * e + 4])) == list(range(320))
    # two processes: process p reads exactly its half of every batch of every call
    halves = [_reads(runs['two'], p) for p in (0, 1)]
    assert len(halves[0]) == len(halves[1]) == len(one)
    for call, whole in enumerate(one):
        batches = whole.reshape(-1, BATCH)
        for p in (0, 1):
            np.testing.assert_array_equal(
                halves[p][call].reshape(-1, BATCH // 2),
                batches[:, p * BATCH // 2:(p + 1) * BATCH // 2])

    # and trains as one process does, to float rounding
    a, b = _metrics(tmp_path / 'one'), _metrics(tmp_path / 'two')
    assert len(a) == len(b) == EPOCHS
    for x, y in zip(a, b):
        for key in ('train_loss', 'train_accuracy', 'test_accuracy'):
            np.testing.assert_allclose(y[key], x[key], rtol=1e-6, err_msg=key)
    summary = json.loads((tmp_path / 'two' / 'summary.json').read_text())
    assert (summary['processes'], summary['devices']) == (2, 2)

    # the data position is the step: killed after a mid-epoch checkpoint, the run resumes
    # reading where it stopped and ends bit for bit as the uninterrupted one
    every = ['--config.checkpoint_every_steps=3']
    (rc, log), = _launch(server, data, tmp_path / 'killed', hook='16:after_mid_checkpoint:kill',
                         extra=every)
    assert rc == -9, log[-3000:]
    (rc, log), = _launch(server, data, tmp_path / 'killed', extra=every)
    assert rc == 0 and 'resuming from step 6 of epoch 2' in log, log[-3000:]
    assert _checksums(tmp_path / 'killed') == _checksums(tmp_path / 'one')


def test_the_host_feed_refuses_what_it_cannot_feed():
    from neurokit.experiment import config as config_lib
    from neurokit.experiment.errors import ConfigError
    for change, words in (({'parallel': 'pmap'}, 'parallel=pmap'),
                          ({'sweep': 'optimizer.learning_rate=0.1,0.01'}, 'a sweep')):
        config = config_lib.base_config()
        config.feed = 'host'
        config.update(change)
        with pytest.raises(ConfigError, match=words) as e:
            config_lib.validate(config)
        assert '\n' not in str(e.value) and '--config.feed=device' in str(e.value)


DRIVER = r'''
import json, re, sys
import jax, numpy as np, optax
from jax.sharding import NamedSharding, PartitionSpec as P
from neurokit import models, rules
from neurokit.parallel import mesh as M
from neurokit.train import loop
from neurokit.train.state import init_state

B, K = 64, 3
model = models.mlp((8, 8, 1), 10, hidden=(24,))
rule, opt = rules.build('bp', model), optax.sgd(0.1)
mesh = M.make_mesh()
rep = M.replicated(mesh)
state = jax.jit(lambda k: init_state(k, model, rule, opt), out_shardings=rep)(jax.random.PRNGKey(0))
param_sizes = sorted({int(np.prod(a.shape)) for a in jax.tree.leaves(state.params)})

def collectives(hlo):
    """(op, element count) of every cross-device collective in the compiled program."""
    out = []
    for m in re.finditer(r'= ((?:\(.*?\))|(?:\w+\[[\d,]*\]\S*)) (all-reduce|all-gather|all-to-all|'
                         r'collective-permute|reduce-scatter)(?:-start)?\(', hlo):
        shapes = re.findall(r'\w+\[([\d,]*)\]', m.group(1))
        for s in shapes:
            out.append((m.group(2), int(np.prod([int(d) for d in s.split(',') if d] or [1]))))
    return out

fed = jax.jit(loop.make_epoch(rule, opt, B, steps=K, batches=True,
                              constrain=M.batch_constraint(mesh)),
              in_shardings=(rep, NamedSharding(mesh, P(None, 'data')),
                            NamedSharding(mesh, P(None, 'data'))))
xb = jax.ShapeDtypeStruct((K, B, 8, 8, 1), np.float32)
yb = jax.ShapeDtypeStruct((K, B), np.int32)
fed_ops = collectives(fed.lower(state, xb, yb).compile().as_text())

N = 512  # the device feed, the training set split over 'data' as a multi-process run holds it
dev = jax.jit(loop.make_epoch(rule, opt, B, constrain=M.batch_constraint(mesh)),
              in_shardings=(rep, M.batch_sharding(mesh), M.batch_sharding(mesh)),
              static_argnums=3)
x = jax.ShapeDtypeStruct((N, 8, 8, 1), np.float32)
y = jax.ShapeDtypeStruct((N,), np.int32)
dev_ops = collectives(dev.lower(state, x, y, 0).compile().as_text())
json.dump({'fed': fed_ops, 'device': dev_ops, 'param_sizes': param_sizes,
           'batch_elements': B * 64}, open(sys.argv[1], 'w'))
'''


def test_a_fed_step_has_only_parameter_sized_collectives(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS=os.environ.get('XLA_FLAGS', '')
               + ' --xla_force_host_platform_device_count=8')
    out = tmp_path / 'ops.json'
    proc = subprocess.run([sys.executable, '-c', DRIVER, str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    largest_param = max(r['param_sizes'])
    assert r['fed'], 'the fed step must all-reduce its gradients'
    assert {op for op, _ in r['fed']} == {'all-reduce'}, r['fed']
    # gradients (fused or not) and scalar metrics; nothing the size of a batch's inputs
    assert max(n for _, n in r['fed']) <= sum(r['param_sizes']) < r['batch_elements'], r
    assert any(n >= largest_param for _, n in r['fed']), r['fed']
    # the device feed on split data moves each batch's inputs between devices
    assert max(n for _, n in r['device']) >= r['batch_elements'], r['device']
