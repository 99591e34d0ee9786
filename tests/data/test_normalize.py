"""Input standardisation (`neurokit.data.normalize`, `config.input_norm='standard'`): the
statistics are those of the rows a run trains on, every split is mapped with them, and a
lazily opened data set decodes to the in-memory path's inputs bit for bit."""
import jax
import numpy as np
import pytest

from idx_files import write_mnist
from neurokit import data
from neurokit.data import normalize
from neurokit.experiment.config import base_config, validate
from neurokit.experiment.errors import ConfigError


def test_the_statistics_are_the_training_rows_mean_and_std():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(9000, 3, 2)).astype(np.float32)  # more rows than one chunk
    x[7000:] = 100.0  # held out: must not enter the statistics
    mean, std = normalize.statistics(x, 7000)
    ref = x[:7000].astype(np.float64)
    np.testing.assert_allclose([mean, std], [ref.mean(), ref.std()], rtol=1e-6)
    with pytest.raises(data.DataError, match='constant'):
        normalize.statistics(np.ones((4, 2), np.float32), 4)


def test_standardize_maps_every_split_with_the_training_statistics():
    ds = data.load('digits')
    n = 1000
    out, (mean, std) = data.standardize(ds, n)
    z = out.x_train[:n].astype(np.float64)
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-5
    # the held-out rows and the test set use the same affine map, not their own statistics
    np.testing.assert_allclose(out.x_train[n:] * std + mean, ds.x_train[n:], atol=1e-5)
    np.testing.assert_allclose(out.x_test * std + mean, ds.x_test, atol=1e-5)
    assert out.x_train.dtype == ds.x_train.dtype and out.x_test.shape == ds.x_test.shape


def test_a_lazy_set_decodes_to_the_standardised_inputs_bit_for_bit(tmp_path):
    write_mnist(str(tmp_path), n_train=50, n_test=10)
    eager, _ = data.standardize(data.load('mnist', str(tmp_path)), 40)
    lazy, _ = data.standardize(data.load('mnist', str(tmp_path), lazy=True), 40)
    assert isinstance(lazy.x_train, data.Rows)
    np.testing.assert_array_equal(lazy.x_train[:], eager.x_train)
    source = lazy.x_train.source  # on the device (the host feed), the same table
    stored = np.asarray(source.x[:8])
    np.testing.assert_array_equal(np.asarray(jax.jit(source.decode)(stored)), eager.x_train[:8])
    np.testing.assert_array_equal(lazy.x_test, eager.x_test)


def test_an_unknown_input_norm_is_one_line():
    config = base_config()
    config.input_norm = 'zscore'
    with pytest.raises(ConfigError, match="unknown input_norm 'zscore'; valid names: none, standard"):
        validate(config)
