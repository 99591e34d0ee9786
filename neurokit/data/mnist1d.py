"""MNIST-1D generated locally by the `mnist1d` package (never downloaded).

`make_dataset(get_dataset_args())` with the package defaults (seed 42, 5000
samples, 80/20 split) gives 4000 train / 1000 test signals of length 40,
returned as (N, 40, 1): a 1-D signal with one channel. The generator already
centres the whole set; we additionally standardise with the *train* mean and
std (scalars over all positions) so models see unit-scale inputs without test
statistics leaking into training. Values are otherwise kept as generated.

Generation takes a few seconds, so the raw arrays are cached in-process.
"""

import functools
import random

import numpy as np

from .base import DataError, Dataset, check_labels

_SEED = 42  # the package's default seed, i.e. the published MNIST-1D split
_FIX = "reinstall it with 'pip install mnist1d'"


@functools.lru_cache(maxsize=1)
def _generate() -> tuple:
    """Generate the raw arrays once; restores global RNG state afterwards."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:
        raise DataError(f"mnist1d: cannot import the mnist1d package ({e}); {_FIX}") from None
    args = get_dataset_args()
    args.seed = _SEED
    # make_dataset reseeds the global `random` and `np.random` generators; keep
    # the caller's streams untouched.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (d["x"], d["y"], d["x_test"], d["y_test"])
    for a in arrays:
        a.setflags(write=False)  # cached: callers must not mutate it
    return arrays


def load_mnist1d(data_dir: str = "", dtype=np.float32) -> Dataset:
    """Generate MNIST-1D (4000 train / 1000 test, length 40, 10 classes).

    Args:
        data_dir: must be '' (the data are generated, not read).
        dtype: float dtype of the inputs.

    Returns:
        Dataset with x of shape (N, 40, 1), standardised with train statistics.
    """
    if data_dir:
        raise DataError(f'mnist1d: --config.data_dir={data_dir!r} is not used (it is generated '
                        'by the mnist1d package); drop the flag')
    x_tr, y_tr, x_te, y_te = _generate()
    mean, std = x_tr.mean(), x_tr.std()
    x_tr = ((x_tr - mean) / std).astype(dtype)[..., None]
    x_te = ((x_te - mean) / std).astype(dtype)[..., None]
    y_tr = check_labels("mnist1d", y_tr, 10, "the generated data", _FIX)
    y_te = check_labels("mnist1d", y_te, 10, "the generated data", _FIX)
    return Dataset("mnist1d", x_tr, y_tr, x_te, y_te, 10)
