"""What a run's placement refuses or tells the user (on one CPU device)."""
import pytest

from neurokit.experiment import config as config_lib
from neurokit.experiment import placement
from neurokit.experiment.placement import Placement


def test_a_stage_axis_is_refused_in_training_runs(monkeypatch):
    # `run` is data-parallel only: a stage axis would repeat the same work on more devices.
    monkeypatch.setattr(placement.config_lib, 'check_devices',
                        lambda *a, **k: {'data': 1, 'stage': 2})
    config = config_lib.base_config()
    config.mesh = 'data=1,stage=2'
    with pytest.raises(config_lib.ConfigError, match="stage>1 would repeat"):
        Placement.from_config(config)


@pytest.mark.parametrize('rule,noted', [('ff', True), ('cff', True), ('ipc', True),
                                        ('bp', False), ('mf', False)])
def test_pmap_notes_rules_whose_numbers_differ_from_one_device(rule, noted):
    config = config_lib.base_config()
    config.rule, config.parallel = rule, 'pmap'
    notes = Placement('pmap', {'data': 1, 'stage': 1}).notes(config, 100)
    assert any('parallel=pmap' in n for n in notes) == noted
    assert not Placement('sharded', {'data': 1, 'stage': 1}).notes(config, 100)


def test_multi_process_runs_say_how_many_examples_are_left_out():
    place = Placement('none', {'data': 1, 'stage': 1})
    place.processes, place.devices = 2, 8  # as on two hosts with 4 devices each
    assert place.train_rows(1437) == 1432
    (note,) = place.notes(config_lib.base_config(), 1437)
    assert note.startswith('5 of 1437 training examples are left out')
