"""parallel.py keeps one figure-1 run per platform and member count: a GPU run (the issue's
32 seeds) never replaces the CPU figure, and the report judges it against its 4x budget."""
from experiments.benchmarks import parallel


def _fig(members, ratio, platform='cpu'):
    return {'n_train': 60000, 'members': members, 'repeats': 2, 'platform': platform,
            'machine': 'NVIDIA H200 (gpu)' if platform == 'gpu' else '2-core CPU',
            'seconds_1': 1.0, f'seconds_{members}': ratio, 'ratio': ratio,
            'command': 'cmd', 'date': '2026-11-29'}


def test_gpu_run_is_stored_beside_the_cpu_runs():
    stored = {'8': _fig(8, 7.4), '2': _fig(2, 1.9)}  # the older files' CPU keys
    gpu = _fig(32, 3.5, 'gpu')
    stored[parallel.member_key(gpu)] = gpu
    assert parallel.member_key(gpu) == 'gpu:32'
    assert parallel.member_key(_fig(8, 7.4)) == '8'
    assert parallel.largest(stored)['members'] == 8          # the CPU figure is unchanged
    assert parallel.largest(stored, 'gpu') is gpu
    assert parallel.largest({'8': _fig(8, 7.4)}, 'gpu') is None


def test_report_judges_the_gpu_figure_against_four_times_one_seed():
    traces = {'epochs': 3, 'sweep_epoch_traces': 1, 'sharded_epoch_traces': 1}
    md_pass = parallel.markdown('cmd', _fig(8, 7.4), None, traces, _fig(32, 3.9, 'gpu'))
    md_short = parallel.markdown('cmd', _fig(8, 7.4), None, traces, _fig(32, 8.9, 'gpu'))
    md_none = parallel.markdown('cmd', _fig(8, 7.4), None, traces)
    assert '3.90x' in md_pass and 'PASS' in md_pass.split('3.90x')[1].split('\n')[0]
    assert 'SHORT' in md_short.split('8.90x')[1].split('\n')[0]
    assert 'not measured' in md_none
