"""Shared test fixtures: small models and the embedded digits data."""
import os

# XLA's CPU backend at LLVM optimisation level 0: the tests are mostly compilation (small
# programs run a few steps), which this makes about a third faster. It changes no value: the
# HLO passes (fusion, layout, buffer assignment) are the same and fast-math stays off, so
# programs compiled here and in the CLI subprocesses (which inherit this) agree bit for bit.
os.environ.setdefault('XLA_FLAGS', '--xla_backend_optimization_level=0')

# One persistent XLA compile cache for the whole test session: many tests compile the same
# small programs, and a program another test (or xdist worker, or CLI subprocess, which
# inherit this environment) compiled already is loaded instead. Set here, before JAX is
# imported, by the first process (pytest itself); removed when that process exits.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ and 'PYTEST_XDIST_WORKER' not in os.environ:
    import atexit
    import shutil
    import tempfile
    _cache = tempfile.mkdtemp(prefix='nk-test-jaxcache-')
    atexit.register(shutil.rmtree, _cache, True)
    os.environ.update(JAX_COMPILATION_CACHE_DIR=_cache,
                      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='0')

import jax
import jax.numpy as jnp
import pytest

from neurokit import data as data_lib


# The modules that take longest (in seconds of one worker, summed over their tests: the
# subprocesses, notebooks, CLI batteries and the long batteries of small tests) run first,
# longest first, so that the two xdist workers (`--dist loadscope`: a module is one unit)
# do not end on one of them while the other idles. The rest follow in collection order.
HEAVY_FIRST = ('test_conformance.py', 'test_resume.py', 'test_flax_blocks.py',
               'test_new_rule.py', 'test_ff_rule.py', 'test_one_epoch.py', 'test_feed.py',
               'test_flax_notebook.py', 'test_run_devices.py', 'test_benchmarks.py',
               'test_pc.py', 'test_multihost_runs.py', 'test_zoo.py',
               'test_parallel_devices.py', 'test_fa_rules.py', 'test_cli.py',
               'test_state_api.py', 'test_checkpoint.py', 'test_mf.py', 'test_sweep_cli.py',
               'test_bad_input.py', 'test_parallel_multihost.py', 'test_run_driver.py',
               'test_parallel_sweep.py', 'test_combine_rules.py', 'test_mf_layerwise.py',
               'test_async_checkpoints.py', 'test_parallel_notebook.py',
               'test_entrypoint_errors.py', 'test_nnx_blocks.py')


def pytest_configure(config):
    # xdist's loadscope hands out modules by their number of tests, most first, unless
    # told not to: a one-test module (a notebook, the 8-device CLI run) would start last
    # and leave one worker idle while it runs. The order above is the one wanted.
    if hasattr(config.option, 'loadscopereorder'):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order kept


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
