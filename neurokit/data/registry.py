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

# the loaders that can open their training inputs lazily (`load(..., lazy=True)`)
LAZY = ("fashion_mnist", "mnist")


def load(name: str, data_dir: str = "", dtype=np.float32, lazy: bool = False) -> Dataset:
    """Load a data set by name.

    Args:
        name: one of DATASETS' keys.
        data_dir: folder holding the files; '' means the data set's default.
        dtype: float dtype of the inputs, a dtype or its name ('float32',
            'bfloat16', ...); labels are always int32.
        lazy: where the training inputs are stored as files of uint8 pixels (MNIST,
            Fashion-MNIST), `x_train` is a `source.Rows` that reads and decodes rows only
            when sliced (uncompressed files are mapped, not read); the other sets load
            as usual.

    Returns:
        The Dataset.

    Raises:
        DataError: unknown name, dtype not a float dtype, or missing / corrupt files.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}")
    dtype = _float_dtype(name, dtype)
    ds = (DATASETS[name](data_dir, dtype, lazy=True) if lazy and name in LAZY
          else DATASETS[name](data_dir, dtype))
    for split, x in (('training', ds.x_train), ('test', ds.x_test)):
        if x.shape[0] == 0:
            where = f' in {data_dir}' if data_dir else ''
            raise DataError(f'{name}: the {split} split{where} holds no examples; point '
                            '--config.data_dir at complete data files')
    return ds


def _float_dtype(name: str, dtype) -> np.dtype:
    """`dtype` as a numpy dtype, or DataError unless it names a float type."""
    fix = "pass a float dtype such as 'float32' or 'bfloat16' (the default: numpy.float32)"
    if dtype is None:  # numpy reads None as float64
        raise DataError(f'load({name!r}): dtype=None is not a dtype; {fix}')
    try:
        parsed = jnp.dtype(dtype)  # jnp knows 'bfloat16' by name
    except (TypeError, ValueError):
        raise DataError(f'load({name!r}): dtype={dtype!r} is not a dtype; {fix}') from None
    if not jnp.issubdtype(parsed, jnp.floating):  # numpy does not count bfloat16 as floating
        raise DataError(f'load({name!r}): dtype={dtype!r} ({parsed}) is not a float type; {fix}')
    return parsed
