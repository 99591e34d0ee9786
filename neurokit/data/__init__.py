"""Data sets as in-memory numpy arrays: `load(name)` returns a `Dataset`.

Images are NHWC floats in [0, 1]; labels are int32. Every failure raises
`DataError` with a one-line message naming the problem and the fix. `load(name,
lazy=True)` keeps the training images as stored (`source.Rows`): a run that feeds each
process its own rows (`--config.feed=host`) reads only those.
"""

from .base import DataError, Dataset
from .registry import DATASETS, load
from .normalize import NORMS, standardize
from .source import ArraySource, Rows, source_of

__all__ = ["ArraySource", "DATASETS", "DataError", "Dataset", "NORMS", "Rows", "load",
           "source_of", "standardize"]
