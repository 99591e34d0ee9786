"""Misuse of the parallel API that needs no second device fails with one line naming the
argument, its value and the fix (from an API audit). The 8-device cases (a pmap state of
too few replicas, `load_shard` on 8 devices) run in test_parallel_devices.py's subprocess."""
import jax
import optax
import pytest

from neurokit import models, rules
from neurokit.parallel import distributed, make_mesh
from neurokit.parallel.pipeline import LayerPipeline


@pytest.mark.parametrize('kwargs, error, match', [
    # the docstring gives only None a meaning ("all devices left after stage"): -1 is not
    # "all devices" as in some APIs
    ({'data': -1}, ValueError, r'data must be a positive integer or None .*got -1'),
    ({'data': 2.0}, TypeError, r'data must be a positive integer or None .*got 2\.0 \(float\)'),
    ({'stage': 0}, ValueError, r'stage must be a positive integer .*got 0'),
])
def test_make_mesh_refuses_an_axis_size_below_one(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_mesh(**kwargs)


def test_make_mesh_still_takes_its_documented_sizes():
    n = jax.device_count()
    assert make_mesh().devices.shape == (n, 1)
    assert make_mesh(data=1, stage=1).devices.shape == (1, 1)


@pytest.fixture(scope='module')
def chain_setup():
    model = models.mlp((8, 8, 1), 10, hidden=(16,))
    return model, [((0, 1), rules.bp), ((1, 2), rules.bp)], optax.sgd(0.1)


@pytest.mark.parametrize('batch_size, microbatches, error, match', [
    (64, 0, ValueError, 'microbatches must be a positive integer, got 0'),
    (64, 2.0, TypeError, r'microbatches must be a positive integer, got 2\.0'),
    (0, 4, ValueError, 'batch_size must be a positive integer, got 0'),
    (64, 3, ValueError, 'batch_size=64 must divide by microbatches=3'),
])
def test_layer_pipeline_refuses_bad_counts(chain_setup, batch_size, microbatches, error, match):
    model, parts, opt = chain_setup
    with pytest.raises(error, match=match):
        LayerPipeline(model, parts, opt, batch_size, microbatches)


@pytest.mark.parametrize('args, error, match', [
    ((10, 3, 3), ValueError, r'process_index must be in \[0, process_count=3\), got 3'),
    ((10, 0, 0), ValueError, 'process_count must be >= 1, got 0'),
    ((2, 0, 3), ValueError, 'num_examples=2 leaves the 3 processes no examples'),
    ((10.0, 0, 2), TypeError, r'num_examples must be an integer, got 10\.0'),
])
def test_process_slice_refuses_out_of_range_arguments(args, error, match):
    with pytest.raises(error, match=match):
        distributed.process_slice(*args)


def test_process_slice_gives_equal_contiguous_shards():
    # 10 examples over 3 processes: 3 each, the remainder (1) dropped
    assert [distributed.process_slice(10, i, 3) for i in range(3)] == [
        slice(0, 3), slice(3, 6), slice(6, 9)]
