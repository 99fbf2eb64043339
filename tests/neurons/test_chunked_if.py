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
