"""Errors a user can fix. Each message is one line naming the problem and the fix."""


class ConfigError(ValueError):
    """A config key, type, value or combination is invalid."""


class WorkdirError(OSError):
    """The workdir cannot be used (not writable, or holds another run)."""


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss)."""


class CheckpointOrderError(WorkdirError, ValueError):
    """A checkpoint would be saved at or before the newest one (which it would overwrite,
    or which a resume would read instead)."""
