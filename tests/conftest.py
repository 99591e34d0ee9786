"""Shared test fixtures: small models and the embedded digits data."""
import os

os.environ.setdefault('XLA_FLAGS', '--xla_cpu_multi_thread_eigen=true')

import jax
import jax.numpy as jnp
import pytest

from neurokit import data as data_lib


@pytest.fixture(scope='session')
def digits():
    """scikit-learn's 8x8 digits on device: (x_train, y_train, x_test, y_test)."""
    ds = data_lib.load('digits')
    return tuple(jnp.asarray(a) for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test))


@pytest.fixture(scope='session')
def cli():
    """A command server (tests/cli_runner.py), one per test process:
    `cli.run('experiments.train', argv, extra_env)` -> Run(returncode, stdout, stderr)."""
    from cli_runner import Server, cli_env
    with Server(cli_env()) as server:
        yield server


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)
