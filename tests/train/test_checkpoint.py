"""Checkpoints, config matching, metrics truncation and the NaN guard (in-process, fast)."""
import json
import os
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurokit import models
from neurokit.experiment.config import base_config
from neurokit.experiment.errors import TrainingError, WorkdirError
from neurokit.rules import registry
from neurokit.experiment import run
from neurokit.experiment import workdir as wd
from neurokit.experiment.checkpoint import Checkpointer, checksums
from neurokit.experiment.metrics import EventWriter, Progress, scalars
from neurokit.train.state import init_state
from idx_files import write_mnist


def write_idx(folder):
    write_mnist(folder, n_train=256, n_test=64)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('idx'))
    write_idx(folder)
    return folder


def tiny_config(data_dir, **overrides):
    c = base_config()
    c.dataset, c.data_dir = 'fashion_mnist', data_dir
    c.model.hidden = (8,)
    c.epochs, c.batch_size, c.eval_batch_size = 4, 64, 64
    c.tensorboard = False
    c.update_from_flattened_dict(overrides)
    return c


def _state(members=2):
    m = models.build('mlp', (8, 8, 1), 10, hidden=(4,))
    rule = registry.build('bp', m)
    keys = jnp.stack([jax.random.PRNGKey(i) for i in range(members)])
    return jax.jit(jax.vmap(lambda k: init_state(k, m, rule, optax.adam(1e-3))))(keys)


def test_checkpointer_round_trips_state_and_keeps_last_k(tmp_path):
    state = _state()
    ckpt = Checkpointer(str(tmp_path), keep=2)
    for epoch in (1, 2, 3):
        ckpt.save(epoch, state, {'train_seconds': float(epoch)})
    assert ckpt.epochs() == [2, 3]
    epoch, restored, meta = ckpt.restore_latest(like=state)
    ckpt.close()
    assert epoch == 3 and {k: meta[k] for k in ('epoch', 'train_seconds')} == {
        'epoch': 3, 'train_seconds': 3.0}
    assert set(meta) == {'epoch', 'train_seconds', 'checksums'}
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def _flip_bit(x, index, bit):
    raw = np.array(x).reshape(-1).view(np.uint32).copy()
    raw[index] ^= np.uint32(1 << bit)
    return raw.view(np.asarray(x).dtype).reshape(np.shape(x))


def test_checksums_see_one_flipped_bit_and_two_swapped_words():
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    base = checksums({'x': x})
    assert checksums({'x': jnp.asarray(x)}) == base  # host or device, the same bits
    for index, bit in ((0, 0), (5, 17), (11, 31)):
        assert checksums({'x': _flip_bit(x, index, bit)}) != base
    swapped = x.reshape(-1).copy()
    swapped[[2, 7]] = swapped[[7, 2]]
    plain, weighted = checksums({'x': swapped.reshape(3, 4)})['[\'x\']']
    assert plain == base['[\'x\']'][0] and weighted != base['[\'x\']'][1]


def test_restore_refuses_a_state_that_does_not_match_its_checksums(tmp_path):
    # Orbax reads back a flipped bit in a data file without complaint; the checksums
    # stored in the meta item are what catches it. Here the stored sums are those of
    # a state one bit away from the saved one.
    state = _state(1)
    ckpt = Checkpointer(str(tmp_path), keep=3)
    ckpt.save(1, state, {})
    leaves, treedef = jax.tree.flatten(state)
    flipped = jax.tree.unflatten(treedef, [_flip_bit(leaves[0], 0, 3)] + leaves[1:])
    ckpt.save(2, state, {})
    ckpt.close()
    meta_files = [os.path.join(r, f) for r, _, fs in os.walk(tmp_path / 'checkpoints' / '2' / 'meta')
                  for f in fs if 'metadata' in f]
    assert meta_files
    for path in meta_files:
        meta = json.load(open(path))
        meta['checksums'] = checksums(flipped)
        json.dump(meta, open(path, 'w'))
    # A library caller is told about restore(1); a run's folder (the CLI) about resuming.
    ckpt = Checkpointer(str(tmp_path), keep=3)
    with pytest.raises(WorkdirError, match=r'checkpoints/2 is damaged.*restore\(1\) reads the '
                                           r'epoch before it') as e:
        ckpt.restore(2, like=state)
    assert '--workdir' not in str(e.value) and 'resume' not in str(e.value)
    _, meta = ckpt.restore(1, like=state)  # the older one is fine, as the message says
    ckpt.close()
    assert meta['epoch'] == 1
    run = Checkpointer(str(tmp_path), keep=3, run=True)
    with pytest.raises(WorkdirError, match=r'checkpoints/2 is damaged.*resume from epoch 1.*'
                                           r'--workdir'):
        run.restore(2, like=state)
    run.close()


def test_unfinished_save_is_ignored(tmp_path):
    """A folder left by a kill mid-save (no commit) is not taken as the latest checkpoint."""
    state = _state(1)
    ckpt = Checkpointer(str(tmp_path), keep=3)
    ckpt.save(1, state, {})
    ckpt.close()
    os.makedirs(tmp_path / 'checkpoints' / '2.orbax-checkpoint-tmp-123' / 'state')
    ckpt = Checkpointer(str(tmp_path), keep=3)
    assert ckpt.latest() == 1
    ckpt.close()


def _plain_state(hidden=(4,), dtype='float32'):
    m = models.build('mlp', (8, 8, 1), 10, hidden=hidden, dtype=dtype)
    return init_state(jax.random.PRNGKey(0), m, registry.build('bp', m), optax.adam(1e-3))


def test_restore_names_a_dtype_or_shape_that_differs_from_like(tmp_path):
    """A float32 checkpoint restored into a bfloat16 (or wider) `like` is not damaged:
    the error names the leaf, both dtypes/shapes, and that the checkpoint is fine."""
    state = _plain_state()
    ckpt = Checkpointer(str(tmp_path), keep=3)
    ckpt.save(1, state, {})
    with pytest.raises(WorkdirError) as e:
        ckpt.restore(1, like=_plain_state(dtype='bfloat16'))
    msg = str(e.value)
    assert re.search(r"\.params\['layers'\]\[0\]\['b'\] is float32\[4\] there, "
                     r"bfloat16\[4\] in like", msg), msg
    assert 'checkpoint itself is fine' in msg and 'damaged' not in msg and '\n' not in msg
    assert '--workdir' not in msg and 'config.json' not in msg  # a library caller's words
    with pytest.raises(WorkdirError, match=r"is float32\[4\] there, float32\[6\] in like"):
        ckpt.restore(1, like=_plain_state(hidden=(6,)))
    restored, _ = ckpt.restore(1, like=state)  # the checkpoint itself is fine
    ckpt.close()
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def _listing(tmp_path):
    return sorted(os.listdir(tmp_path / 'checkpoints'))


BAD_EPOCHS = [
    (-1, ValueError, 'epoch must be an integer >= 0, got -1'),
    (2.5, TypeError, r'epoch must be an integer >= 0, got 2\.5 \(float\)'),
    ('5', TypeError, r"epoch must be an integer >= 0, got '5' \(str\)"),
    (True, TypeError, r'epoch must be an integer >= 0, got True \(bool\)'),
]


def test_save_refuses_an_epoch_that_is_not_an_integer_from_0(tmp_path):
    # save(-1) with keep=2 evicted a real checkpoint; 2.5 or '5' broke epochs()
    state = _state(1)
    ckpt = Checkpointer(str(tmp_path), keep=2)
    ckpt.save(1, state, {})
    ckpt.save(2, state, {})
    before = _listing(tmp_path)
    for epoch, error, match in BAD_EPOCHS:
        with pytest.raises(error, match=match):
            ckpt.save(epoch, state, {})
        assert ckpt.epochs() == [1, 2] and _listing(tmp_path) == before, epoch
    ckpt.save(np.int64(3), state, {})  # a numpy integer is an integer
    assert ckpt.epochs() == [2, 3]
    ckpt.close()


BAD_META = [
    ({'loss': jnp.float32(0.5)}, TypeError, r"meta\['loss'\] is not JSON-serialisable"),
    ({'loss': np.float32(0.5)}, TypeError, r"meta\['loss'\] is not JSON-serialisable"),
    ({'epoch': 7}, ValueError, "meta key 'epoch' is reserved"),
    ({'checksums': {}}, ValueError, "meta key 'checksums' is reserved"),
    ({1: 2.0}, TypeError, 'meta key 1 is a int'),
    (None, TypeError, 'meta must be a dict, got NoneType'),
]


def test_save_checks_meta_before_writing_anything(tmp_path):
    # A jnp.float32 value made orbax fail halfway, leave a temporary folder and make
    # the retry fail with "Directory not empty"; 'epoch' overrode the epoch.
    state = _state(1)
    ckpt = Checkpointer(str(tmp_path), keep=3)
    ckpt.save(1, state, {})
    before = _listing(tmp_path)
    for meta, error, match in BAD_META:
        with pytest.raises(error, match=match):
            ckpt.save(2, state, meta)
        assert _listing(tmp_path) == before, meta
    ckpt.save(2, state, {'loss': 0.5})  # the retry with a plain float
    _, meta = ckpt.restore(2, like=state)
    ckpt.close()
    assert meta['epoch'] == 2 and meta['loss'] == 0.5


def _contents(folder):
    """`{relative path: bytes}` of every file under `folder`."""
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            path = os.path.join(root, f)
            out[os.path.relpath(path, folder)] = open(path, 'rb').read()
    return out


def _equal_trees(a, b):
    return all(x.dtype == y.dtype and np.array_equal(x, y)
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_save_refuses_an_epoch_already_saved_and_leaves_it_byte_identical(tmp_path):
    # orbax raised its StepAlreadyExistsError; replacing the checkpoint in place could
    # lose it to a crash mid-save, so the caller chooses (a later epoch, or delete it).
    first, second = _plain_state(), _plain_state()._replace(step=jnp.int32(7))
    ckpt = Checkpointer(str(tmp_path), keep=3)
    ckpt.save(2, first, {'train_seconds': 1.0})
    before, listing = _contents(tmp_path / 'checkpoints'), _listing(tmp_path)
    folder = os.path.join(ckpt.directory, '2')
    with pytest.raises(ValueError) as e:
        ckpt.save(2, second, {'train_seconds': 2.0})
    msg = str(e.value)
    # a WorkdirError too: the run path's `writing` passes it on with its own fix
    assert isinstance(e.value, WorkdirError)
    assert f'epoch 2 already has a checkpoint ({folder})' in msg and '\n' not in msg, msg
    assert 'save under an epoch after 2' in msg and f'delete {folder} first' in msg, msg
    assert _contents(tmp_path / 'checkpoints') == before and _listing(tmp_path) == listing
    restored, meta = ckpt.restore(2, like=first)
    assert _equal_trees(restored, first) and meta['train_seconds'] == 1.0
    ckpt.close()


def test_save_refuses_an_epoch_before_the_newest(tmp_path):
    # orbax wrote it: a resume would still read the newest, and keep= evicts the smallest
    state = _plain_state()
    ckpt = Checkpointer(str(tmp_path), keep=3)
    ckpt.save(2, state, {})
    ckpt.save(3, state, {})
    before, listing = _contents(tmp_path / 'checkpoints'), _listing(tmp_path)
    newer = [re.escape(os.path.join(ckpt.directory, e)) for e in ('2', '3')]
    for epoch, match in ((1, f'epoch 1 is before the newest checkpoint, epoch 3 .*delete '
                             f'{newer[0]}, {newer[1]} first to go back to epoch 1'),
                         (2, f'epoch 2 already has a checkpoint .*delete {newer[0]}, '
                             f'{newer[1]} first to replace it')):
        with pytest.raises(ValueError, match=match):
            ckpt.save(epoch, state, {})
        assert ckpt.epochs() == [2, 3] and _listing(tmp_path) == listing
        assert _contents(tmp_path / 'checkpoints') == before
    ckpt.close()
    reader = Checkpointer(str(tmp_path), create=False)
    assert reader.epochs() == [2, 3]
    reader.close()


def test_save_after_deleting_the_named_folder_replaces_the_checkpoint(tmp_path):
    # the message's advice works in the same Checkpointer (it reads the folder again)
    first, second = _plain_state(), _plain_state()._replace(step=jnp.int32(5))
    ckpt = Checkpointer(str(tmp_path), keep=3)
    ckpt.save(1, first, {})
    ckpt.save(2, first, {})
    with pytest.raises(ValueError, match='already has a checkpoint'):
        ckpt.save(2, second, {})
    shutil.rmtree(os.path.join(ckpt.directory, '2'))
    ckpt.save(2, second, {})
    assert ckpt.epochs() == [1, 2]
    restored, _ = ckpt.restore(2, like=second)
    ckpt.close()
    assert int(restored.step) == 5 and _equal_trees(restored, second)


def test_config_diff_ignores_bookkeeping_keys():
    a = wd.config_json(base_config())
    b = base_config()
    b.eval_batch_size, b.progress, b.checkpoint_every, b.keep_checkpoints = 7, 'off', 5, 9
    assert wd.config_diff(a, wd.config_json(b)) == []
    b.optimizer.learning_rate, b.model.hidden = 0.5, (3,)
    assert [k for k, _, _ in wd.config_diff(a, wd.config_json(b))] == [
        'model.hidden', 'optimizer.learning_rate']


def test_config_diff_compares_sweeps_by_their_members():
    """The same members in the same order resume; another order is another checkpoint layout."""
    def diff(spec_a, spec_b):
        a, b = base_config(), base_config()
        a.sweep, b.sweep = spec_a, spec_b
        return [k for k, _, _ in wd.config_diff(wd.config_json(a), wd.config_json(b))]
    assert diff('optimizer.learning_rate=0.001, 0.003', 'optimizer.learning_rate=1e-3,3e-3') == []
    assert diff('optimizer.learning_rate=0.001,0.003', 'optimizer.learning_rate=0.003,0.001') == [
        'sweep']
    assert diff('optimizer.learning_rate=0.001', 'optimizer.learning_rate=0.002') == ['sweep']
    assert diff('optimizer.learning_rate=0.001;optimizer.momentum=0.5,0.9',
                'optimizer.momentum=0.5,0.9;optimizer.learning_rate=0.001') == ['sweep']
    assert diff('', 'optimizer.learning_rate=0.001') == ['sweep']


def test_a_config_json_written_before_a_key_was_added_resumes_under_its_old_behaviour():
    # validation_examples=0 is what a run did before the key existed; another value is not
    old = wd.config_json(base_config())
    del old['validation_examples']
    assert wd.config_diff(old, wd.config_json(base_config())) == []
    held = base_config()
    held.validation_examples = 100
    assert wd.config_diff(old, wd.config_json(held)) == [('validation_examples', 0, 100)]
    # a rule hyperparameter left at its default is that default (configs list only changes)
    spelled = base_config()
    spelled.rule_kwargs = {**spelled.rule_kwargs.to_dict(), **registry.defaults(spelled.rule)}
    assert wd.config_diff(old, wd.config_json(spelled)) == []
    other = base_config()
    other.rule_kwargs = {k: f'not {v}' for k, v in registry.defaults(other.rule).items()}
    assert [k for k, _, _ in wd.config_diff(old, wd.config_json(other))] == [
        f'rule_kwargs.{k}' for k in sorted(registry.defaults(other.rule))]


def test_truncate_metrics_drops_later_and_torn_lines(tmp_path):
    path = str(tmp_path / 'metrics.jsonl')
    with open(path, 'w') as f:
        f.write(''.join(json.dumps({'epoch': e, 'x': e / 3}) + '\n' for e in (1, 2, 3)))
        f.write('{"epoch": 4, "x"')  # torn by a kill mid-write
    kept = wd.truncate_metrics(path, 2)
    assert [r['epoch'] for r in kept] == [1, 2]
    assert [json.loads(l)['epoch'] for l in open(path)] == [1, 2]


def test_different_config_is_refused_naming_keys(tmp_path, data_dir):
    workdir = str(tmp_path / 'run')
    run(tiny_config(data_dir, epochs=1, tensorboard=True), workdir)
    assert any(n.startswith('events.out.tfevents') for n in os.listdir(os.path.join(workdir, 'tb')))
    before = {n: open(os.path.join(workdir, n), 'rb').read() for n in ('config.json',
                                                                         'metrics.jsonl')}
    with pytest.raises(WorkdirError, match=r'optimizer\.learning_rate.*epochs|epochs.*optimizer'):
        run(tiny_config(data_dir, epochs=2, **{'optimizer.learning_rate': 0.5}), workdir)
    assert before == {n: open(os.path.join(workdir, n), 'rb').read() for n in before}
    # Keys that do not change the numbers may differ: the finished run is reported as such.
    again = run(tiny_config(data_dir, epochs=1, eval_batch_size=32, progress='off',
                            tensorboard=False), workdir)
    assert again['already_finished']


def test_nan_stops_with_step_and_layer_and_keeps_last_checkpoint(tmp_path, data_dir,
                                                                 monkeypatch):
    monkeypatch.setenv('NEUROKIT_TEST_POISON_EPOCH', '3')
    workdir = str(tmp_path / 'nan')
    with pytest.raises(TrainingError) as e:
        run(tiny_config(data_dir), workdir)
    msg = str(e.value)
    steps = 256 // 64
    # NaN inputs poison the first step of epoch 3: global step 2*steps + 1.
    assert f'at step {2 * steps + 1} (epoch 3, batch 1 of {steps})' in msg, msg
    assert 'loss' in msg and 'layer dense_0' in msg and 'epoch 2' in msg, msg
    assert '\n' not in msg
    records = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
    assert [r['epoch'] for r in records] == [1, 2]
    ckpt = Checkpointer(workdir, create=False)
    epoch, state, _ = ckpt.restore_latest()
    ckpt.close()
    assert epoch == 2
    assert all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree.leaves(state))


def test_diverging_sgd_names_step_and_layer(tmp_path, data_dir):
    """sgd with learning rate 1e6 blows up within a few steps (leaky_relu keeps units alive)."""
    cfg = tiny_config(data_dir, **{'optimizer.name': 'sgd', 'optimizer.learning_rate': 1e6,
                                   'optimizer.momentum': 0.0, 'model.activation': 'leaky_relu'})
    workdir = str(tmp_path / 'diverge')
    with pytest.raises(TrainingError) as e:
        run(cfg, workdir)
    msg = str(e.value)
    assert re.search(r'non-finite .*layer dense_\d.* at step \d+ \(epoch \d+, batch \d+ of 4\)',
                     msg), msg
    saved = re.search(r'last good checkpoint \(epoch (\d+)\)', msg)
    ckpt = Checkpointer(workdir, create=False)
    latest = ckpt.restore_latest()
    ckpt.close()
    if saved:  # the checkpoint named in the message loads, with finite parameters
        epoch, state, _ = latest
        assert epoch == int(saved.group(1))
        assert all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree.leaves(state))
    else:
        assert latest is None and 'no checkpoint was saved' in msg


def test_nan_policy_skip_counts_and_skips_bad_steps(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv('NEUROKIT_TEST_POISON_EPOCH', '2')
    workdir = str(tmp_path / 'skip')
    summary = run(tiny_config(data_dir, epochs=3, nan_policy='skip', num_seeds=2), workdir)
    records = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
    assert [r['train_skipped_steps'] for r in records] == [[0, 0], [4, 4], [0, 0]]
    assert all(np.isfinite(summary['test_accuracy']))
    ckpt = Checkpointer(workdir, create=False)
    epoch, state, _ = ckpt.restore_latest()
    ckpt.close()
    assert int(np.asarray(state['step'])[0]) == 3 * 4  # skipped steps still advance the data


def test_event_scalars_and_progress_line(tmp_path):
    assert scalars({'a': 1.0, 'b': [1.0, 3.0]}) == {'a': 1.0, 'b/0': 1.0, 'b/1': 3.0,
                                                    'b/mean': 2.0}
    assert scalars({'b': [1.0, float('nan'), 3.0]})['b/mean'] == 2.0
    p = Progress(10, 'on', start_epoch=0)
    line = p.line({'epoch': 2, 'train_loss': [0.5, 0.7], 'test_accuracy': 0.9,
                   'epoch_seconds': 1.5})
    assert line.startswith('epoch 2/10') and 'loss 0.6000' in line and 'ETA' in line
    # a member whose every step was skipped (nan_policy=skip) reports NaN: the others' mean
    line = p.line({'epoch': 2, 'train_loss': [0.5, float('nan'), 0.7], 'test_accuracy': 0.9})
    assert 'loss 0.6000' in line, line
    # 'auto' off a terminal (a log file) prints plain lines, never an in-place bar
    logged = Progress(10, 'auto', stream=open(os.devnull, 'w'))
    assert logged.enabled and not logged.in_place
    with EventWriter(str(tmp_path), enabled=False) as w:
        w.write({'epoch': 1, 'x': 1.0})
    assert not os.path.exists(tmp_path / 'tb')


def test_event_writer_leaves_a_gap_for_nan(tmp_path):
    # a member whose every step of an epoch was skipped reports NaN; TensorBoard gets no
    # point for it (tensorboardX would log a warning per value), the other members do
    added = []
    with EventWriter(str(tmp_path), enabled=True) as w:
        w._writer.add_scalar = lambda tag, value, step: added.append((tag, value, step))
        w.write({'epoch': 3, 'train_loss': [0.5, float('nan')]})
    assert added == [('train_loss/0', 0.5, 3), ('train_loss/mean', 0.5, 3)]


# A sweep's resume from its last checkpoint (the whole vmapped state, metrics lines after it
# dropped, a torn line included) is tested through the real CLI, with a SIGTERM and a SIGKILL
# mid-save, by tests/train/test_resume.py::test_a_sweep_preempted_then_killed_mid_save_resumes_
# bit_exactly; the torn-line truncation itself by test_truncate_metrics_drops_later_and_torn_lines.


def test_a_sweep_stopped_by_a_non_finite_loss_keeps_what_it_recorded(tmp_path, data_dir,
                                                                      monkeypatch):
    monkeypatch.setenv('NEUROKIT_TEST_POISON_EPOCH', '2')  # NaN inputs in epoch 2
    workdir = str(tmp_path / 'sweep')
    config = tiny_config(data_dir, epochs=3, sweep='optimizer.learning_rate=0.001,0.01')
    with pytest.raises(TrainingError, match=r'non-finite loss .*\(epoch 2, .*sweep member 0 '
                       r'\(optimizer.learning_rate=0.001, seed=0\) \(also non-finite in epoch 2: '
                       r'members \[1\]\).*checkpoint \(epoch 1\) is intact'):
        run(config, workdir)
    assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['1']
    assert [json.loads(l)['epoch'] for l in open(os.path.join(workdir, 'metrics.jsonl'))] == [1]
    assert not os.path.exists(os.path.join(workdir, 'summary.json'))
