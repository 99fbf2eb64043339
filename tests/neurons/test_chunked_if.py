"""``ChunkedIF``'s inference loop against ``neuron_multistep`` (same spikes, same membrane), and the neuron input
policy on it: NaN propagated to the spikes, across chunks too (``deepspike.neurons.dynamics``)."""

import pytest
import torch

from deepspike.neurons import neuron_multistep
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.chunked_if import ChunkedIF


def _currents(seed=0, shape=(40, 3, 7)):
    """Currents on a grid of 1/8 (exact in float32), so the membrane hits the threshold exactly (ties)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-4, 9, shape, generator=g).float() / 8


@pytest.mark.parametrize("reset", ["zero", "subtract", "none"])
def test_inference_loop_equals_neuron_multistep(reset):
    x = _currents()
    neuron = ChunkedIF(1.0, reset)
    with torch.no_grad():
        fast, v_fast, _ = neuron._fast(x, None)
    ref, v_ref = neuron_multistep(x, neuron.params, fused=False)
    assert torch.equal(fast, ref) and 0.05 < ref.mean() < 0.95
    torch.testing.assert_close(v_fast, v_ref, rtol=0, atol=0)


@pytest.mark.parametrize("grad", [False, True])
def test_a_nan_current_gives_nan_spikes_in_every_later_chunk(grad):
    x = _currents(1, (30, 2, 5))
    x[5, 1, 2] = float("nan")
    neuron = ChunkedIF(1.0, "zero")
    with torch.set_grad_enabled(grad), temporal_carry(neuron):
        parts = [neuron(x[:7]), neuron(x[7:19]), neuron(x[19:])]
    s = torch.cat([p.detach() for p in parts])
    nan = torch.zeros_like(s, dtype=torch.bool)
    nan[5:, 1, 2] = True
    assert torch.equal(torch.isnan(s), nan)
    clean = x.clone()
    clean[5, 1, 2] = 0.0
    with torch.no_grad():
        assert torch.equal(s[:, 0], neuron(clean)[:, 0])  # the other sample is untouched


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_a_low_precision_input_integrates_in_float32_as_neuron_multistep_does(dtype, reset):
    # 0.0011 per step: in bfloat16, 0.5 + 0.0011 rounds back to 0.5, so a bfloat16 membrane stalls below threshold
    x = (torch.full((2000, 2, 3), 0.0011) + torch.linspace(0, 1e-3, 6).view(2, 3)).to(dtype)
    neuron = ChunkedIF(1.0, reset)
    with torch.no_grad():
        fast, v_fast, _ = neuron._fast(x, None)
    v, expected = torch.zeros(2, 3), []  # plain loop in float32 on the same (rounded) currents
    for x_t in x.float():
        h = v + x_t
        s = (h >= 1.0).float()
        v = h * (1 - s) if reset == "zero" else h - s
        expected.append(s)
    assert fast.dtype == dtype and v_fast.dtype == torch.float32
    assert torch.equal(fast.float(), torch.stack(expected)) and fast.float().sum() >= 12
    torch.testing.assert_close(v_fast, v, rtol=0, atol=1e-5)


@pytest.mark.parametrize("grad", [False, True])
def test_a_low_precision_stream_gives_one_calls_spikes(grad):
    x = (torch.rand(60, 2, 5, generator=torch.Generator().manual_seed(3)) * 0.1).bfloat16()
    neuron = ChunkedIF(1.0, "subtract")
    with torch.set_grad_enabled(grad):
        whole = neuron(x)
        with temporal_carry(neuron):
            parts = torch.cat([neuron(x[i:i + 1]) for i in range(60)])
    assert torch.equal(parts, whole) and whole.float().sum() > 5


@pytest.mark.parametrize("grad", [False, True])
def test_a_batch_of_another_size_inside_temporal_carry_is_one_config_error(grad):
    """The carried membrane [2, 3] met a batch of 4: a RuntimeError of the in-place add in the no-gradient loop."""
    from deepspike.core.errors import ConfigError

    neuron = ChunkedIF()
    with temporal_carry(neuron), torch.set_grad_enabled(grad):
        neuron(torch.rand(5, 2, 3))
        with pytest.raises(ConfigError, match=r"^initial membrane shape \(2, 3\) does not match one step of the "
                                              r"input \(4, 3\)$"):
            neuron(torch.rand(5, 4, 3))
