"""Data sets as in-memory numpy arrays: `load(name)` returns a `Dataset`.

Images are NHWC floats in [0, 1]; labels are int32. Every failure raises
`DataError` with a one-line message naming the problem and the fix.
"""

from .base import DataError, Dataset
from .registry import DATASETS, load

__all__ = ["DATASETS", "DataError", "Dataset", "load"]
