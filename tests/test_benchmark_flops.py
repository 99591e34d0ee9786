"""`common.step_flops` (the FLOPs behind the GPU part's TFLOP/s) against the matmul closed forms.

MLP 784-256-256-256-10, batch B, layer sizes (n_i, n_{i+1}), S = sum n_i n_{i+1}:
  * bp: forward 2BS, weight gradients 2BS, input cotangents 2BS minus the first layer's
    (the data is not differentiated): 6BS - 2B*784*256;
  * mf: forward 2BS and weight gradients 2BS, no cotangent crosses a layer except from the
    output layer into the last hidden layer (2B*256*10), plus each of the two earlier hidden
    layers' projection to 10 scores (forward and gradient, 4B*256*10 each).
Elementwise work (activations, softmax, Adam) adds a few per cent on top.
"""
import pytest

from experiments.benchmarks import common

B, H = 128, (256, 256, 256)
DIMS = [784, *H, 10]
S = sum(a * b for a, b in zip(DIMS, DIMS[1:]))


@pytest.mark.parametrize('rule, matmuls', [
    ('bp', B * (6 * S - 2 * 784 * 256)),
    ('mf', 4 * B * S + 2 * B * 256 * 10 + 2 * 4 * B * 256 * 10),
])
def test_step_flops_match_the_matmul_closed_form(rule, matmuls):
    flops = common.step_flops(rule, H, 'float32', B)
    assert matmuls <= flops <= 1.06 * matmuls


def test_mf_step_needs_about_two_thirds_of_backprops_flops():
    wide = (1024,) * 4  # hidden layers dominate: the 4BS vs 6BS ratio shows
    ratio = common.step_flops('mf', wide, 'float32', B) / common.step_flops('bp', wide, 'float32', B)
    assert 0.6 < ratio < 0.75


def test_profile_summary_counts_device_kernels_only():
    # A synthetic Chrome trace: host events must be ignored; two steps of three kernels.
    events = [{'ph': 'M', 'name': 'process_name', 'pid': 1, 'args': {'name': '/device:GPU:0'}},
              {'ph': 'M', 'name': 'process_name', 'pid': 2, 'args': {'name': '/host:CPU'}},
              {'ph': 'X', 'pid': 2, 'name': 'PjitFunction(step)', 'dur': 1000.0}]
    for _ in range(2):
        events += [{'ph': 'X', 'pid': 1, 'name': 'gemm_fusion_dot_general_3', 'dur': 30.0},
                   {'ph': 'X', 'pid': 1, 'name': 'loop_add_fusion_1', 'dur': 5.0},
                   {'ph': 'X', 'pid': 1, 'name': 'nvjet_hsh_256x128', 'dur': 20.0}]
    kernels = common.device_kernels(events)
    assert len(kernels) == 6
    s = common.summarize_kernels(kernels, steps=2, top=2)
    assert s['device_us_per_step'] == 55.0 and s['kernels_per_step'] == 3.0
    assert s['us_per_step_by_kind'] == {'matmul': 50.0, 'fusion': 5.0, 'copy': 0.0, 'other': 0.0}
    assert [t['name'] for t in s['top']] == ['gemm_fusion_dot_general_3', 'nvjet_hsh_256x128']
    assert s['top'][0]['calls_per_step'] == 1.0 and s['top'][0]['us_per_step'] == 30.0


HLO = """HloModule jit_train_step, entry_computation_layout={(f32[8,4]{1,0})->f32[8,4]{1,0}}

%fused_add (p0: f32[8,4], p1: f32[8,4]) -> f32[8,4] {
  %p0 = f32[8,4]{1,0} parameter(0)
  %p1 = f32[8,4]{1,0} parameter(1)
  %inner = f32[8,4]{1,0} fusion(%p0, %p1), kind=kLoop, calls=%nothing
  ROOT %add = f32[8,4]{1,0} add(%p0, %p1)
}

ENTRY %main.1 (x: f32[8,4], w: f32[4,4]) -> (f32[8,4], f32[]) {
  %x = f32[8,4]{1,0} parameter(0)
  %w = f32[4,4]{1,0} parameter(1)
  %c = f32[] constant(0)
  %gemm_fusion_dot.3 = f32[8,4]{1,0} fusion(%x, %w), kind=kCustom, calls=%g
  %cublas-gemm.1 = (f32[8,4]{1,0}, s8[0]{0}) custom-call(%x, %w), custom_call_target="__cublas$gemm"
  %get-tuple-element.2 = f32[8,4]{1,0} get-tuple-element(%cublas-gemm.1), index=0
  %loop_add_fusion = (f32[8,4]{1,0}, f32[8,4]{1,0}) fusion(%gemm_fusion_dot.3, %x), kind=kLoop, calls=%fused_add
  %input_reduce_fusion = f32[] fusion(%x), kind=kInput, calls=%r
  %fusion.7 = f32[8,4]{1,0} fusion(%x), kind=kCustom, calls=%softmax
  %copy.1 = f32[4,4]{0,1} copy(%w)
  %opt-barrier.1 = (f32[8,4]{1,0}) opt-barrier(%fusion.7)
  %bitcast.1 = f32[32]{0} bitcast(%x)
  ROOT %tuple.1 = (f32[8,4]{1,0}, f32[]) tuple(%get-tuple-element.2, %input_reduce_fusion)
}
"""


def test_kernel_counts_reads_the_entry_computation_only():
    # written above: 2 gemms (a gemm fusion, a cuBLAS call), 1 loop fusion, 1 reduction, 1 other
    # custom fusion, 1 copy; parameters, constants, tuples, bitcasts and the barrier launch
    # nothing, and the fusion inside %fused_add is not a kernel of its own
    assert common.kernel_counts(HLO) == {'gemm': 2, 'loop': 1, 'reduce': 1, 'triton': 1,
                                         'copy': 1, 'total': 6}
    with pytest.raises(ValueError, match='ENTRY'):
        common.kernel_counts('HloModule m\n')
