"""What entrypoints share: user errors become one line on stderr and exit code 2."""
from __future__ import annotations

import json
import sys

from neurokit.data import DataError
from neurokit.errors import ConfigError, TrainingError, WorkdirError

USER_ERRORS = (ConfigError, DataError, WorkdirError, TrainingError)
EXIT_USER_ERROR = 2


def run_main(config, workdir):
    """Runs `neurokit.train.run` and prints the summary; user errors exit 2 with one line."""
    from neurokit.train import run  # imported late so --help stays fast
    try:
        summary = run(config, workdir)
    except USER_ERRORS as e:
        print(f'error: {" ".join(str(e).split())}', file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    keep = ('rule', 'dataset', 'epochs', 'test_accuracy', 'train_seconds', 'samples_per_second')
    print(json.dumps({k: summary[k] for k in keep}))
    return summary
