"""CIFAR-10 / CIFAR-100 from the official "python version" pickle batches.

Each batch is a dict with b'data' (uint8 rows of 3072 = 3x32x32, channel
major) and b'labels' (CIFAR-10) or b'fine_labels' (CIFAR-100). Rows are
reshaped to (N, 3, 32, 32) and transposed to NHWC, then scaled to [0, 1].
"""

import os
import pickle

import numpy as np

from .base import DataError, Dataset, check_counts, check_folder, check_labels

_ROW = 3 * 32 * 32
_REINSTALL = "re-extract the python-version archive or set --config.data_dir to a folder holding intact batches"

# name -> (default folder, batch files for train, for test, label key, classes, archive folder)
_SPECS = {
    "cifar10": (
        "/usr/share/datasets/cifar10",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        b"labels",
        10,
        "cifar-10-batches-py",
    ),
    "cifar100": (
        "/usr/share/datasets/cifar100",
        ["train"],
        ["test"],
        b"fine_labels",
        100,
        "cifar-100-python",
    ),
}


def _resolve(folder: str, sub: str) -> str:
    """Accept both the folder holding the batches and its parent."""
    nested = os.path.join(folder, sub)
    return nested if os.path.isdir(nested) else folder


def _read_batch(name: str, path: str, key: bytes, num_classes: int) -> tuple:
    """Read one pickled batch; returns (uint8 rows (N, 3072), int32 labels)."""
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        raw = np.asarray(d[b"data"])
        labels = np.asarray(d[key])
    except KeyError as e:
        raise DataError(f"{name}: batch {path} lacks key {e}; {_REINSTALL}") from None
    except Exception as e:  # pickle raises many types on bad input
        raise DataError(f"{name}: cannot unpickle batch {path} ({type(e).__name__}); {_REINSTALL}") from None
    # The files hold bytes; anything else (floats in [0, 1], values past 255) would be
    # silently wrapped or zeroed by a cast, so it is refused.
    if raw.dtype.kind not in "iu" or (raw.size and (raw.min() < 0 or raw.max() > 255)):
        what = (f"dtype {raw.dtype}" if raw.dtype.kind not in "iu"
                else f"values {int(raw.min())}..{int(raw.max())}")
        raise DataError(
            f"{name}: batch {path} holds pixels that are not bytes 0..255 ({what}); {_REINSTALL}"
        )
    data = raw.astype(np.uint8)
    if data.ndim != 2 or data.shape[1] != _ROW:
        raise DataError(
            f"{name}: batch {path} has rows of shape {data.shape[1:]}, expected ({_ROW},); {_REINSTALL}"
        )
    check_counts(name, data.shape[0], labels.shape[0], path, _REINSTALL)
    return data, check_labels(name, labels, num_classes, path, _REINSTALL)


def _split(name, folder, files, key, num_classes, fix, dtype) -> tuple:
    """Concatenate batches and convert rows to NHWC floats in [0, 1]."""
    xs, ys = [], []
    for fname in files:
        path = os.path.join(folder, fname)
        if not os.path.isfile(path):
            raise DataError(f"{name}: batch file {fname} not found in {folder}; {fix}")
        x, y = _read_batch(name, path, key, num_classes)
        xs.append(x)
        ys.append(y)
    x = np.concatenate(xs).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    x = np.ascontiguousarray(x.astype(dtype) / np.asarray(255, dtype))
    return x, np.concatenate(ys)


def load_cifar(name: str, data_dir: str = "", dtype=np.float32) -> Dataset:
    """Load CIFAR-10 or CIFAR-100 from python pickle batches.

    Args:
        name: 'cifar10' or 'cifar100'.
        data_dir: folder holding the batches (or the extracted archive folder's
            parent); '' means /usr/share/datasets/<name>.
        dtype: float dtype of the inputs.

    Returns:
        Dataset with x of shape (N, 32, 32, 3) in [0, 1].
    """
    default, train, test, key, ncls, sub = _SPECS[name]
    folder = _resolve(os.path.expanduser(data_dir or default), sub)
    fix = (
        f"download the CIFAR python version, extract its {sub} folder and set "
        f"--config.data_dir to it"
    )
    check_folder(name, folder, fix)
    x_tr, y_tr = _split(name, folder, train, key, ncls, fix, dtype)
    x_te, y_te = _split(name, folder, test, key, ncls, fix, dtype)
    return Dataset(name, x_tr, y_tr, x_te, y_te, ncls)


def load_cifar10(data_dir: str = "", dtype=np.float32) -> Dataset:
    """Load CIFAR-10 (see `load_cifar`)."""
    return load_cifar("cifar10", data_dir, dtype)


def load_cifar100(data_dir: str = "", dtype=np.float32) -> Dataset:
    """Load CIFAR-100 with its 100 fine labels (see `load_cifar`)."""
    return load_cifar("cifar100", data_dir, dtype)
