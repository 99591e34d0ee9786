"""IDX loader: exact round trip on tiny files, and one-line DataErrors."""

import gzip

import numpy as np
import pytest

from neurokit.data import DataError, load
from neurokit.data.idx import read_idx
from idx_files import idx_bytes


def _write(folder, stem, arr, gz):
    name = f"{stem}-ubyte" + (".gz" if gz else "")
    data = idx_bytes(arr)
    (folder / name).write_bytes(gzip.compress(data) if gz else data)
    return folder / name


def _make(folder, gz=True, n_train=3, n_test=2, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1": rng.integers(0, 10, (n_train,), dtype=np.uint8),
        "t10k-images-idx3": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1": rng.integers(0, 10, (n_test,), dtype=np.uint8),
    }
    for stem, arr in arrays.items():
        _write(folder, stem, arr, gz)
    return arrays


def _assert_good_error(err, path):
    msg = str(err)
    assert "\n" not in msg
    assert str(path) in msg
    assert "data_dir" in msg or "apt-get" in msg


# The two data sets share the reader, and each reads gzipped and plain files: two cases
# cover both names and both encodings.
@pytest.mark.parametrize("name, gz", [("mnist", True), ("fashion_mnist", False)])
def test_round_trip(tmp_path, gz, name):
    arrays = _make(tmp_path, gz=gz)
    ds = load(name, str(tmp_path))
    assert ds.name == name and ds.num_classes == 10
    assert ds.x_train.shape == (3, 28, 28, 1) and ds.x_test.shape == (2, 28, 28, 1)
    assert ds.input_shape == (28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    np.testing.assert_array_equal(ds.x_train[..., 0], arrays["train-images-idx3"] / np.float32(255))
    np.testing.assert_array_equal(ds.x_test[..., 0], arrays["t10k-images-idx3"] / np.float32(255))
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1"])
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1"])


def test_dot_spelling_and_dtype(tmp_path):
    arrays = _make(tmp_path, gz=False)
    for p in list(tmp_path.iterdir()):
        p.rename(tmp_path / p.name.replace("-idx", ".idx"))
    ds = load("mnist", str(tmp_path), dtype=np.float64)
    assert ds.x_train.dtype == np.float64
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1"])


def test_missing_dir(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataError) as e:
        load("fashion_mnist", str(missing))
    _assert_good_error(e.value, missing)
    assert "apt-get" in str(e.value)


def test_data_dir_naming_a_file(tmp_path):
    # --config.data_dir pointed at one of the data files instead of their folder
    _make(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with pytest.raises(DataError) as e:
        load("mnist", str(path))
    _assert_good_error(e.value, path)
    assert "is a file, not a folder" in str(e.value) and str(tmp_path) in str(e.value)


def test_missing_file(tmp_path):
    _make(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as e:
        load("mnist", str(tmp_path))
    _assert_good_error(e.value, tmp_path)
    assert "t10k-labels-idx1" in str(e.value)


def test_bad_magic(tmp_path):
    _make(tmp_path, gz=False)
    p = tmp_path / "train-images-idx3-ubyte"
    raw = bytearray(p.read_bytes())
    raw[0] = 7
    p.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="bad magic number 0x07000803") as e:
        load("mnist", str(tmp_path))
    _assert_good_error(e.value, p)


def test_wrong_ndim(tmp_path):
    _make(tmp_path, gz=False)
    # A label file where images are expected: ndim 1, not 3.
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes((tmp_path / "train-labels-idx1-ubyte").read_bytes())
    with pytest.raises(DataError, match="bad magic"):
        load("mnist", str(tmp_path))


def test_truncated(tmp_path):
    _make(tmp_path, gz=True)
    p = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(raw[:-1]))
    with pytest.raises(DataError, match="truncated") as e:
        load("mnist", str(tmp_path))
    _assert_good_error(e.value, p)


def test_count_mismatch(tmp_path):
    _make(tmp_path)
    _write(tmp_path, "train-labels-idx1", np.zeros(4, np.uint8), gz=True)
    with pytest.raises(DataError, match="3 examples but 4 labels") as e:
        load("mnist", str(tmp_path))
    assert "\n" not in str(e.value)


def test_label_out_of_range(tmp_path):
    _make(tmp_path)
    p = _write(tmp_path, "t10k-labels-idx1", np.array([1, 10], np.uint8), gz=True)
    with pytest.raises(DataError, match="outside") as e:
        load("mnist", str(tmp_path))
    _assert_good_error(e.value, p)


def test_wrong_image_size(tmp_path):
    _make(tmp_path)
    _write(tmp_path, "train-images-idx3", np.zeros((3, 27, 28), np.uint8), gz=True)
    with pytest.raises(DataError, match="expected 28x28"):
        load("mnist", str(tmp_path))


def test_corrupt_gzip(tmp_path):
    _make(tmp_path)
    p = tmp_path / "train-images-idx3-ubyte.gz"
    raw = p.read_bytes()
    p.write_bytes(raw[:12] + b"\x00garbage" * 10)
    with pytest.raises(DataError, match="corrupt IDX file") as e:
        load("mnist", str(tmp_path))
    _assert_good_error(e.value, p)


def test_read_idx_direct(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "x-idx3-ubyte"
    p.write_bytes(idx_bytes(arr))
    np.testing.assert_array_equal(read_idx(str(p), 3), arr)


def test_unknown_name():
    with pytest.raises(DataError) as e:
        load("foo")
    msg = str(e.value)
    assert "'foo'" in msg and "\n" not in msg
    for n in ["cifar10", "cifar100", "digits", "fashion_mnist", "mnist", "mnist1d"]:
        assert n in msg
