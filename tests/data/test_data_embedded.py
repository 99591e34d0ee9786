"""Data sets that need no files (digits, MNIST-1D) and the real Fashion-MNIST."""

import os

import numpy as np
import pytest

from neurokit.data import DATASETS, DataError, load

_FASHION = "/usr/share/datasets/fashion-mnist"


def test_registry_keys():
    assert set(DATASETS) == {"fashion_mnist", "mnist", "cifar10", "cifar100", "mnist1d", "digits"}


def test_digits():
    a, b = load("digits"), load("digits")
    assert a.x_train.shape == (1437, 8, 8, 1) and a.x_test.shape == (360, 8, 8, 1)
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int32
    assert a.num_classes == 10 and set(a.y_train.tolist()) == set(range(10))
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0 and a.x_train.max() == 1.0
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_mnist1d_is_the_same_each_generation_and_leaves_global_rngs_alone():
    from neurokit.data.mnist1d import _generate

    # Two real generations (the arrays are cached in-process): the data set is seeded, and
    # the generator it wraps reseeds numpy's global RNG, which the loader restores.
    runs = []
    for _ in range(2):
        _generate.cache_clear()
        np.random.seed(123)
        runs.append(load("mnist1d"))
        assert np.random.rand() == np.random.RandomState(123).rand()
    a, b = runs
    assert a.x_train.shape == (4000, 40, 1) and a.x_test.shape == (1000, 40, 1)
    assert a.input_shape == (40, 1) and a.num_classes == 10
    assert a.y_train.dtype == np.int32 and a.x_train.dtype == np.float32
    assert set(a.y_train.tolist()) == set(range(10))
    assert abs(float(a.x_train.mean())) < 1e-4 and abs(float(a.x_train.std()) - 1) < 1e-3
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype, match", [
    ("flaot32", r"dtype='flaot32' is not a dtype; pass a float dtype such as 'float32'"),
    (None, r"dtype=None is not a dtype; pass a float dtype"),  # numpy reads None as float64
    ("int32", r"dtype='int32' \(int32\) is not a float type; pass a float dtype"),
])
def test_load_refuses_a_dtype_that_is_not_a_float_dtype(dtype, match):
    # The module promises DataError for every failure (a typo raised numpy's TypeError).
    with pytest.raises(DataError, match=match):
        load("digits", dtype=dtype)


def test_load_takes_a_float_dtype_or_its_name():
    assert load("digits", dtype="bfloat16").x_train.dtype.name == "bfloat16"
    assert load("digits", dtype=np.float16).x_train.dtype == np.float16


@pytest.mark.skipif(not os.path.isdir(_FASHION), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_real():
    ds = load("fashion_mnist")
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.y_train.min() == 0 and ds.y_train.max() == 9
    assert set(ds.y_test.tolist()) == set(range(10))
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
