"""The reference loop of LIF/PLIF with tensor (learnable) decay and threshold (``neurons.learnable_dynamics``),
against trajectories worked out by hand."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons import NeuronParams
from deepspike.neurons.learnable_dynamics import learnable_multistep, learnable_multistep_reference


def test_plif_subtract_golden_per_channel_thresholds():
    """PLIF (Fang et al., ICCV 2021): V_t = V_{t-1} + (X_t - V_{t-1}) / tau, tau = 2 -> h_t = v_{t-1}/2 + X_t/2;
    reset by subtraction v_t = h_t - th s_t. Channel 0: th 3/4, channel 1: th 3/2 with twice the input (every
    value doubles). Dyadic inputs, so the arithmetic is exact; no ties. Channel 0 is the trajectory worked out in
    tests/neurons/test_dynamics.py::test_lif_subtract_golden_with_threshold_three_quarters (the drive X_t / 2 there
    is x_t): spikes at t2, t3 and v_5 = 41/64, where subtracting 1 would not fire at t3."""
    x0 = torch.tensor([1.0, 1.25, 1.5, 0.5, 1.0], dtype=torch.float64)  # X_t; the drive is X_t / 2
    x = torch.stack([x0, 2 * x0], dim=1).view(5, 1, 2)  # [T, B, C]
    decay = torch.tensor([0.5, 0.5], dtype=torch.float64)  # 1 - 1/tau
    threshold = torch.tensor([0.75, 1.5], dtype=torch.float64)
    s, v_t = learnable_multistep_reference(x, decay, threshold, NeuronParams(reset="subtract"), decay_input=True)
    assert s[:, 0, 0].tolist() == [0, 1, 1, 0, 0]
    assert s[:, 0, 1].tolist() == [0, 1, 1, 0, 0]
    assert v_t.flatten().tolist() == [0.640625, 1.28125]  # 41/64 and 2 * 41/64


@pytest.mark.parametrize("per_channel", [False, True])
def test_the_loop_on_low_precision_input_keeps_a_float32_state_and_the_input_dtype(per_channel):
    """fused=False (DEEPSPIKE_FUSED=0, a registered surrogate) on bfloat16 currents (a layer under autocast) with
    float32 parameters: the spikes of the float32 loop on the same values, returned as bfloat16, as the kernels give.
    Before, a per-layer decay (shape ()) ran the membrane in bfloat16 (273 of 262,144 spikes differed from the float32
    loop here) and a per-channel one ([C, 1]) promoted it to float32 and returned float32 spikes."""
    torch.manual_seed(0)
    x = (torch.rand(64, 16, 4, 64) * 0.9).bfloat16()  # [T, B, C, F]
    shape = (4, 1) if per_channel else ()
    decay, threshold = torch.full(shape, 2 / 3), torch.full(shape, 0.3)  # float32, as nn.Parameters under autocast
    params = NeuronParams(reset="none")
    s, v = learnable_multistep(x, decay, threshold, params, decay_input=True, fused=False)
    s32, v32 = learnable_multistep_reference(x.float(), decay, threshold, params, decay_input=True)
    assert s.dtype == v.dtype == torch.bfloat16
    assert torch.equal(s.float(), s32) and 0 < s32.mean() < 1
    assert torch.equal(v, v32.bfloat16())


def test_a_forced_kernel_refused_by_the_switch_names_every_off_value(monkeypatch):
    """``DEEPSPIKE_FUSED=off`` switches the kernels off as ``0`` does; the refusal said 'DEEPSPIKE_FUSED not 0'."""
    monkeypatch.setenv("DEEPSPIKE_FUSED", "off")
    with pytest.raises(ConfigError, match="DEEPSPIKE_FUSED not 0/false/off/no and a surrogate"):
        learnable_multistep(torch.randn(2, 3), torch.tensor(0.5), torch.tensor(1.0), NeuronParams(), fused=True)


def test_a_forced_kernel_on_an_empty_batch_gives_empty_spikes():
    """As ``neuron_multistep``'s: ``fused=True`` on a batch of no sample was refused as if numba were missing."""
    s, v = learnable_multistep(torch.rand(3, 0, 4), torch.tensor(0.5), torch.tensor(1.0), NeuronParams(), fused=True)
    assert s.shape == (3, 0, 4) and v.shape == (0, 4)
