"""`common.train_curves`: extra prediction rules evaluate the same trained members."""
import numpy as np

from experiments.benchmarks import common
from experiments.configs import mf as mf_config
from neurokit import data as data_lib


def _tiny_config():
    config = mf_config.get_config()
    config.model.hidden, config.batch_size, config.epochs, config.num_seeds = (32, 32), 64, 2, 2
    return config


def test_eval_variants_do_not_change_training():
    ds = data_lib.load('digits')
    x, y = ds.x_train[:600], ds.y_train[:600]
    xv, yv = ds.x_test, ds.y_test
    config = _tiny_config()
    combine = config.copy_and_resolve_references()
    combine.rule_kwargs.prediction = 'combine'
    curves = common.train_curves(config, x, y, xv, yv, {'combine': combine})
    alone = common.train_curve(config, x, y, xv, yv)
    # Training does not depend on the prediction mode, so the default curve is the one a
    # run without variants produces, member for member.
    np.testing.assert_allclose(curves[''], alone, atol=1e-6)
    assert np.shape(curves['combine']) == (2, 2)  # epochs x members
    # The variant is evaluated with its own predict (the sum of every layer's scores).
    assert not np.allclose(curves['combine'], curves[''])


def test_pick_takes_the_best_final_validation_accuracy_per_rule():
    runs = [{'rule': 'mf', 'final_val_accuracy': 0.5, 'learning_rate': 1},
            {'rule': 'bp', 'final_val_accuracy': 0.9, 'learning_rate': 2},
            {'rule': 'mf', 'final_val_accuracy': 0.7, 'learning_rate': 3},
            {'rule': 'mf', 'final_val_accuracy': 0.7, 'learning_rate': 4}]
    assert common.pick_best(runs, 'mf')['learning_rate'] == 3  # ties: the first
    assert common.pick_best(runs, 'bp')['learning_rate'] == 2
