"""What entrypoints share: user errors become one line on stderr and a documented exit code.

Exit codes of `python -m experiments.train`:
  0  the run finished (or had already finished in that workdir: nothing is touched)
  2  bad input or a run that cannot go on: stderr's last line is `error: ...`
  3  stopped by SIGTERM (preemption) or Ctrl-C after saving a checkpoint: re-run to resume
  130  a second Ctrl-C (or one before training started): stopped without saving; the
       last checkpoint stays, and re-running resumes from it
"""
from __future__ import annotations

import json
import os
import sys

from neurokit.data import DataError
from neurokit.experiment.errors import ConfigError, TrainingError, WorkdirError

USER_ERRORS = (ConfigError, DataError, WorkdirError, TrainingError)
EXIT_USER_ERROR = 2
EXIT_PREEMPTED = 3
EXIT_INTERRUPTED = 130  # the shell's code for a process stopped by SIGINT


def fail(message) -> None:
    """Prints `error: <message>` as one line on stderr and exits with code 2."""
    print(f'error: {" ".join(str(message).split())}', file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)


def join_processes(config) -> None:
    """Connects this process to the job's others, before any JAX computation.

    With `config.distributed.enabled` (explicit coordinator/count/id, or none of
    them to read a TPU pod's or SLURM's environment), or where the environment
    launched several processes (`parallel.distributed.multi_process_environment`).
    A single-process run does nothing here.
    """
    from neurokit.experiment import config as config_lib
    from neurokit.parallel import distributed
    config_lib.validate(config)  # the distributed keys must be sound before we connect
    d = config.distributed
    if not (d.enabled or distributed.multi_process_environment()):
        return
    try:
        if d.coordinator_address:
            distributed.initialize(d.coordinator_address, d.num_processes, d.process_id)
        else:
            distributed.initialize()
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f'cannot join the other processes ({" ".join(str(e).split())[:300]}); '
                          'check --config.distributed.coordinator_address, num_processes and '
                          'process_id') from None


def flags_parser(program: str):
    """An absl `flags_parser` for `app.run` that turns a flag error (an unknown flag, a
    mistyped flag name, `--epochs=abc`) into one `error:` line and exit 2, instead of
    absl's two-line FATAL message and exit 1."""
    def parse(argv):
        from absl import flags
        try:
            return flags.FLAGS(argv)
        except flags.Error as e:
            fail(f'bad flags: {e}; see python -m {program} --help')
    return parse


def _out_of_memory(e: BaseException) -> bool:
    """Whether `e` is XLA running out of memory (allocating, compiling or running)."""
    import jax
    text = str(e)
    return (isinstance(e, jax.errors.JaxRuntimeError)
            and ('RESOURCE_EXHAUSTED' in text or 'Out of memory' in text))


def interrupted(message: str) -> None:
    """Prints `interrupted: <message>` and exits with code 130 at once.

    Not sys.exit: a Ctrl-C that lands while XLA compiles leaves its threads mid-work, and
    the interpreter's normal shutdown then crashes (SIGSEGV, exit 139). Nothing is left to
    save: a checkpoint is only ever renamed into place once complete.
    """
    print(f'interrupted: {message}', file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def _kept(workdir) -> str:
    """What an interrupted or failed run left in `workdir`, and how to go on."""
    from neurokit.experiment.checkpoint import has_checkpoints
    if has_checkpoints(workdir):
        return (f'checkpoints already in {workdir} are intact: run the same command again '
                'to resume')
    return (f'no checkpoint had been saved in {workdir} yet: run the same command again to '
            'start over')


def run_main(config, workdir):
    """Runs `neurokit.experiment.run` and prints the summary; user errors exit 2 with one line."""
    from neurokit.experiment import run  # imported late so --help stays fast
    from neurokit.experiment.checkpoint import Preempted
    try:
        join_processes(config)
        summary = run(config, workdir)
    except USER_ERRORS as e:
        fail(e)
    except RuntimeError as e:
        if not _out_of_memory(e):
            raise
        fail(f'out of device memory ({" ".join(str(e).split())[:160]}); lower '
             '--config.batch_size, the model size, --config.num_seeds or the sweep\'s values, '
             f'or use more devices (--config.fsdp=True splits large weights); {_kept(workdir)}')
    except Preempted as e:
        print(f'preempted: {" ".join(str(e).split())}; run the same command again to resume',
              file=sys.stderr, flush=True)
        sys.exit(EXIT_PREEMPTED)
    except KeyboardInterrupt:
        interrupted(f'stopped without saving; {_kept(workdir)}')
    if summary.get('already_finished'):
        print(f'note: the run in {workdir} had already finished ({summary["epochs"]} epochs); '
              'nothing was changed. Pass a new --workdir to train again.', file=sys.stderr)
    keep = ('rule', 'dataset', 'epochs', 'test_accuracy', 'train_seconds', 'samples_per_second',
            'devices')
    print(json.dumps({k: summary[k] for k in keep}))
    return summary
