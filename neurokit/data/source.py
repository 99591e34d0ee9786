"""Training data read by rows, for runs where each process reads only its part of each
batch (`--config.feed=host`).

A `Source` holds the training inputs as they are stored (uint8 pixels for the image
sets) and reads the rows it is asked for: an `ArraySource` over an `np.memmap` of an
uncompressed file touches only those rows' pages. `decode` turns stored values into the
inputs the model sees (`x / divisor` in the data set's float dtype: the same numbers the
in-memory loaders produce), on the device, after the batch has crossed the host link in
its stored (4x smaller) form. `Rows` presents a source as the float array a `Dataset`
holds, reading only what is sliced, so a run that never slices its training rows (the
host feed) reads none of them up front.

The interface is the one Grain's random-access data sources have (a length and
indexing); see docs/design.md for why the feed indexes a source itself rather than
running Grain's loader.
"""
from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np


class ArraySource:
    """Training inputs stored as an array (in memory, or an `np.memmap` read on demand).

    Attributes:
      x: the stored inputs, `(N, *input_shape)`, any dtype (uint8 for images).
      divisor: a stored value `v` is the input `v / divisor` (255 for uint8 pixels, 1 for
        inputs stored as floats).
      dtype: the float dtype of the decoded inputs.
      shift, scale: a decoded input is then `(v / divisor - shift) / scale` (standardised
        inputs, `data.normalize`); 0 and 1 leave it as it is.
    """

    def __init__(self, x, divisor: float = 1, dtype=np.float32, shift: float = 0.0,
                 scale: float = 1.0):
        self.x, self.divisor, self.dtype = x, divisor, np.dtype(dtype)
        self.shift, self.scale = shift, scale

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x.shape[1:])

    @property
    def stored_dtype(self) -> np.dtype:
        """The dtype `read` returns (what crosses the host link)."""
        return np.dtype(self.x.dtype)

    def read(self, rows) -> np.ndarray:
        """The stored values of `rows` (an integer array of any shape), shaped
        `rows.shape + input_shape`."""
        rows = np.asarray(rows)
        _record(rows)
        return np.asarray(self.x[rows.reshape(-1)]).reshape(rows.shape + self.input_shape)

    def decode(self, x):
        """Stored values -> inputs (numpy or jax arrays; under `jit` on the device).

        uint8 values are looked up in a table of the 256 host-computed quotients: XLA
        turns a division by a constant into a multiplication by its reciprocal, which
        rounds differently, and the inputs must be the in-memory loader's bit for bit
        (standardised too: the table holds `affine` of the quotients).
        """
        plain = self.shift == 0 and self.scale == 1
        if self.divisor == 1 and x.dtype == self.dtype and plain:
            return x
        if x.dtype == np.uint8:
            table = np.arange(256, dtype=np.float32).astype(self.dtype) / np.asarray(
                self.divisor, self.dtype)
            if not plain:
                table = affine(table, self.shift, self.scale, self.dtype)
            return table[x] if isinstance(x, np.ndarray) else jnp.asarray(table)[x]
        xp = np if isinstance(x, np.ndarray) else jnp
        x = x.astype(self.dtype) / xp.asarray(self.divisor, self.dtype)
        return x if plain else affine(x, self.shift, self.scale, self.dtype)


def affine(x, mean, std, dtype):
    """`(x - mean) / std` computed in float32 and returned in `dtype` (numpy or jax arrays):
    the one formula of standardised inputs, in memory (`data.normalize`) and decoded."""
    xp = np if isinstance(x, (np.ndarray, np.generic)) else jnp
    x32 = xp.asarray(x).astype(np.float32)
    return ((x32 - np.float32(mean)) / np.float32(std)).astype(dtype)


class Rows:
    """A source as the float array `Dataset.x_train` holds: `shape`, `dtype`, `len` and
    indexing (an int, a slice or an integer array) read and decode only those rows."""

    def __init__(self, source: ArraySource):
        self.source = source
        self.shape = (len(source),) + source.input_shape
        self.dtype = source.dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, tuple):  # x[rows, ...]: the rows first, the rest in numpy
            return self[key[0]][(slice(None),) + key[1:]]
        if isinstance(key, slice):
            rows = np.arange(*key.indices(self.shape[0]))
        else:
            rows = np.asarray(key)
            if rows.dtype == bool:
                rows = np.flatnonzero(rows)
        return self.source.decode(self.source.read(rows))

    def __array__(self, dtype=None, copy=None):
        a = self[:]
        return a if dtype is None else a.astype(dtype)


def source_of(x_train) -> ArraySource:
    """The source behind a `Dataset`'s training inputs: its own where the loader opened
    one (`Rows`), else an in-memory one over the float array."""
    if isinstance(x_train, Rows):
        return x_train.source
    return ArraySource(np.asarray(x_train), 1, np.asarray(x_train).dtype)


def _record(rows) -> None:
    """Test-only: with NEUROKIT_TEST_READS=FOLDER, each process appends the rows it reads
    to FOLDER/reads.<process index> (one line of integers per read)."""
    folder = os.environ.get('NEUROKIT_TEST_READS')
    if folder:
        import jax
        with open(os.path.join(folder, f'reads.{jax.process_index()}'), 'a') as f:
            f.write(' '.join(map(str, np.asarray(rows).reshape(-1).tolist())) + '\n')
