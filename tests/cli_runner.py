"""Runs `python -m experiments.<entrypoint>` commands without paying start-up for each.

A fresh interpreter spends about 2 s importing jax, flax, optax and orbax before an
entrypoint reads its flags, and the CLI tests run about 150 commands. A `Server` is ONE
process started with the tests' environment; it imports those modules once (without
starting a JAX backend, so forking is safe) and forks a child per command. The child
runs the entrypoint module as `__main__`, as `python -m` does: its own argv, stdin
(/dev/null), stdout, stderr, atexit handlers and exit status (a signal gives -N, as
`subprocess` reports it), and its own JAX backend. The entrypoint modules themselves are
not imported by the server: they define absl flags, which must be defined once, in the
child. Environment variables read at import (JAX_PLATFORMS, XLA_FLAGS, the compilation
cache) are the server's; per-command `extra_env` is for those read at run time
(NEUROKIT_TEST_HOOK).
"""
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What the entrypoints import; importing these is the start-up cost being shared.
PRELOAD = ['neurokit', 'neurokit.cli', 'neurokit.train', 'absl.app',
           'ml_collections.config_flags']

_SERVER = r'''
import atexit, json, os, runpy, select, sys, traceback
preload, out_dir = json.loads(sys.argv[1])
for name in preload:
    __import__(name)
from jax._src import xla_bridge
assert not xla_bridge._backends, 'a preloaded module started a JAX backend: forking is unsafe'
reply = os.fdopen(os.dup(1), 'w')


def child(i, module, argv, extra_env):
    code = 1
    try:
        os.environ.update(extra_env)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for fd, ext in ((1, 'out'), (2, 'err')):
            os.dup2(os.open(f'{out_dir}/{i}.{ext}', os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        sys.argv = [module] + argv
        try:
            runpy.run_module(module, run_name='__main__', alter_sys=True)
            code = 0
        except SystemExit as e:
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
        atexit._run_exitfuncs()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


children, pending, closed = {}, b'', False
reply.write('ready\n')
reply.flush()
while children or not closed:
    if not closed and select.select([0], [], [], 0.02)[0]:
        chunk = os.read(0, 1 << 16)
        closed = not chunk
        pending += chunk
        while b'\n' in pending:
            line, pending = pending.split(b'\n', 1)
            i, module, argv, extra_env = json.loads(line)
            pid = os.fork()
            if pid == 0:
                reply.close()
                child(i, module, argv, extra_env)
            children[pid] = i
            reply.write(json.dumps([i, 'pid', pid]) + '\n')
            reply.flush()
    elif closed:
        select.select([], [], [], 0.02)
    while children:
        pid, raw = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            break
        reply.write(json.dumps([children.pop(pid), 'rc', os.waitstatus_to_exitcode(raw)]) + '\n')
        reply.flush()
'''


class Job:
    """One command in flight: `pid` (to signal it from outside) and `wait()`."""

    def __init__(self, server, i):
        self._server, self._i = server, i
        self._started, self._done = threading.Event(), threading.Event()
        self.pid = self.returncode = None

    def wait(self, timeout=600):
        """(returncode, stdout, stderr) once the command has ended."""
        if not self._done.wait(timeout):
            raise TimeoutError(f'command {self._i} ran over {timeout} s')
        read = lambda ext: open(f'{self._server.out_dir}/{self._i}.{ext}', errors='replace').read()
        return self.returncode, read('out'), read('err')


class Server:
    """`with Server(env) as s: rc, out, err = s.run('experiments.train', argv)`."""

    def __init__(self, env):
        self._tmp = tempfile.TemporaryDirectory()
        self.out_dir = self._tmp.name
        self._proc = subprocess.Popen(
            [sys.executable, '-c', _SERVER, json.dumps([PRELOAD, self.out_dir])], cwd=REPO,
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        first = self._proc.stdout.readline()
        if first != 'ready\n':
            self._proc.kill()
            raise RuntimeError(f'the command server did not start:\n{self._proc.stderr.read()[-3000:]}')
        self._jobs, self._lock = {}, threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self._proc.stdout:
            i, what, value = json.loads(line)
            job = self._jobs[i]
            if what == 'pid':
                job.pid = value
                job._started.set()
            else:
                job.returncode = value
                job._done.set()

    def start(self, module, argv, extra_env=None):
        """Starts `python -m module *argv` (from the repo root); returns its Job."""
        with self._lock:
            i = len(self._jobs)
            job = self._jobs[i] = Job(self, i)
            self._proc.stdin.write(json.dumps([i, module, list(argv), dict(extra_env or {})]) + '\n')
            self._proc.stdin.flush()
        if not job._started.wait(60):
            raise RuntimeError(f'the command server did not start command {i}')
        return job

    def run(self, module, argv, extra_env=None, timeout=600):
        return self.start(module, argv, extra_env).wait(timeout)

    def close(self):
        self._proc.stdin.close()
        self._proc.wait(timeout=600)
        self._reader.join(timeout=10)
        self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def cli_env(**extra):
    """The environment the CLI tests run in: this one, on CPU, without a test hook."""
    env = {k: v for k, v in os.environ.items() if k != 'NEUROKIT_TEST_HOOK'}
    env.update(JAX_PLATFORMS='cpu', **extra)
    return env


def run_many(server, commands, jobs=2, timeout=900):
    """Runs each (module, argv) or (module, argv, extra_env) of `commands` on `server`,
    `jobs` at a time. Returns [(returncode, stdout, stderr)] in the order of `commands`."""
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(server.run, *c, timeout=timeout) for c in commands]
        return [f.result() for f in futures]
