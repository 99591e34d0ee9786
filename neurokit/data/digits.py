"""scikit-learn's bundled 8x8 handwritten digits (1797 images, no download).

Split deterministically with a seed-0 permutation: first 1437 for training,
last 360 for test (80/20). Pixels are scaled from [0, 16] to [0, 1] and shaped
NHWC (N, 8, 8, 1).
"""

import numpy as np

from .base import DataError, Dataset

_SEED = 0
_N_TRAIN = 1437


def load_digits(data_dir: str = "", dtype=np.float32) -> Dataset:
    """Load the scikit-learn digits with a fixed 1437/360 split.

    Args:
        data_dir: must be '' (the data ship with scikit-learn).
        dtype: float dtype of the inputs.

    Returns:
        Dataset with x of shape (N, 8, 8, 1) in [0, 1] and 10 classes.
    """
    if data_dir:
        raise DataError(f'digits: --config.data_dir={data_dir!r} is not used (it ships inside '
                        'scikit-learn); drop the flag')
    from sklearn.datasets import load_digits as _sk_load  # heavy import: defer

    d = _sk_load()
    x = (d.images.astype(dtype) / np.asarray(16, dtype))[..., None]
    y = d.target.astype(np.int32)
    perm = np.random.default_rng(_SEED).permutation(len(y))
    tr, te = perm[:_N_TRAIN], perm[_N_TRAIN:]
    return Dataset("digits", x[tr], y[tr], x[te], y[te], 10)
