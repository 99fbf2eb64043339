"""lee2020's output layer (``layers.leaky_integrator``) on bfloat16 currents (train.precision=bf16)."""

import pytest
import torch

from deepspike.layers.leaky_integrator import LeakyIntegratorReadout


@pytest.mark.parametrize("autocast", [False, True])
def test_a_bfloat16_readout_weights_and_sums_in_float32(autocast):
    """``V(T) / T = sum_t leak^(T-t) x_t / T`` of bfloat16 currents: the powers were rounded to bfloat16 (0.99 is
    0.98828125 there) and the product taken in bfloat16, 2.2x the rounding of the exact score away (4.4e-3 on scores
    of 0.74, T = 100); now float32 and the score rounded once (as ``MembraneReadout``), against a float64 loop over
    the same bfloat16 currents; the backward stays lee2020's 1/T."""
    steps, leak = 100, 0.99
    x = (torch.rand(steps, 64, 10, generator=torch.Generator().manual_seed(0)) * 0.02 * steps).bfloat16()
    x.requires_grad_()
    v = torch.zeros(64, 10, dtype=torch.float64)
    for x_t in x.detach().double():
        v = leak * v + x_t
    expected = v / steps
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = LeakyIntegratorReadout(leak)(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), expected, rtol=2**-8, atol=0)
    out.float().sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 1 / steps))


def test_integer_currents_are_read_as_floats():
    """By hand: V_2 = 0.5 * 1 + 1 = 1.5, score V_2 / T = 0.75 (integer currents gave 0, the sum truncated)."""
    out = LeakyIntegratorReadout(leak=0.5)(torch.tensor([[[1]], [[1]]]))
    assert out.dtype == torch.get_default_dtype() and out.item() == 0.75
