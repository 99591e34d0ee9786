"""The config schema shared by every experiment, and its validation.

Every config file starts from `base_config()` and overrides fields, so the set
of keys is fixed: a misspelt key in a file or on the command line is an error,
not a silently ignored setting. `validate` checks names, types and ranges before
anything is loaded or compiled.
"""
from __future__ import annotations

import numbers

import ml_collections

from neurokit import models, optim
from neurokit.checks import check_range
from neurokit.data import DATASETS, NORMS
from neurokit.experiment.errors import ConfigError
from neurokit.rules import registry as rule_registry


def base_config() -> ml_collections.ConfigDict:
    """All keys a run accepts, with defaults (backprop MLP on Fashion-MNIST)."""
    c = ml_collections.ConfigDict()
    c.rule = rule_registry.BASELINE  # backprop, the baseline the others are measured against
    c.rule_kwargs = ml_collections.ConfigDict()  # the rule constructor's hyperparameters
    c.dataset = 'fashion_mnist'
    c.data_dir = ''            # '' = the data set's default folder
    c.train_limit = 0          # use only the first N training examples (0 = all)
    # Hold out the LAST N training examples as a validation split (before train_limit
    # applies); they are never trained on. 0: no validation split.
    c.validation_examples = 0
    # Inputs as loaded ('none': images in [0, 1]) or 'standard': (x - mean) / std with the
    # scalar mean and std of the training examples the run trains on (neurokit.data.normalize)
    c.input_norm = 'none'
    c.epochs = 20
    c.batch_size = 128
    c.eval_batch_size = 1000
    c.seed = 0
    c.num_seeds = 1            # >1: train that many seeds as one vmapped program
    # A hyperparameter sweep as one vmapped program: 'KEY=V1,V2[;KEY=V1,V2]' over
    # optimizer.* / rule_kwargs.* numbers; members = the grid x num_seeds seeds.
    c.sweep = ''
    # Step each block of layers with the optimizer as soon as its gradient exists, inside
    # the rule's forward pass (rules whose constructor takes `layerwise`). Same numbers for
    # element-wise optimizers; a layer's gradient is freed before the next layer runs.
    c.layerwise_updates = False

    c.model = ml_collections.ConfigDict()
    c.model.name = 'mlp'       # one of neurokit.models.MODELS
    c.model.hidden = (1000, 1000)
    c.model.activation = 'relu'
    c.model.init = 'lecun_normal'
    c.model.dtype = 'float32'
    c.model.channels = (32, 64)      # model 'cnn' only
    c.model.kernel_size = 3          # model 'cnn' only
    c.model.dense_widths = (128,)    # models 'cnn' and 'vgg' (its first width; () for none)
    # The model zoo (neurokit/models/zoo.py: Flax modules as blocks):
    c.model.depth = 0          # 'resnet' (6n+2, or 18), 'vit', 'transformer'; 0: the default
    c.model.width = 0          # 'resnet': the first stage's channels; 0: 16 (6n+2) or 64 (18)
    c.model.norm = 'group'     # 'resnet', 'vgg', 'vgg5', 'vgg7': 'group', 'layer', 'batch' or 'none'
    c.model.patch = 4          # 'vit': patch size
    c.model.dim = 64           # 'vit', 'transformer': token width
    c.model.heads = 4          # 'vit', 'transformer': attention heads

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = 'adam'
    c.optimizer.learning_rate = 1e-3
    c.optimizer.momentum = 0.9       # sgd, rmsprop
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = 'constant'
    c.optimizer.warmup_epochs = 0.0
    c.optimizer.grad_clip = 0.0
    c.optimizer.initial_weight_decay = 0.0         # used for the first ... epochs, then weight_decay
    c.optimizer.initial_weight_decay_epochs = 0.0  # 0: weight_decay throughout
    # Per-group optimizers (optax.multi_transform): the parameters the rule labels G (its
    # `param_labels`) step with config.optimizer changed by the keys of
    # optimizer_groups.G, e.g. a rule config's `optimizer_groups.feedback.learning_rate`.
    c.optimizer_groups = ml_collections.ConfigDict()

    # Bookkeeping: none of these change what is computed (see RESUMABLE_KEYS).
    c.checkpoint_every = 1     # save a checkpoint every N epochs (0: only the final one)
    # Long epochs: train K steps per compiled call (0: the whole epoch as one program, the
    # fast path), and save a mid-epoch checkpoint every N steps (a multiple of K; 0: none).
    # Between calls the run can stop (SIGTERM), checkpoint and report progress.
    c.steps_per_call = 0
    c.checkpoint_every_steps = 0
    # Where each step's batch comes from: 'device' (the training set sits on the devices,
    # each step gathers its batch there: the fast path for data that fits) or 'host' (each
    # process reads only its rows of every batch, as stored -- uint8 pixels -- and sends
    # them to its own devices, steps_per_call batches at a time: data larger than device
    # memory, and multi-host runs where no example should cross hosts).
    c.feed = 'device'
    c.keep_checkpoints = 3     # keep the newest K checkpoints
    c.async_checkpoints = False  # write checkpoints in the background while training goes on
                                 # (a large state); the run waits for them before it ends
    c.progress = 'auto'        # progress on stderr: auto (a bar on a terminal, else one line
                               # per epoch), on (one line per epoch), off
    c.tensorboard = True       # TensorBoard event files in <workdir>/tb
    c.nan_policy = 'stop'      # non-finite loss/params: 'stop' the run, or 'skip' the step

    # Devices (see neurokit/parallel): where a run computes, not what it computes.
    c.parallel = 'sharded'     # 'sharded' (jit over a Mesh), 'pmap', or 'none' (one device)
    c.mesh = ''                # '' = all visible devices on 'data'; 'data=4', 'data=4,stage=2'
    c.fsdp = False             # sharded mode: split large weights and their moments over 'data'
    c.distributed = ml_collections.ConfigDict()  # multi-host (jax.distributed.initialize)
    c.distributed.enabled = False                # True: join the other processes
    c.distributed.coordinator_address = ''       # 'host:port' of process 0; '' = environment
    c.distributed.num_processes = 0              # 0 = from the environment
    c.distributed.process_id = -1                # -1 = from the environment
    return c


# Keys that may differ between a checkpoint's config and the config resuming it:
# they change how a run is watched or saved, never the numbers it computes.
# The device keys (parallel, mesh, fsdp, distributed.*) are resumable too: they
# change only where the same program runs, so in exact arithmetic the numbers are
# the same (cross-device sums round differently, ~1e-6), and resuming an 8-device
# run on 1 device, or a pod run on a workstation, is a legitimate wish. A resume
# with the same device keys stays bit-identical. (pmap differs beyond rounding only
# for rules whose update is not a batch mean: ff/cff negatives, iPC; see parallel/pmap.py.)
# nan_policy is resumable: it changes only what happens at a step whose loss or
# parameters are not finite, which under 'stop' ends the run -- so resuming a run
# that stopped there with 'skip' (what the stop message suggests) gives the numbers
# a 'skip' run would have had, and every other run is unchanged.
DEVICE_KEYS = ('parallel', 'mesh', 'fsdp', 'distributed.enabled',
               'distributed.coordinator_address', 'distributed.num_processes',
               'distributed.process_id')
RESUMABLE_KEYS = ('eval_batch_size', 'checkpoint_every', 'keep_checkpoints', 'progress',
                  'tensorboard', 'nan_policy', 'steps_per_call',
                  'checkpoint_every_steps', 'feed', 'async_checkpoints') + DEVICE_KEYS
PROGRESS = ('auto', 'on', 'off')
NAN_POLICIES = ('stop', 'skip')
PARALLEL = ('sharded', 'pmap', 'none')
FEEDS = ('device', 'host')
MESH_AXES = ('data', 'stage')


_INT_KEYS = {'train_limit': 0, 'validation_examples': 0, 'epochs': 1, 'batch_size': 1,
             'eval_batch_size': 1, 'seed': 0, 'num_seeds': 1, 'checkpoint_every': 0,
             'keep_checkpoints': 1, 'steps_per_call': 0, 'checkpoint_every_steps': 0}
_STR_KEYS = ('rule', 'dataset', 'data_dir', 'progress', 'nan_policy', 'parallel', 'mesh', 'sweep',
             'feed', 'input_norm')
_MODEL_STR_KEYS = ('name', 'activation', 'init', 'dtype', 'norm')


def _check_keys(cfg, reference, prefix=''):
    unknown = sorted(set(cfg.keys()) - set(reference.keys()))
    if unknown:
        raise ConfigError(f'unknown config key {prefix}{unknown[0]}; valid keys: '
                          f'{", ".join(prefix + k for k in sorted(reference.keys()))}')


def _one_of(value, valid, what):
    if value not in valid:
        raise ConfigError(f'unknown {what} {value!r}; valid names: {", ".join(sorted(valid))}')


def _check_int(value, name: str, low: int) -> None:
    """ConfigError unless `value` is an integer (not a bool, not 2.0) >= `low`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ConfigError(f'{name} must be an integer >= {low}, got {value!r}')


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Checks a config before any data is read or anything compiled.

    Returns:
      The config (unchanged).

    Raises:
      ConfigError: one line naming the key, the problem and the valid choices.
    """
    ref = base_config()
    _check_keys(config, ref)
    _check_keys(config.model, ref.model, 'model.')
    _check_keys(config.optimizer, ref.optimizer, 'optimizer.')
    _check_keys(config.distributed, ref.distributed, 'distributed.')
    for key in _STR_KEYS:
        _check_type(config[key], str, f'config.{key}', 'a string')
    for key in _MODEL_STR_KEYS:
        _check_type(config.model[key], str, f'config.model.{key}', 'a string')
    for key in ('name', 'schedule'):
        _check_type(config.optimizer[key], str, f'config.optimizer.{key}', 'a string')
    _check_type(config.tensorboard, bool, 'config.tensorboard', 'True or False')
    _check_type(config.layerwise_updates, bool, 'config.layerwise_updates', 'True or False')
    if config.layerwise_updates and config.optimizer.grad_clip:
        raise ConfigError('config.optimizer.grad_clip clips by the norm over all layers, which '
                          'layerwise updates (config.layerwise_updates=True) never see at once; '
                          'set one of them off')
    if config.layerwise_updates and config.parallel == 'pmap':
        raise ConfigError("config.parallel='pmap' averages updates across devices after the "
                          "step, but layerwise updates are applied inside it; use "
                          "parallel='sharded' or config.layerwise_updates=False")
    if not isinstance(config.rule_kwargs, (ml_collections.ConfigDict, dict)):
        raise ConfigError(f'config.rule_kwargs must be a ConfigDict of the rule\'s '
                          f'hyperparameters, got {config.rule_kwargs!r}')
    _one_of(config.progress, PROGRESS, 'progress mode')
    _one_of(config.nan_policy, NAN_POLICIES, 'nan_policy')
    _one_of(config.rule, rule_registry.RULES, 'rule')
    _one_of(config.dataset, DATASETS, 'dataset')
    _one_of(config.input_norm, NORMS, 'input_norm')
    _one_of(config.model.name, models.MODELS, 'model')
    _one_of(config.model.activation, models.ACTIVATIONS, 'activation')
    _one_of(config.model.init, models.INITS, 'init')
    _one_of(config.model.dtype, ('float32', 'bfloat16', 'float16', 'float64'), 'dtype')
    if config.model.dtype == 'float64':
        import jax
        if not jax.config.jax_enable_x64:
            raise ConfigError("config.model.dtype='float64' needs JAX's 64-bit mode (JAX would "
                              'silently compute in float32): set JAX_ENABLE_X64=1 in the '
                              'environment, or use float32')
    _validate_devices(config)
    for key, low in _INT_KEYS.items():
        _check_int(config[key], f'config.{key}', low)
    every, k = config.checkpoint_every_steps, config.steps_per_call
    if every and (not k or every % k):
        raise ConfigError(f'config.checkpoint_every_steps={every} must be a multiple of '
                          f'config.steps_per_call={k} (a checkpoint is taken between calls); '
                          'set steps_per_call to a divisor of it')
    # lr 0 trains nothing and momentum >= 1 diverges: optim.make refuses both, so the config
    # does, before anything is written
    _check_optimizer(config.optimizer, 'config.optimizer')
    groups = config.get('optimizer_groups') or {}
    for label, group in groups.items():
        where = f'config.optimizer_groups.{label}'
        if not isinstance(group, (ml_collections.ConfigDict, dict)):
            raise ConfigError(f'{where} must hold optimizer keys (e.g. learning_rate), got '
                              f'{group!r}')
        _check_keys(group, ref.optimizer, f'optimizer_groups.{label}.')
        _check_optimizer({**config.optimizer.to_dict(), **dict(group)}, where)
    _check_int(config.model.kernel_size, 'config.model.kernel_size', 1)
    for key, low in (('depth', 0), ('width', 0), ('patch', 1), ('dim', 1), ('heads', 1)):
        _check_int(config.model[key], f'config.model.{key}', low)
    for key in ('hidden', 'channels', 'dense_widths'):
        v = config.model[key]
        if not isinstance(v, (tuple, list)) or not all(
                isinstance(w, numbers.Integral) and not isinstance(w, bool) and w > 0 for w in v):
            raise ConfigError(f'config.model.{key} must be a tuple of positive integers, got {v!r}')
    accepted = rule_registry.hyperparameters(config.rule)
    unknown = sorted(set(config.rule_kwargs.keys()) - set(accepted))
    if unknown:
        raise ConfigError(f'rule {config.rule!r} has no hyperparameter rule_kwargs.{unknown[0]}; '
                          f'valid: {", ".join(accepted) or "(none)"}')
    _check_rule_kwargs(config)
    parse_sweep(config.sweep, config)
    return config


def _check_rule_kwargs(config) -> None:
    """Each rule_kwargs value has the kind of its default in the rule's constructor.

    Raises:
      ConfigError: e.g. a string, a bool or a NaN where the rule takes a number.
    """
    defaults = rule_registry.defaults(config.rule)
    for name, value in config.rule_kwargs.items():
        if name not in defaults:
            continue
        what = rule_registry.kind_wanted(defaults[name], value)
        if what:
            raise ConfigError(f'config.rule_kwargs.{name} must be {what} (rule {config.rule}\'s '
                              f'default is {defaults[name]!r}), got {value!r}')


def sweep_member(config, values: dict):
    """`config` with one sweep member's values set (and no sweep), to be validated like a run.

    Raises:
      ConfigError: a value the key cannot take (e.g. a float for an integer key).
    """
    member = config.to_dict()
    member['sweep'] = ''
    member['mesh'] = ''  # a sweep splits its members, not the batch, over the devices
    # a rule hyperparameter is an integer if the rule's default is (an int in the config
    # for a float default, e.g. threshold=2, still sweeps over floats)
    defaults = (rule_registry.defaults(config.rule) if config.rule in rule_registry.RULES
                else {})
    for key, v in values.items():
        group, _, name = key.partition('.')
        if group == 'rule_kwargs':
            kind = defaults.get(name, member[group].get(name))
        else:
            kind = member[group][name]
        if isinstance(kind, numbers.Integral) and not isinstance(kind, bool):
            if not float(v).is_integer():
                raise ConfigError(f'{key}={v:g} is not an integer, as {key} must be')
            v = int(v)
        member[group][name] = v
    return ml_collections.ConfigDict(member)


def parse_sweep(spec: str, config=None) -> dict:
    """`'optimizer.learning_rate=1e-3,3e-3;rule_kwargs.threshold=1,2'` -> `{key: [values]}`.

    Only numbers under `optimizer.` or `rule_kwargs.` can be swept (the rule and
    optimizer are rebuilt per member from traced values); with `config`, each key
    must exist there.

    Raises:
      ConfigError: a malformed entry, a key that cannot be swept, a non-number.
    """
    axes = {}
    for item in (spec or '').replace(' ', '').split(';'):
        if not item:
            continue
        key, eq, vals = item.partition('=')
        group, _, name = key.partition('.')
        if key in axes:
            raise ConfigError(f'config.sweep={spec!r} names {key} twice; list all its values once '
                              f'({key}=V1,V2,...)')
        bad = not eq or group not in ('optimizer', 'rule_kwargs') or not name
        try:
            values = [float(v) for v in vals.split(',')]
        except ValueError:
            bad = True
        if bad or not values:
            raise ConfigError(f'config.sweep={spec!r} is not a sweep: write KEY=V1,V2[;KEY=V1,V2] '
                              'with numeric KEYs under optimizer. or rule_kwargs. (e.g. '
                              "--config.sweep='optimizer.learning_rate=0.001,0.003')")
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ConfigError(f'config.sweep: {key} lists {twice[0]:g} more than once, which '
                              'would train identical members; list each value once (seeds come '
                              'from --config.num_seeds)')
        if config is not None:
            sub = dict(config[group])
            if group == 'rule_kwargs':  # a hyperparameter the config leaves at its default
                sub = {**rule_defaults(config.rule), **sub}
            if name not in sub or isinstance(sub[name], (bool, str)) or not isinstance(
                    sub[name], numbers.Real):
                raise ConfigError(f'config.sweep: {key} is not a numeric key of this config; '
                                  f'sweepable: optimizer.learning_rate, optimizer.weight_decay, '
                                  f'... and the rule\'s numeric hyperparameters '
                                  f'(neurokit.rules.registry.defaults({config.rule!r}))')
        axes[key] = values
    if spec and not axes:
        raise ConfigError(f'config.sweep={spec!r} names no KEY=V1,V2; write e.g. '
                          "--config.sweep='optimizer.learning_rate=0.001,0.003', or leave it "
                          'empty for a single run')
    return axes


def parse_mesh(spec: str) -> dict:
    """`'data=4,stage=2'` -> `{'data': 4, 'stage': 2}`; `''` -> `{}` (every device on 'data').

    Raises:
      ConfigError: a malformed entry, an unknown or repeated axis, a size < 1.
    """
    axes = {}
    for item in (spec or '').replace(' ', '').split(','):
        if not item:
            continue
        name, eq, size = item.partition('=')
        if (not eq or name not in MESH_AXES or name in axes or not size.isascii()
                or not size.isdigit() or int(size) < 1):
            raise ConfigError(f'config.mesh={spec!r} is not a mesh: write AXIS=SIZE[,AXIS=SIZE] '
                              f'with axes {"/".join(MESH_AXES)} and sizes >= 1 '
                              '(e.g. --config.mesh=data=4), '
                              "or '' for every device on 'data'")
        axes[name] = int(size)
    return axes


def optimizer_groups(config) -> dict:
    """`config.optimizer_groups` as `{label: {key: value}}` (empty for a config without it)."""
    return {k: dict(v) for k, v in (config.get('optimizer_groups') or {}).items()}


def _check_optimizer(optimizer, where: str) -> None:
    """ConfigError for an optimizer value out of range (`optim.make` would refuse it)."""
    _one_of(optimizer['name'], optim.OPTIMIZERS, 'optimizer')
    _one_of(optimizer['schedule'], optim.SCHEDULES, 'schedule')
    ranges = {'learning_rate': (lambda v: v > 0, 'a finite number > 0'),
              'momentum': (lambda v: 0 <= v < 1, 'a finite number in [0, 1)')}
    for key in ('learning_rate', 'momentum', 'weight_decay', 'warmup_epochs', 'grad_clip',
                'initial_weight_decay', 'initial_weight_decay_epochs'):
        ok, what = ranges.get(key, (lambda v: v >= 0, 'a finite number >= 0'))
        try:
            check_range(f'{where}.{key}', optimizer[key], ok, what)
        except (TypeError, ValueError) as e:
            raise ConfigError(str(e)) from None


def _validate_devices(config) -> None:
    _one_of(config.parallel, PARALLEL, 'parallel mode')
    _one_of(config.feed, FEEDS, 'feed')
    if config.feed == 'host' and (config.parallel == 'pmap' or config.sweep):
        what = '--config.parallel=pmap' if config.parallel == 'pmap' else 'a sweep'
        raise ConfigError(f"--config.feed=host with {what}: the host feed sends each process's "
                          'rows of a batch to a sharded or one-device run (a sweep trains every '
                          "member on the whole data set); use --config.feed=device, or "
                          '--config.parallel=sharded')
    _check_type(config.fsdp, bool, 'config.fsdp', 'True or False')
    _check_type(config.async_checkpoints, bool, 'config.async_checkpoints', 'True or False')
    axes = parse_mesh(config.mesh)
    if config.parallel != 'sharded' and axes.get('stage', 1) > 1:
        raise ConfigError(f'config.mesh={config.mesh!r}: a stage axis needs '
                          "--config.parallel=sharded; drop 'stage=' from --config.mesh")
    if config.fsdp and config.parallel != 'sharded':
        raise ConfigError(f'config.fsdp=True needs --config.parallel=sharded, not '
                          f'{config.parallel!r}')
    batch = config.batch_size
    # a run splits each batch over 'data'; a sweep splits its members (placement.member_devices)
    split_batch = axes.get('data') and not (isinstance(config.sweep, str) and config.sweep.strip())
    if split_batch and isinstance(batch, numbers.Integral) and batch % axes['data']:
        raise ConfigError(f'config.batch_size={batch} does not divide by the data axis size '
                          f"{axes['data']} of --config.mesh={config.mesh}; use a multiple of it")
    check_distributed(config)


def check_distributed(config) -> None:
    """Checks the `distributed.*` keys alone: what joining the other processes needs, before
    the rest of the config is validated (`validate` calls it too).

    Raises:
      ConfigError: one line naming the key and the fix.
    """
    d = config.distributed
    _check_type(d.enabled, bool, 'config.distributed.enabled', 'True or False')
    _check_type(d.coordinator_address, str, 'config.distributed.coordinator_address',
                "a 'host:port' string")
    for key, low in (('num_processes', 0), ('process_id', -1)):
        _check_int(d[key], f'config.distributed.{key}', low)
    explicit = bool(d.coordinator_address) or d.num_processes or d.process_id >= 0
    if explicit and not d.enabled:
        raise ConfigError('config.distributed settings are given but config.distributed.enabled '
                          'is False; add --config.distributed.enabled=True')
    if explicit and not (d.coordinator_address and d.num_processes and d.process_id >= 0):
        raise ConfigError('config.distributed needs all of coordinator_address, num_processes and '
                          'process_id (or none of them, to read them from the TPU/SLURM '
                          'environment)')
    if d.num_processes and d.process_id >= d.num_processes:
        raise ConfigError(f'config.distributed.process_id={d.process_id} must be < '
                          f'num_processes={d.num_processes}')
    if d.enabled and config.parallel != 'sharded':
        raise ConfigError(f'config.distributed.enabled=True needs --config.parallel=sharded, not '
                          f'{config.parallel!r}')


def check_devices(config, num_devices: int, process_count: int = 1) -> dict:
    """The mesh axis sizes for `num_devices` visible devices; checks they fit.

    Args:
      config: a validated config.
      num_devices: devices visible to the run (all processes').
      process_count: number of processes (a multi-host mesh must use every device).

    Returns:
      `{'data': D, 'stage': S}` with `D * S` devices to use ('none': `{'data': 1, 'stage': 1}`).

    Raises:
      ConfigError: the mesh needs more devices than there are, leaves some
        processes' devices out, or the batch does not divide by the data axis.
    """
    if config.parallel == 'none':
        return {'data': 1, 'stage': 1}
    axes = parse_mesh(config.mesh)
    stage = axes.get('stage', 1)
    data = axes.get('data', num_devices // stage)
    if 'data' not in axes and num_devices % stage:
        raise ConfigError(f'config.mesh={config.mesh!r}: stage={stage} does not divide the '
                          f'{num_devices} visible devices; give data= as well')
    if data * stage > num_devices:
        raise ConfigError(f'config.mesh={config.mesh!r} needs {data * stage} devices but '
                          f'{num_devices} are visible; lower the axis sizes, or pass '
                          '--config.mesh= '
                          'for every device')
    if process_count > 1 and data * stage != num_devices:
        raise ConfigError(f'config.mesh={config.mesh!r} uses {data * stage} of the {num_devices} '
                          f'devices of {process_count} processes; a multi-host mesh must use them '
                          "all (--config.mesh='')")
    if config.batch_size % data:
        raise ConfigError(f'config.batch_size={config.batch_size} does not divide by the data axis '
                          f'size {data} ({num_devices} devices); use a multiple of {data} or set '
                          '--config.mesh=data=N')
    return {'data': data, 'stage': stage}


def _check_type(value, kind, name, what):
    if not isinstance(value, kind):
        raise ConfigError(f'{name} must be {what}, got {value!r}')


def validate_with_data(config, dataset):
    """Checks the parts of a config that depend on the loaded data set; builds the model and
    the rule (cheap: no arrays are allocated).

    A model that does not fit the input (e.g. 'lenet' on 8x8 digits), a bad rule
    hyperparameter or a rule without the layerwise form `config.layerwise_updates` asks
    for fails here, before anything is compiled.

    Args:
      config: a validated config.
      dataset: the loaded data set (`x_train`, `input_shape`, `num_classes` are read).

    Returns:
      `(model, rule)`, built once from the config: the run can use them as they are.

    Raises:
      ConfigError: one line naming the problem.
    """
    total = dataset.x_train.shape[0]
    held_out = config.validation_examples
    if held_out >= total:
        raise ConfigError(f'config.validation_examples={held_out} leaves none of the {total} '
                          f'training examples of {config.dataset} to train on; lower '
                          '--config.validation_examples')
    n = total - held_out
    n = min(config.train_limit, n) if config.train_limit else n
    if config.batch_size > n:
        raise ConfigError(f'config.batch_size={config.batch_size} exceeds the {n} training '
                          f'examples of {config.dataset}'
                          + (f' ({held_out} held out for validation)' if held_out else '')
                          + '; lower --config.batch_size')
    m = config.model
    try:
        model = models.build(m.name, dataset.input_shape, dataset.num_classes, hidden=m.hidden,
                             activation=m.activation, init=m.init, dtype=m.dtype,
                             channels=m.channels, kernel_size=m.kernel_size,
                             dense_widths=m.dense_widths, depth=m.depth, width=m.width,
                             norm=m.norm, patch=m.patch, dim=m.dim, heads=m.heads)
    except (ValueError, TypeError) as e:
        raise ConfigError(f'model {m.name!r} does not fit {config.dataset} inputs of shape '
                          f'{dataset.input_shape}: {" ".join(str(e).split())}; choose another '
                          '--config.model.name or model settings') from None
    kwargs = config.rule_kwargs.to_dict()
    try:
        rule = rule_registry.build(config.rule, model, layerwise=config.layerwise_updates,
                                   **kwargs)
    except (ValueError, TypeError) as e:
        defaults = rule_registry.defaults(config.rule)
        changed = {k: v for k, v in kwargs.items() if k not in defaults or defaults[k] != v}
        raise ConfigError(f'rule {config.rule!r} cannot be built'
                          + (f' with rule_kwargs {changed}' if changed else '')
                          + f': {" ".join(str(e).split())}') from None
    return model, rule


# ----------------------------------------------------------------------------- rule defaults


def _flag_kind(value) -> bool:
    """Whether a command-line flag can carry `value`'s kind (what ml_collections parses)."""
    return isinstance(value, (bool, numbers.Real, str, tuple, list))


def rule_defaults(rule: str) -> dict:
    """The hyperparameters of rule `rule`'s constructor that a config can hold, with their
    defaults (those without a default, or with one of no flag kind such as None, are
    left to the constructor). `{}` for an unknown rule (validate names it)."""
    if rule not in rule_registry.RULES:
        return {}
    return {k: v for k, v in rule_registry.defaults(rule).items() if _flag_kind(v)}


def with_rule_defaults(config) -> ml_collections.ConfigDict:
    """Adds to `config.rule_kwargs` every hyperparameter of `config.rule` it does not set,
    with the constructor's default, so that a config file lists only what differs and
    `--config.rule_kwargs.NAME=V` can set any of them. Changes `config` in place (a
    locked config too) and returns it; the values it adds are the ones the rule would
    use anyway, so the run computes the same numbers.
    """
    kwargs = config.rule_kwargs
    if not isinstance(kwargs, ml_collections.ConfigDict):
        return config  # validate names the problem
    missing = {k: v for k, v in rule_defaults(config.rule).items() if k not in kwargs}
    if missing:
        with config.unlocked():
            for k, v in missing.items():
                kwargs[k] = v
    return config


def fill_defaults(stored: dict) -> dict:
    """A config as stored in config.json (plain JSON), with the keys it lacks set to what
    a run that lacked them used: `base_config()`'s values (e.g. a key added since) and the
    rule constructor's defaults under `rule_kwargs`. For comparing a stored config with a
    new one, so that a run written before a key existed resumes.
    """
    import json
    base = json.loads(json.dumps(base_config().to_dict()))
    out = _merge(base, stored)
    if isinstance(out.get('rule_kwargs'), dict) and isinstance(out.get('rule'), str):
        rule_kw = json.loads(json.dumps(rule_defaults(out['rule'])))
        out['rule_kwargs'] = {**rule_kw, **out['rule_kwargs']}
    return out


def _merge(defaults: dict, values: dict) -> dict:
    out = dict(values)
    for k, v in defaults.items():
        if k not in out:
            out[k] = v
        elif isinstance(v, dict) and v and isinstance(out[k], dict):
            out[k] = _merge(v, out[k])
    return out
