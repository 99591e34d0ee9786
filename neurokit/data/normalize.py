"""Input standardisation with the statistics of a run's training examples.

`standardize(dataset, num_train)` maps every input `x` (training, validation and test) to
`(x - mean) / std`, where `mean` and `std` are one scalar each: the mean and standard
deviation of every input value of the first `num_train` training examples (the rows a
run trains on; a validation hold-out and the test set never enter them). This is
torchvision's `Normalize((mean,), (std,))` with a data set's own statistics, the
preprocessing of many papers' MLP recipes (e.g. Counter-Current Learning's F-MNIST MLP:
mean 0.2860, std 0.3530 over the 60,000 training images).

A data set opened lazily (`load(..., lazy=True)`: `x_train` is a `source.Rows`) stays
lazy: its source decodes stored values straight to the standardised inputs, the same
numbers as the in-memory path bit for bit. The statistics read the training rows once.
"""
from __future__ import annotations

import numpy as np

from .base import DataError, Dataset
from .source import ArraySource, Rows, affine

NORMS = ('none', 'standard')  # config.input_norm
_CHUNK = 4096  # rows per read while summing


def statistics(x, num_train: int) -> tuple:
    """`(mean, std)` of every value of `x[:num_train]`, float32 scalars, summed in float64
    over chunks of rows (the same chunks and the same numbers for `x` in memory and for
    `x` a lazy `Rows` over the stored values)."""
    if num_train < 1:
        raise DataError(f'input statistics need at least one training example, got '
                        f'{num_train}; train on at least one')
    total = squares = 0.0
    for start in range(0, num_train, _CHUNK):
        stop = min(start + _CHUNK, num_train)
        if isinstance(x, Rows):  # decode without `read`: the statistics are not a batch
            part = x.source.decode(np.asarray(x.source.x[start:stop]))
        else:
            part = np.asarray(x[start:stop])
        part = part.astype(np.float64)
        total += float(np.sum(part))
        squares += float(np.sum(part * part))
    count = num_train * int(np.prod(x.shape[1:]))
    mean = total / count
    std = float(np.sqrt(max(squares / count - mean * mean, 0.0)))
    if not std > 0:
        raise DataError('the training inputs are constant (std 0): input_norm=\'standard\' '
                        'would divide by zero; use input_norm=\'none\'')
    return np.float32(mean), np.float32(std)


def standardize(dataset: Dataset, num_train: int) -> tuple:
    """`(dataset with standardised inputs, (mean, std))`; see the module docstring.

    Raises:
      DataError: no training example, or constant training inputs.
    """
    mean, std = statistics(dataset.x_train, num_train)
    x_train = dataset.x_train
    if isinstance(x_train, Rows):
        s = x_train.source
        x_train = Rows(ArraySource(s.x, s.divisor, s.dtype, shift=mean, scale=std))
    else:
        x_train = affine(x_train, mean, std, x_train.dtype)
    x_test = affine(dataset.x_test, mean, std, dataset.x_test.dtype)
    return dataset._replace(x_train=x_train, x_test=x_test), (mean, std)
