"""IDX (MNIST-format) files for tests: the one writer the test files share."""
import os
import struct

import numpy as np


def idx_bytes(arr) -> bytes:
    """The IDX encoding of a uint8 array: magic (0, 0, 0x08, ndim), big-endian dims, data."""
    arr = np.asarray(arr, dtype=np.uint8)
    head = struct.pack('>BBBB', 0, 0, 0x08, arr.ndim) + struct.pack(f'>{arr.ndim}I', *arr.shape)
    return head + arr.tobytes()


def write_mnist(folder, n_train=256, n_test=64, seed=0, learnable=True, label_max=None):
    """Writes train/t10k images and labels (uncompressed) into `folder`.

    learnable: images are one of 10 class prototypes plus noise (a run can
    learn them); else uniform noise. label_max: if given, the first label of
    each split is set to it (12 makes a file with an out-of-range label).
    """
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    protos = rng.integers(0, 256, (10, 28, 28)) if learnable else None
    for stem, n in (('train', n_train), ('t10k', n_test)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        if label_max is not None:
            y[0] = label_max
        if learnable:
            x = np.clip(protos[y] * 0.6 + rng.integers(0, 100, (n, 28, 28)), 0, 255)
        else:
            x = rng.integers(0, 256, (n, 28, 28))
        with open(os.path.join(folder, f'{stem}-images-idx3-ubyte'), 'wb') as f:
            f.write(idx_bytes(x))
        with open(os.path.join(folder, f'{stem}-labels-idx1-ubyte'), 'wb') as f:
            f.write(idx_bytes(y))
