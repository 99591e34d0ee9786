"""Training: state, the compiled step, ONE scanned epoch with hooks, compiled evaluation.

(Optimizers from a config: `neurokit.optim`; runs from a config: `neurokit.experiment`.)
"""
from neurokit.train.loop import Guard, epoch_order, make_epoch, make_evaluate, param_groups
from neurokit.train.state import LayerwiseOptState, TrainState, init_state, shuffle_key, step_key
from neurokit.train.step import make_train_step

__all__ = ['Guard', 'LayerwiseOptState', 'TrainState', 'epoch_order', 'init_state',
           'make_epoch', 'make_evaluate', 'make_train_step', 'param_groups', 'shuffle_key',
           'step_key']
