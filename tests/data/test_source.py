"""Training inputs read by rows (`neurokit.data.source`): a lazily opened data set slices
to the in-memory loader's values bit for bit, on the host and decoded on the device, and
an uncompressed file is mapped, not read."""
import gzip
import os
import shutil

import jax
import numpy as np

from idx_files import write_mnist
from neurokit import data
from neurokit.data.source import ArraySource


def test_lazy_rows_equal_the_loaded_arrays(tmp_path):
    write_mnist(str(tmp_path), n_train=50, n_test=10)
    eager, lazy = data.load('mnist', str(tmp_path)), data.load('mnist', str(tmp_path), lazy=True)
    assert isinstance(lazy.x_train, data.Rows) and isinstance(lazy.x_train.source.x, np.memmap)
    assert lazy.x_train.shape == eager.x_train.shape and lazy.x_train.dtype == np.float32
    for key in (slice(None, 7), slice(-5, None), [9, 2, 49], 3, np.arange(50) % 2 == 0):
        np.testing.assert_array_equal(lazy.x_train[key], eager.x_train[key])
    np.testing.assert_array_equal(np.asarray(lazy.x_train), eager.x_train)
    np.testing.assert_array_equal(lazy.x_test, eager.x_test)  # the test set loads as usual
    # a gzipped file cannot be mapped: it is decompressed to its uint8 values
    for name in os.listdir(tmp_path):
        with open(tmp_path / name, 'rb') as f, gzip.open(tmp_path / f'{name}.gz', 'wb') as g:
            shutil.copyfileobj(f, g)
        os.remove(tmp_path / name)
    zipped = data.load('mnist', str(tmp_path), lazy=True).x_train
    assert zipped.source.x.dtype == np.uint8 and not isinstance(zipped.source.x, np.memmap)
    np.testing.assert_array_equal(zipped[:], eager.x_train)


def test_decoding_on_the_device_gives_the_host_values():
    # XLA rewrites x / 255 as x * (1/255), which rounds 126 of the 256 values differently;
    # the source's table keeps the loader's quotients
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    source = ArraySource(pixels, 255)
    host = pixels.astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(source.decode(pixels), host)
    np.testing.assert_array_equal(np.asarray(jax.jit(source.decode)(pixels)), host)
    floats = ArraySource(host)  # inputs stored as floats pass through
    assert floats.decode(host) is host


def test_source_of_an_in_memory_set_reads_its_rows():
    ds = data.load('digits')
    source = data.source_of(ds.x_train)
    rows = np.array([[4, 1], [0, 7]])
    np.testing.assert_array_equal(source.decode(source.read(rows)), ds.x_train[rows])
