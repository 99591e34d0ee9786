"""Step granularity: an epoch in calls of K steps (`make_epoch(steps=K)`) is the epoch.

The calls take the epoch's batches and keys (a traced first step), so the parameters
after an epoch of calls equal the one-program epoch's; the runner adds the calls'
metrics up (`MetricSums`) into the epoch's mean over the steps taken.
"""
import jax
import numpy as np
import optax
import pytest

from neurokit import models, rules, train
from neurokit.experiment import config as config_lib
from neurokit.experiment.epochs import MetricSums
from neurokit.experiment.errors import ConfigError


def test_an_epoch_in_calls_of_k_steps_is_the_one_program_epoch(digits):
    x, y = digits[0][:640], digits[1][:640]  # 10 steps of 64: calls of 4, 4 and 2
    model = models.mlp((8, 8, 1), 10, hidden=(16,))
    rule, opt = rules.build('bp', model), optax.adam(1e-2)
    state = train.init_state(jax.random.PRNGKey(0), model, rule, opt)
    whole, metrics = jax.jit(train.make_epoch(rule, opt, 64))(state, x, y, 1)
    chunk = jax.jit(train.make_epoch(rule, opt, 64, steps=4))
    tail = jax.jit(train.make_epoch(rule, opt, 64, steps=2))
    s = state
    for start, fn in ((0, chunk), (4, chunk), (8, tail)):
        s, _ = fn(s, x, y, 1, start)
    assert int(s.step) == int(whole.step) == 10
    for a, b in zip(jax.tree.leaves(s.params), jax.tree.leaves(whole.params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert np.max(np.abs(np.asarray(s.params['layers'][0]['w'])
                         - np.asarray(state.params['layers'][0]['w']))) > 1e-3  # it trained
    with pytest.raises(ValueError, match='steps=11 exceeds the 10 steps of an epoch'):
        train.make_epoch(rule, opt, 64, steps=11)(state, x, y, 0)


def test_metric_sums_are_the_mean_over_the_steps_taken():
    one = MetricSums()
    one.add({'loss': np.float32(0.3)}, 7, 1.0)
    assert one.means()['loss'] == float(np.float32(0.3))  # one call: its own mean, bit for bit
    sums = MetricSums()
    sums.add({'loss': np.array([1.0, 2.0], np.float32), 'skipped_steps': np.array([0, 4])},
             np.array([4, 0]), 1.0)
    sums.add({'loss': np.array([3.0, 5.0], np.float32), 'skipped_steps': np.array([0, 0])},
             np.array([2, 2]), 0.5)
    back = MetricSums.from_json(sums.to_json())  # as a mid-epoch checkpoint keeps them
    got = back.means()
    assert got['loss'] == [float(np.float32(10 / 6)), 5.0]  # a call with no step taken: ignored
    assert got['skipped_steps'] == [0, 4] and back.seconds == 1.5
    none = MetricSums()
    none.add({'loss': np.float32(np.nan)}, 0, 0.0)
    assert np.isnan(none.means()['loss'])  # every step skipped


def test_checkpoints_between_calls_need_calls_that_divide_them():
    c = config_lib.base_config()
    c.steps_per_call, c.checkpoint_every_steps = 30, 100
    with pytest.raises(ConfigError, match=r'^config.checkpoint_every_steps=100 must be a multiple '
                                          r'of config.steps_per_call=30'):
        config_lib.validate(c)
    c.steps_per_call, c.checkpoint_every_steps = 0, 100
    with pytest.raises(ConfigError, match='multiple of config.steps_per_call=0'):
        config_lib.validate(c)
    c.steps_per_call = 50
    config_lib.validate(c)


def test_a_long_epoch_shows_its_steps_without_flooding_a_log():
    import io
    from neurokit.experiment.metrics import Progress
    log = io.StringIO()
    p = Progress(5, 'on', stream=log)
    p.within(1, 100, 400, lambda: [0.5, 0.7])
    assert log.getvalue() == ''  # a plain log gets a line at most every EVERY seconds
    p._last -= Progress.EVERY
    p.within(1, 200, 400, lambda: [0.5, 0.7])
    assert log.getvalue() == 'epoch 2/5  step 200/400  loss 0.6000\n'

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    term = Terminal()
    bar = Progress(5, 'auto', stream=term)
    bar.within(1, 100, 400, lambda: 0.25)  # a terminal's bar is redrawn at every call
    assert term.getvalue().startswith('\r[#####') and 'step 100/400  loss 0.2500' in term.getvalue()
