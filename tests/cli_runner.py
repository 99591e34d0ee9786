"""Runs `python -m experiments.<entrypoint>` commands without paying start-up for each.

A fresh interpreter spends about 2 s importing jax, flax, optax and orbax before an
entrypoint reads its flags, and the CLI tests run about 150 commands. A `Server` is ONE
process started with the tests' environment; it imports those modules once (without
starting a JAX backend, so forking is safe) and forks a child per command. The child
runs the entrypoint module as `__main__`, as `python -m` does, and leaves through the
interpreter's own exit (thread shutdown, atexit, finalisation): its own argv, stdin
(/dev/null), stdout, stderr and exit status (a signal gives -N, as `subprocess` reports
it), and its own JAX backend. The entrypoint modules themselves are
not imported by the server: they define absl flags, which must be defined once, in the
child. Environment variables read at import (JAX_PLATFORMS, the compilation cache) are the
server's; per-command `extra_env` is for those read at run time (NEUROKIT_TEST_HOOK, and
XLA_FLAGS, which XLA reads when the child starts its backend).

Two costs are shared as well, neither of which changes what a command does:
  * A command's exit finalises the interpreter, and the garbage collector would walk every
    object the server imported, copying each page it touches out of the shared memory
    (about 0.5 s a command). The server freezes those objects (`gc.freeze`, which exists for
    this) before each fork, so the child's collector skips them; the child still leaves
    through the interpreter's own exit.
  * Each command compiles its XLA programs. Unless the environment names a cache, a server
    gives its commands a persistent compilation cache of its own (removed by `close`), so
    a program that one command compiled is loaded by the next that builds the same one
    (the same HLO, options and devices: the same executable). Distinct programs still
    compile.
"""
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from typing import NamedTuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What the entrypoints import; importing these is the start-up cost being shared.
PRELOAD = ['neurokit', 'neurokit.experiment.cli', 'neurokit.train', 'absl.app',
           'ml_collections.config_flags']

_SERVER = r'''
import gc, json, os, runpy, select, sys
gc.disable()  # no collection leaves holes in the pages the children share
preload, out_dir = json.loads(sys.argv[1])
for name in preload:
    __import__(name)
from jax._src import xla_bridge
assert not xla_bridge._backends, 'a preloaded module started a JAX backend: forking is unsafe'
reply = os.fdopen(os.dup(1), 'w')
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints cannot break the reply stream


def child(i, module, argv, extra_env, cwd):
    """Runs `module` as `python -m` would, then leaves through the interpreter's own exit:
    a normal return or SystemExit runs threading's shutdown (joining non-daemon threads),
    atexit handlers and finalisation; an uncaught exception prints its traceback (exit 1);
    an uncaught KeyboardInterrupt ends the process by SIGINT. None of it returns here."""
    reply.close()
    gc.enable()
    os.environ.update(extra_env)
    if cwd:  # the repository stays importable, as an installed package would be
        sys.path.insert(0, os.getcwd())
        os.chdir(cwd)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    for fd, ext in ((1, 'out'), (2, 'err')):
        os.dup2(os.open(f'{out_dir}/{i}.{ext}', os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.argv = [module] + argv
    runpy.run_module(module, run_name='__main__', alter_sys=True)
    sys.exit(0)


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
            i, module, argv, extra_env, cwd = json.loads(line)
            gc.freeze()  # the child's collector leaves the server's objects (and pages) alone
            pid = os.fork()
            if pid == 0:
                child(i, module, argv, extra_env, cwd)
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


class Run(NamedTuple):
    """What a command left: its exit status (-N for signal N), stdout and stderr."""
    returncode: int
    stdout: str
    stderr: str


class Job:
    """One command in flight: `pid`, `wait()`, `kill_after()`."""

    def __init__(self, server, i):
        self._server, self._i = server, i
        self._started, self._done = threading.Event(), threading.Event()
        self.pid = self.returncode = None

    def kill_after(self, seconds):
        """SIGKILLs the command if it still runs after `seconds` (from outside, at an
        arbitrary moment); then as `wait()`."""
        if not self._done.wait(seconds):
            self._kill()
        return self.wait()

    def _kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended and was reaped just now
            pass

    def wait(self, timeout=600):
        """`Run(returncode, stdout, stderr)` once the command has ended. One that runs past
        `timeout` is killed (so that nothing outlives the test) and raises TimeoutError."""
        if not self._done.wait(timeout):
            self._kill()
            raise TimeoutError(f'command {self._i} ran over {timeout} s and was killed')
        if self.returncode is None:
            raise RuntimeError(f'the command server died while command {self._i} ran:\n'
                               f'{self._server.stderr()[-3000:]}')
        read = lambda ext: open(f'{self._server.out_dir}/{self._i}.{ext}', errors='replace').read()
        return Run(self.returncode, read('out'), read('err'))


class Server:
    """`with Server(env) as s: rc, out, err = s.run('experiments.train', argv)`."""

    def __init__(self, env, cwd=REPO):
        """Starts the server in `env` (the commands' environment; a persistent compilation
        cache of the server's own is added unless `env` names one) with its working
        directory, and so the first entry of `sys.path`, at `cwd` (the repository)."""
        self._tmp = tempfile.TemporaryDirectory()
        self.out_dir = os.path.join(self._tmp.name, 'out')
        os.makedirs(self.out_dir)
        if 'JAX_COMPILATION_CACHE_DIR' not in env:
            env = dict(env, JAX_COMPILATION_CACHE_DIR=os.path.join(self._tmp.name, 'jaxcache'),
                       JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
                       JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='0')
        self._proc = subprocess.Popen(
            [sys.executable, '-c', _SERVER, json.dumps([PRELOAD, self.out_dir])], cwd=cwd,
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True)  # its own process group: close() can kill all
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
        for job in list(self._jobs.values()):  # the server is gone: nothing more will come
            job._started.set()
            job._done.set()

    def stderr(self) -> str:
        """What the server itself wrote to stderr (once it has exited)."""
        try:
            return self._proc.stderr.read() if self._proc.poll() is not None else ''
        except ValueError:
            return ''

    def start(self, module, argv, extra_env=None, cwd=None):
        """Starts `python -m module *argv` (from the repo root, or from `cwd`); returns its
        Job."""
        with self._lock:
            i = len(self._jobs)
            job = self._jobs[i] = Job(self, i)
            self._proc.stdin.write(json.dumps([i, module, list(argv), dict(extra_env or {}),
                                               cwd]) + '\n')
            self._proc.stdin.flush()
        if not job._started.wait(60) or job.pid is None:
            raise RuntimeError(f'the command server did not start command {i}:\n'
                               f'{self.stderr()[-3000:]}')
        return job

    def run(self, module, argv, extra_env=None, timeout=600, cwd=None):
        return self.start(module, argv, extra_env, cwd).wait(timeout)

    def close(self):
        """Waits for the commands in flight (each bounded by its own wait's timeout), then
        for the server; kills the server and its children if that takes over a minute."""
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
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
    `jobs` at a time. Returns their `Run`s in the order of `commands`."""
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(server.run, *c, timeout=timeout) for c in commands]
        return [f.result() for f in futures]
