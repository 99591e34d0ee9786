"""Core data types shared by every loader: the `Dataset` tuple and `DataError`."""

import os
from typing import NamedTuple

import numpy as np


class DataError(ValueError):
    """Bad or missing data. str(e) is ONE line naming the problem and the fix."""

    def __init__(self, message: str):
        # Callers print the message in one log line, so collapse any newlines.
        super().__init__(" ".join(str(message).split()))


class Dataset(NamedTuple):
    """A train/test split held fully in memory.

    Inputs are float (dtype asked for), shaped (N, *input_shape); images are
    NHWC scaled to [0, 1]. Labels are int32 in [0, num_classes).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple:
        """Shape of one example, i.e. x_train.shape[1:]."""
        return tuple(self.x_train.shape[1:])


def check_labels(name: str, y: np.ndarray, num_classes: int, where: str, fix: str) -> np.ndarray:
    """Return labels as int32 after checking they lie in [0, num_classes).

    Args:
        name: data set name, used in the error message.
        y: label array.
        num_classes: number of classes.
        where: file or folder the labels came from (for the message).
        fix: how the user can repair the problem (for the message).

    Returns:
        The labels as a contiguous int32 array.
    """
    y = np.asarray(y)
    if y.dtype.kind not in "iub" and not (
        y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))
    ):
        raise DataError(
            f"{name}: labels in {where} are not whole numbers (dtype {y.dtype}); {fix}"
        )
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(
            f"{name}: labels in {where} fall outside [0, {num_classes}) "
            f"(found {int(y.min())}..{int(y.max())}); {fix}"
        )
    return np.ascontiguousarray(y, dtype=np.int32)


def check_counts(name: str, n_x: int, n_y: int, where: str, fix: str) -> None:
    """Raise DataError unless there are as many examples as labels."""
    if n_x != n_y:
        raise DataError(f"{name}: {n_x} examples but {n_y} labels in {where}; {fix}")


def check_folder(name: str, folder: str, fix: str) -> None:
    """Raises DataError unless `folder` is a directory; a file there (a `--config.data_dir`
    naming one of the data files) gets its own message."""
    if os.path.isfile(folder):
        raise DataError(f"{name}: {folder} is a file, not a folder; set --config.data_dir to "
                        f"the folder that holds the data files ({os.path.dirname(folder) or '.'}?)")
    if not os.path.isdir(folder):
        raise DataError(f"{name}: directory {folder} not found; {fix}")
