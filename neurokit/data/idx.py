"""IDX reader for MNIST and Fashion-MNIST (gzipped or raw files).

The IDX header is: two zero bytes, a dtype code (0x08 = ubyte, the only one the
MNIST-family sets use), the number of dimensions, then one big-endian uint32
per dimension. The payload is read in one `np.frombuffer` call, so 60k images
load in milliseconds.
"""

import gzip
import math
import os
import struct
import zlib

import numpy as np

from .base import DataError, Dataset, check_counts, check_folder, check_labels
from .source import ArraySource, Rows

_UBYTE = 0x08

# Default folders and the fix to suggest when files are missing there.
_DEFAULTS = {
    "fashion_mnist": (
        "/usr/share/datasets/fashion-mnist",
        "install it with 'apt-get install -y dataset-fashion-mnist' or set "
        "--config.data_dir to a folder holding the IDX files",
    ),
    "mnist": (
        "/usr/share/datasets/mnist",
        "place the four IDX files from the MNIST distribution there and set "
        "--config.data_dir to that folder",
    ),
}
_REINSTALL = "re-install the data set or set --config.data_dir to a folder holding intact IDX files"


def _candidates(stem: str, ext: str) -> list:
    """File names under which an IDX file may be shipped, most common first."""
    names = [f"{stem}-{ext}-ubyte", f"{stem}.{ext}-ubyte"]
    return [n + ".gz" for n in names] + names


def find_idx(name: str, folder: str, stem: str, ext: str, fix: str) -> str:
    """Locate e.g. train-images-idx3-ubyte(.gz) in folder, or raise DataError.

    Args:
        name: data set name for messages.
        folder: directory to search.
        stem: 'train-images', 'train-labels', 't10k-images' or 't10k-labels'.
        ext: 'idx3' or 'idx1'.
        fix: how to obtain the files, appended to the message.

    Returns:
        Path to the first matching file.
    """
    check_folder(name, folder, fix)
    for cand in _candidates(stem, ext):
        path = os.path.join(folder, cand)
        if os.path.isfile(path):
            return path
    raise DataError(f"{name}: file {stem}-{ext}-ubyte(.gz) not found in {folder}; {fix}")


def read_idx(path: str, ndim: int, name: str = "idx", mmap: bool = False) -> np.ndarray:
    """Read one ubyte IDX file.

    Args:
        path: file path; a '.gz' suffix or gzip magic selects decompression.
        ndim: expected number of dimensions (3 for images, 1 for labels).
        name: data set name for messages.
        mmap: an uncompressed file is mapped (`np.memmap`), not read: only the rows
            indexed later are read from disk. A gzipped file is decompressed either way.

    Returns:
        uint8 array with the header-declared shape.
    """
    bad = f"{name}: corrupt IDX file {path}"
    try:
        with open(path, "rb") as f:
            raw = f.read(2)
            # Sniff the gzip magic rather than trust the suffix: some mirrors
            # ship gzipped files without '.gz' and vice versa.
            gzipped = raw == b"\x1f\x8b"
            mapped = mmap and not gzipped
            raw += f.read(4 + 4 * ndim - 2) if mapped else f.read()
        if gzipped:
            raw = gzip.decompress(raw)
        file_size = os.path.getsize(path)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{bad}: cannot read or decompress ({e}); {_REINSTALL}") from None
    if len(raw) < 4:
        raise DataError(f"{bad}: only {len(raw)} bytes, shorter than the header; {_REINSTALL}")
    z0, z1, code, nd = raw[0], raw[1], raw[2], raw[3]
    if z0 != 0 or z1 != 0 or code != _UBYTE or nd != ndim:
        magic = struct.unpack(">I", raw[:4])[0]
        raise DataError(
            f"{bad}: bad magic number 0x{magic:08x} (expected 0x0000{_UBYTE:02x}{ndim:02x}); {_REINSTALL}"
        )
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DataError(f"{bad}: truncated header; {_REINSTALL}")
    shape = struct.unpack(f">{ndim}I", raw[4:head])
    size = math.prod(shape)  # Python ints: a forged header cannot overflow the check
    held = (file_size if mapped else len(raw)) - head
    if held < size:
        raise DataError(
            f"{bad}: truncated, header declares {size} bytes of data but file holds {held}; {_REINSTALL}"
        )
    if mapped:
        return np.memmap(path, dtype=np.uint8, mode="r", offset=head, shape=tuple(shape))
    return np.frombuffer(raw, dtype=np.uint8, count=size, offset=head).reshape(shape)


def _split(name: str, folder: str, stem: str, fix: str, dtype, lazy: bool = False) -> tuple:
    """Read and validate one images/labels pair; returns (x NHWC in [0,1], y int32).
    `lazy`: x is a `source.Rows` over the uint8 images (mapped where uncompressed)."""
    ipath = find_idx(name, folder, f"{stem}-images", "idx3", fix)
    lpath = find_idx(name, folder, f"{stem}-labels", "idx1", fix)
    x = read_idx(ipath, 3, name, mmap=lazy)
    y = read_idx(lpath, 1, name)
    if x.shape[1:] != (28, 28):
        raise DataError(
            f"{name}: images in {ipath} are {x.shape[1]}x{x.shape[2]}, expected 28x28; {_REINSTALL}"
        )
    check_counts(name, x.shape[0], y.shape[0], f"{ipath} / {lpath}", _REINSTALL)
    y = check_labels(name, y, 10, lpath, _REINSTALL)
    if lazy:
        return Rows(ArraySource(x.reshape(x.shape + (1,)), 255, dtype)), y
    x = (x.astype(dtype) / np.asarray(255, dtype))[..., None]
    return x, y


def load_idx_dataset(name: str, data_dir: str = "", dtype=np.float32,
                     lazy: bool = False) -> Dataset:
    """Load an MNIST-family data set stored as four IDX files.

    Args:
        name: 'mnist' or 'fashion_mnist' (picks the default folder and hint).
        data_dir: folder with the files; '' means the default folder.
        dtype: float dtype of the inputs.
        lazy: the training images as a `source.Rows` over their uint8 values (mapped, not
            read, where the file is uncompressed): rows are read when sliced.

    Returns:
        Dataset with x of shape (N, 28, 28, 1) in [0, 1] and 10 classes.
    """
    default, fix = _DEFAULTS[name]
    folder = os.path.expanduser(data_dir or default)
    x_tr, y_tr = _split(name, folder, "train", fix, dtype, lazy)
    x_te, y_te = _split(name, folder, "t10k", fix, dtype)
    return Dataset(name, x_tr, y_tr, x_te, y_te, 10)


def load_mnist(data_dir: str = "", dtype=np.float32, lazy: bool = False) -> Dataset:
    """Load MNIST from IDX files (see `load_idx_dataset`)."""
    return load_idx_dataset("mnist", data_dir, dtype, lazy)


def load_fashion_mnist(data_dir: str = "", dtype=np.float32, lazy: bool = False) -> Dataset:
    """Load Fashion-MNIST from IDX files (see `load_idx_dataset`)."""
    return load_idx_dataset("fashion_mnist", data_dir, dtype, lazy)
