"""Checkpoints written in the background (`--config.async_checkpoints=True`).

The state saved is the one handed to `save`, though training goes on (and donates its
buffers) while the files are written; the checksums travel with it; a stop waits for the
write before the process exits, so the resumed run ends bit for bit as an uninterrupted
synchronous one; a background write that fails is one WorkdirError line.
"""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from idx_files import write_mnist
from neurokit.experiment import epochs
from neurokit.experiment.checkpoint import Checkpointer
from neurokit.experiment.errors import WorkdirError


def test_a_background_save_holds_the_state_it_was_given(tmp_path):
    state = {'w': jnp.arange(12.0).reshape(3, 4), 'step': jnp.int32(7)}
    ckpt = Checkpointer(str(tmp_path), keep=2, asynchronous=True)
    ckpt.save(1, state, {'note': 'first'})
    changed = jax.tree.map(lambda a: a + 1, state)  # training goes on meanwhile
    ckpt.save(2, changed, {})  # waits for the first write, then starts its own
    ckpt.wait()
    assert ckpt.epochs() == [1, 2]
    for epoch, expected in ((1, state), (2, changed)):
        restored, meta = ckpt.restore(epoch, like=state)  # checksums verified
        for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(expected)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert meta['epoch'] == 2
    ckpt.close()


class _FailingWrites(Checkpointer):
    """A checkpointer whose background writes fail (a disk that filled up meanwhile)."""

    def wait(self):
        raise OSError(28, 'No space left on device')


def test_a_failed_background_write_is_one_line_naming_it(tmp_path):
    from ml_collections import ConfigDict
    config = ConfigDict({'epochs': 3, 'checkpoint_every': 1, 'checkpoint_every_steps': 0,
                         'tensorboard': False, 'progress': 'off', 'sweep': '', 'num_seeds': 1})
    ckpt = _FailingWrites(str(tmp_path), asynchronous=True)
    state = {'step': jnp.int32(0)}

    def one_epoch(epoch, state, *_):
        return {'step': state['step'] + 4}, {'epoch': epoch + 1, 'test_accuracy': 0.5}, 0.1

    start = epochs.Resumed(0, state, 0.0, [])
    with pytest.raises(WorkdirError) as e:
        epochs.train_epochs(config, str(tmp_path), ckpt, start, one_epoch, steps=4)
    message = str(e.value)
    # the first save's write failed; the second save found out before starting its own
    assert '\n' not in message and 'the checkpoint of epoch 1' in message, message
    assert 'No space left on device' in message and 'no checkpoint was saved' in message


def test_a_stopped_async_run_resumes_bit_exactly(tmp_path, cli):
    data = str(tmp_path / 'idx')
    write_mnist(data, n_train=256, n_test=64)  # 8 steps of 32 per epoch, calls of 2
    flags = ['--config=experiments/configs/bp.py', '--config.dataset=mnist',
             f'--config.data_dir={data}', '--config.model.hidden=16,', '--config.epochs=3',
             '--config.batch_size=32', '--config.progress=off', '--config.tensorboard=False',
             '--config.steps_per_call=2', '--config.checkpoint_every_steps=4']

    def checksums(workdir):
        meta = workdir / 'checkpoints' / '3' / 'meta' / 'metadata'
        return json.loads(meta.read_text())['checksums']

    ref, run = tmp_path / 'ref', tmp_path / 'run'
    assert cli.run('experiments.train', flags + [f'--workdir={ref}']).returncode == 0
    flags += ['--config.async_checkpoints=True', f'--workdir={run}']
    stopped = cli.run('experiments.train', flags, {'NEUROKIT_TEST_HOOK': '14:after_call:term'})
    assert stopped.returncode == 3, stopped.stderr[-3000:]
    # the stop's checkpoint was complete before the process exited
    assert os.listdir(run / 'checkpoints' / 'partial') == ['14']
    resumed = cli.run('experiments.train', flags)
    assert resumed.returncode == 0 and 'resuming from step 6 of epoch 2' in resumed.stderr
    assert checksums(run) == checksums(ref)
