"""What entrypoints share: loading a config file, flags, and user errors as one line on
stderr with a documented exit code.

Exit codes of `python -m experiments.train`:
  0  the run finished (or had already finished in that workdir: nothing is touched)
  2  bad input or a run that cannot go on: stderr's last line is `error: ...`
  3  stopped by SIGTERM (preemption) or Ctrl-C after saving a checkpoint: re-run to resume
  130  a second Ctrl-C (or one before training started): stopped without saving; the
       last checkpoint stays, and re-running resumes from it

A config file is loaded once (`load_config`): a path relative to the working directory,
or else to the repository (so `--config=experiments/configs/bp.py` works from any
folder); its `rule_kwargs` then get every hyperparameter of the rule it does not set,
with the constructor's default, so `--config.rule_kwargs.NAME=V` works for any of them.
"""
from __future__ import annotations

import json
import os
import runpy
import sys

from neurokit.data import DataError
from neurokit.experiment.errors import ConfigError, TrainingError, WorkdirError

USER_ERRORS = (ConfigError, DataError, WorkdirError, TrainingError)
EXIT_USER_ERROR = 2
EXIT_PREEMPTED = 3
EXIT_INTERRUPTED = 130  # the shell's code for a process stopped by SIGINT

# The repository a relative config path falls back to (the folder holding experiments/).
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIG_HELP = ('Config file with get_config() (e.g. experiments/configs/default.py); override '
               'its keys with --config.KEY=VALUE, any rule hyperparameter with '
               '--config.rule_kwargs.NAME=VALUE. Progress on stderr: --config.progress=auto '
               '(default: a bar on a terminal, one line per epoch otherwise, e.g. with tee or a '
               'log file), on (one line per epoch) or off.')
WORKDIR_HELP = ('Output folder (metrics.jsonl, checkpoints, summary.json, tb/); an unfinished '
                'run there is resumed.')


def fail(message) -> None:
    """Prints `error: <message>` as one line on stderr and exits with code 2."""
    print(f'error: {" ".join(str(message).split())}', file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)


def note(message) -> None:
    """Prints `note: <message>` as one line on stderr."""
    print(f'note: {" ".join(str(message).split())}', file=sys.stderr, flush=True)


def join_processes(config) -> None:
    """Connects this process to the job's others, before any JAX computation.

    With `config.distributed.enabled` (explicit coordinator/count/id, or none of
    them to read a TPU pod's or SLURM's environment), or where the environment
    launched several processes (`parallel.distributed.multi_process_environment`).
    A single-process run does nothing here. Only the `distributed.*` keys are checked
    here; the run validates the whole config once.
    """
    from neurokit.experiment import config as config_lib
    from neurokit.parallel import distributed
    config_lib.check_distributed(config)  # they must be sound before we connect
    d = config.distributed
    if not (d.enabled or distributed.multi_process_environment()):
        return
    try:
        if d.coordinator_address:
            distributed.initialize(d.coordinator_address, d.num_processes, d.process_id)
        else:  # let JAX find the cluster (TPU VM metadata, SLURM, MPI, Kubernetes, ...)
            distributed.initialize(detect=d.enabled)
    except (RuntimeError, ValueError) as e:
        detail = " ".join(str(e).split())[:300]
        if d.enabled and not d.coordinator_address:
            raise ConfigError(f'config.distributed.enabled is set but JAX found no cluster to '
                              f'join ({detail}); launch it as a TPU pod, SLURM, MPI or '
                              'Kubernetes job, or give --config.distributed.coordinator_address, '
                              'num_processes and process_id') from None
        raise ConfigError(f'cannot join the other processes ({detail}); '
                          'check --config.distributed.coordinator_address, num_processes and '
                          'process_id') from None


# ----------------------------------------------------------------------------- config files


def resolve_config_path(path: str) -> str:
    """The file `path` names: as given (`~` expanded, relative to the working directory),
    or else relative to the repository.

    Raises:
      ConfigError: no such file in either place.
    """
    if not path.strip():
        raise ConfigError('--config is empty; pass the path of a file with get_config(), e.g. '
                          '--config=experiments/configs/default.py')
    given = os.path.expanduser(path)
    if os.path.isfile(given):
        return given
    in_repo = os.path.join(REPO, given)
    if not os.path.isabs(given) and os.path.isfile(in_repo):
        return in_repo
    looked = dict.fromkeys([os.path.abspath(given)] + ([] if os.path.isabs(given) else [in_repo]))
    where = ' nor '.join(looked)
    raise ConfigError(f'cannot load the config {path}: no such file ({where}); pass the path '
                      'of a file with get_config(), e.g. --config=experiments/configs/default.py')


def _last_line(e) -> str:
    """The last non-blank line of an exception's message (a config file's own error)."""
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    return lines[-1] if lines else str(e)


def load_config(spec: str):
    """Runs `get_config()` of the file `spec` names (`PATH` or `PATH:ARG`, as
    ml_collections takes them), once; its folder is importable meanwhile, so a config
    may import a sibling file.

    Returns:
      The ConfigDict it returns (unlocked).

    Raises:
      ConfigError: no such file, no `get_config()`, an error inside the file, or
        something other than a ConfigDict returned.
    """
    import ml_collections
    path, colon, arg = spec.partition(':')
    path = resolve_config_path(path)
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)
    try:
        get_config = runpy.run_path(path).get('get_config')
        if not callable(get_config):
            raise ConfigError(f'config file {path} defines no get_config(); write one that '
                              'returns neurokit.experiment.config.base_config() with your '
                              'changes')
        config = get_config(arg) if colon else get_config()
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - any error of the file itself
        raise ConfigError(f'cannot load the config {path}: {type(e).__name__}: '
                          f'{_last_line(e)}') from None
    finally:
        sys.path.remove(folder)
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f'get_config() of {path} returned {type(config).__name__}, not a '
                          'ConfigDict; return neurokit.experiment.config.base_config() with '
                          'your changes')
    return config


def for_rule(config, rule: str):
    """`config` set to train `rule`, with every hyperparameter of it in `rule_kwargs`
    (the file's values, else the constructor's defaults). A file's `rule_kwargs` belong
    to the file's rule: when `rule` is another one they are dropped (a note names them),
    so one rule's settings never leak into another's.
    """
    import ml_collections
    from neurokit.experiment import config as config_lib
    kwargs = config.get('rule_kwargs')
    if rule != config.get('rule') and isinstance(kwargs, ml_collections.ConfigDict):
        if kwargs.keys():
            note(f'--config.rule={rule} replaces the config file\'s rule {config.rule}; its '
                 f'rule_kwargs ({", ".join(sorted(kwargs.keys()))}) are not used')
        with config.unlocked():
            config.rule_kwargs = ml_collections.ConfigDict()
    if 'rule' in config:
        with config.unlocked():
            config.rule = rule
    return config_lib.with_rule_defaults(config)


def _flag_values(argv, name):
    """The values given to flag `--name` in `argv` (`--name=V` or `--name V`), in order."""
    out = []
    for i, a in enumerate(argv):
        if a.startswith(f'--{name}='):
            out.append(a.split('=', 1)[1])
        elif a == f'--{name}' and i + 1 < len(argv):
            out.append(argv[i + 1])
    return out


def _check_repeated(argv, config):
    """A repeated tuple override is appended to, not replaced (ml_collections): refuse it.
    (A repeated scalar override replaces the earlier one, as absl flags do.)"""
    seen = set()
    for a in argv[1:]:
        if not a.startswith('--config.'):
            continue
        flag = a.split('=', 1)[0]
        try:
            value = config
            for part in flag[len('--config.'):].split('.'):
                value = value[part]
        except (KeyError, TypeError, AttributeError):
            continue  # an unknown key: the parser names it
        if isinstance(value, (tuple, list)) and flag in seen:
            raise ConfigError(f'{flag} is given twice, and ml_collections would join the two '
                              f'tuples; give it once (e.g. {flag}=8,8)')
        seen.add(flag)


def _check_rule_kwargs_flags(argv, config):
    """An override `--config.rule_kwargs.NAME` that the rule has no hyperparameter for."""
    from neurokit.rules import registry
    if config.get('rule') not in registry.RULES:
        return  # validate names an unknown rule
    accepted = registry.hyperparameters(config.rule)
    for a in argv[1:]:
        key = a.split('=', 1)[0]
        if key.startswith('--config.rule_kwargs.'):
            name = key[len('--config.rule_kwargs.'):].split('.')[0]
            if name not in accepted:
                raise ConfigError(f'rule {config.rule!r} has no hyperparameter '
                                  f'rule_kwargs.{name}; valid: {", ".join(accepted) or "(none)"} '
                                  '(--config.rule picks another rule)')
            if name not in config.rule_kwargs:  # a default of no flag kind (None, a function)
                raise ConfigError(f'rule {config.rule!r}\'s hyperparameter {name} has no default '
                                  'a flag can replace; set config.rule_kwargs.' + name +
                                  ' in a config file')


class _Loaded:
    """An absl parser for the `config` flag that returns the config already loaded
    (`load_config`), so the file runs once, not once per check; ml_collections then
    applies the `--config.KEY` overrides to it as usual."""

    def __init__(self, config):
        self._config = config

    def parse(self, argument):
        del argument
        return self._config

    def flag_type(self):
        return 'config object'


def _parse(argv, flag_values):
    """Parses `argv` into `flag_values` (which define the `config_flags` flag 'config'): the
    file is loaded once and set to its rule's full hyperparameters (`for_rule`), then
    ml_collections applies the overrides. Returns what absl's parsing returns.

    Raises:
      ConfigError: a missing or broken config file, an unknown `--config.key`, a value of
        the wrong type, a tuple override given twice (one line each).
    """
    from absl import flags
    spec = (_flag_values(argv[1:], 'config') or [None])[-1]
    if spec is not None:
        config = load_config(spec)
        rule = (_flag_values(argv[1:], 'config.rule') or [config.get('rule')])[-1]
        config = for_rule(config, rule)
        config.lock()
        flag_values['config'].parser = _Loaded(config)
        _check_repeated(argv, config)
        _check_rule_kwargs_flags(argv, config)
    try:
        return flag_values(argv)
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
        overrides = [a.split('=')[0] for a in argv[1:] if a.startswith('--config.')]
        lines = [l.strip() for l in str(e).splitlines() if l.strip()]
        if any(l.startswith('Traceback') for l in lines):  # an error inside the config file
            lines = [lines[0], lines[-1]]
        msg = ' '.join(' '.join(lines).split())
        if isinstance(e, (AttributeError, KeyError)) and overrides:
            raise ConfigError(_unknown_key_message(e, overrides)) from None
        raise ConfigError(f'bad flags: {msg}') from None
    except Exception as e:  # noqa: BLE001 - an exception raised by the config file itself
        raise ConfigError(f'cannot load the config: {type(e).__name__}: {e}') from None


def parse_config_flags(argv):
    """absl's flag parsing for an entrypoint with a `config_flags.DEFINE_config_file('config')`
    flag (see `_parse`), with every failure one `error:` line and exit 2. Pass it as
    `app.run`'s `flags_parser`."""
    from absl import flags
    try:
        return _parse(argv, flags.FLAGS)
    except ConfigError as e:
        fail(e)


def config_from_flags(argv):
    """The config `python -m experiments.train` builds from its arguments `argv` (the
    program name first, then `--config=FILE`, the `--config.KEY=VALUE` overrides, ...),
    without running it: for tools that re-derive a run's config from its command.

    Returns:
      The ConfigDict, every rule hyperparameter in `rule_kwargs`.

    Raises:
      ConfigError: what the command line would report as its `error:` line.

    Example:
      config = config_from_flags(['train', '--config=experiments/configs/pc.py',
                                  '--workdir=x', '--config.epochs=5'])
    """
    from absl import flags
    from ml_collections import config_flags
    from neurokit.experiment import config as config_lib
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file('config', None, CONFIG_HELP, flag_values=fv,
                                    sys_argv=list(argv))
    flags.DEFINE_string('workdir', None, WORKDIR_HELP, flag_values=fv)
    _parse(list(argv), fv)
    if fv['config'].value is None:
        raise ConfigError('no --config=FILE in the command')
    return config_lib.with_rule_defaults(fv['config'].value)


def _unknown_key_message(e, overrides) -> str:
    """One line for an override naming a key the config does not have."""
    raw = str(e.args[0] if isinstance(e, KeyError) and e.args else e)
    raw = raw.replace('\\n', '\n').replace("\\'", "'")  # a KeyError's repr inside the message
    first, *rest = [l.strip() for l in str(raw).splitlines() if l.strip()] or ['?']
    name = first.strip(chr(34) + chr(39))
    flag = next((o for o in overrides if o.split('.')[-1] == name), None)
    key = flag[len('--config.'):] if flag else name
    hint = ' '.join(rest).strip(chr(34) + chr(39))  # ml_collections' "Did you mean ...?", if any
    fix = 'see neurokit/experiment/config.py base_config() for valid keys'
    return f'unknown config key {key}{" (" + hint + ")" if hint else ""}; {fix}'


def train(argv, config, workdir) -> dict:
    """`python -m experiments.train`'s main: checks what absl left, then runs the config.

    Args:
      argv: the arguments absl did not parse as flags (only the program name is expected).
      config: the parsed `--config` (overrides applied).
      workdir: `--workdir`.

    Returns:
      The run's summary (the process then exits 0); user errors exit 2 with one line.
    """
    from absl import flags, logging
    from neurokit.experiment import config as config_lib
    if not flags.FLAGS['verbosity'].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    if len(argv) > 1:
        fail(f'unexpected arguments {" ".join(argv[1:])}; flags look like --config.KEY=VALUE')
    try:
        config.keys()  # a config ml_collections loaded lazily raises its error on first use
    except Exception as e:  # noqa: BLE001
        fail(f'cannot load --config: {type(e).__name__}: {_last_line(e)}')
    # a --config.rule_kwargs={...} or --config.rule override may have left some out
    return run_main(config_lib.with_rule_defaults(config), workdir)


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
