"""Training: state, compiled epoch and evaluation, `run` (optimizers: `neurokit.optim`)."""
from neurokit.train.loop import epoch_order, make_epoch, make_evaluate, make_train_step
from neurokit.train.run import build, run
from neurokit.train.state import LayerwiseOptState, TrainState, init_state, shuffle_key, step_key

__all__ = ['LayerwiseOptState', 'TrainState', 'build', 'epoch_order', 'init_state', 'make_epoch',
           'make_evaluate', 'make_train_step', 'run', 'shuffle_key', 'step_key']
