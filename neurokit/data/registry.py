"""Name -> loader registry and the `load` entry point."""

from typing import Callable, Dict

import jax.numpy as jnp
import numpy as np

from .base import DataError, Dataset
from .cifar import load_cifar10, load_cifar100
from .digits import load_digits
from .idx import load_fashion_mnist, load_mnist
from .mnist1d import load_mnist1d

# Every loader takes (data_dir, dtype) and returns a Dataset.
DATASETS: Dict[str, Callable[..., Dataset]] = {
    "fashion_mnist": load_fashion_mnist,
    "mnist": load_mnist,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "mnist1d": load_mnist1d,
    "digits": load_digits,
}


def load(name: str, data_dir: str = "", dtype=np.float32) -> Dataset:
    """Load a data set by name.

    Args:
        name: one of DATASETS' keys.
        data_dir: folder holding the files; '' means the data set's default.
        dtype: float dtype of the inputs (labels are always int32).

    Returns:
        The Dataset.

    Raises:
        DataError: unknown name, or missing / corrupt files.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}")
    dtype = np.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):  # numpy does not count bfloat16 as floating
        raise DataError(f"{name}: dtype {dtype} is not a float type; pass e.g. numpy.float32")
    ds = DATASETS[name](data_dir, dtype)
    for split, x in (('training', ds.x_train), ('test', ds.x_test)):
        if x.shape[0] == 0:
            where = f' in {data_dir}' if data_dir else ''
            raise DataError(f'{name}: the {split} split{where} holds no examples; point '
                            '--config.data_dir at complete data files')
    return ds
