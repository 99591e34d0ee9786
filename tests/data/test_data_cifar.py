"""CIFAR loaders on tiny pickles written by the test."""

import pickle

import numpy as np
import pytest

from neurokit.data import DataError, load

_TRAIN10 = [f"data_batch_{i}" for i in range(1, 6)]


def _dump(path, data, labels, key):
    with open(path, "wb") as f:
        pickle.dump({b"data": data, key: labels, b"batch_label": b"x"}, f)


def _make10(folder, rows=2, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for name in _TRAIN10 + ["test_batch"]:
        data = rng.integers(0, 256, (rows, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, rows)]  # real files hold lists
        _dump(folder / name, data, labels, b"labels")
        out[name] = (data, labels)
    return out


def _make100(folder, rows=2, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for name in ["train", "test"]:
        data = rng.integers(0, 256, (rows, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 100, rows)]
        _dump(folder / name, data, labels, b"fine_labels")
        out[name] = (data, labels)
    return out


def _check_pixel_layout(x, data):
    # Flat index c*1024 + i*32 + j must land at x[n, i, j, c].
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = rng.integers(len(data))
        c, i, j = rng.integers(3), rng.integers(32), rng.integers(32)
        assert x[n, i, j, c] == np.float32(data[n, c * 1024 + i * 32 + j]) / np.float32(255)
    full = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1) / np.float32(255)
    np.testing.assert_array_equal(x, full)


def test_cifar10_round_trip(tmp_path):
    src = _make10(tmp_path)
    ds = load("cifar10", str(tmp_path))
    assert ds.num_classes == 10 and ds.input_shape == (32, 32, 3)
    assert ds.x_train.shape == (10, 32, 32, 3) and ds.x_test.shape == (2, 32, 32, 3)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    _check_pixel_layout(ds.x_train, np.concatenate([src[n][0] for n in _TRAIN10]))
    _check_pixel_layout(ds.x_test, src["test_batch"][0])
    np.testing.assert_array_equal(ds.y_train, sum((src[n][1] for n in _TRAIN10), []))
    np.testing.assert_array_equal(ds.y_test, src["test_batch"][1])


def test_cifar10_nested_folder(tmp_path):
    sub = tmp_path / "cifar-10-batches-py"
    sub.mkdir()
    _make10(sub)
    assert load("cifar10", str(tmp_path)).x_train.shape[0] == 10


def test_cifar100_round_trip(tmp_path):
    src = _make100(tmp_path)
    ds = load("cifar100", str(tmp_path))
    assert ds.num_classes == 100
    _check_pixel_layout(ds.x_train, src["train"][0])
    _check_pixel_layout(ds.x_test, src["test"][0])
    np.testing.assert_array_equal(ds.y_train, src["train"][1])
    np.testing.assert_array_equal(ds.y_test, src["test"][1])


def _assert_one_line(err, path):
    msg = str(err)
    assert "\n" not in msg and str(path) in msg and "data_dir" in msg


def test_missing_dir(tmp_path):
    with pytest.raises(DataError) as e:
        load("cifar100", str(tmp_path / "nope"))
    _assert_one_line(e.value, tmp_path / "nope")


def test_missing_batch(tmp_path):
    _make10(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3") as e:
        load("cifar10", str(tmp_path))
    _assert_one_line(e.value, tmp_path)


def test_unreadable_pickle(tmp_path):
    _make10(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="unpickle") as e:
        load("cifar10", str(tmp_path))
    _assert_one_line(e.value, tmp_path / "test_batch")


@pytest.mark.parametrize("name, batch, rows, labels, key, words", [
    # A CIFAR-10 style batch (b'labels') where CIFAR-100 needs b'fine_labels'.
    ("cifar100", "train", np.zeros((2, 3072), np.uint8), [0, 1], b"labels", "fine_labels"),
    ("cifar10", "data_batch_1", np.zeros((2, 3000), np.uint8), [0, 1], b"labels", "3072"),
    ("cifar10", "test_batch", np.zeros((2, 3072), np.uint8), [0, 10], b"labels", "outside"),
    ("cifar10", "test_batch", np.zeros((2, 3072), np.uint8), [0, 1, 2], b"labels",
     "2 examples but 3 labels"),
], ids=["missing_key", "wrong_row_length", "label_out_of_range", "count_mismatch"])
def test_a_bad_batch_is_one_line_naming_it(tmp_path, name, batch, rows, labels, key, words):
    (_make10 if name == "cifar10" else _make100)(tmp_path)
    _dump(tmp_path / batch, rows, labels, key)
    with pytest.raises(DataError, match=words) as e:
        load(name, str(tmp_path))
    _assert_one_line(e.value, tmp_path / batch)


@pytest.mark.parametrize("data, words", [
    (np.full((2, 3072), 0.5, np.float32), "dtype float32"),   # floats in [0, 1]: a cast zeroes them
    (np.full((2, 3072), 300, np.int32), "300..300"),          # past a byte: a cast wraps them
])
def test_pixels_that_are_not_bytes_are_refused(tmp_path, data, words):
    _make10(tmp_path)
    _dump(tmp_path / "data_batch_2", data, [0, 1], b"labels")
    with pytest.raises(DataError, match="not bytes 0..255") as e:
        load("cifar10", str(tmp_path))
    assert words in str(e.value)
    _assert_one_line(e.value, tmp_path / "data_batch_2")


def test_fractional_labels_are_refused(tmp_path):
    _make10(tmp_path)
    _dump(tmp_path / "test_batch", np.zeros((2, 3072), np.uint8), [1.7, 3.2], b"labels")
    with pytest.raises(DataError, match="not whole numbers"):
        load("cifar10", str(tmp_path))


def test_integral_float_labels_are_read(tmp_path):
    _make10(tmp_path)
    _dump(tmp_path / "test_batch", np.zeros((2, 3072), np.uint8), np.array([1.0, 3.0]), b"labels")
    assert load("cifar10", str(tmp_path)).y_test.tolist() == [1, 3]
