"""Readouts of rate-coded nets: the membrane integrators against their formulas by hand (and snnTorch)."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers.readout import MaxMembraneReadout, MembraneReadout
from deepspike.methods.losses import classification_loss


def test_a_leaky_membrane_readout_weights_late_steps_most():
    """``V_T / T = sum_t decay^(T - t) x_t / T``: T = 3, decay 0.5, x = [4, 2, 1] (one sample, one class) gives
    (0.25 * 4 + 0.5 * 2 + 1 * 1) / 3 = 1; decay 1 gives the mean 7/3."""
    x = torch.tensor([4.0, 2.0, 1.0]).view(3, 1, 1)  # [T, B, K]
    assert MembraneReadout(0.5)(x).item() == pytest.approx(1.0)
    assert MembraneReadout(1.0)(x).item() == pytest.approx(7 / 3)
    assert torch.equal(MembraneReadout(1.0).steps(x), x)
    with pytest.raises(ConfigError, match="decay 1, not 0.5"):
        MembraneReadout(0.5).steps(x)


def test_max_membrane_readout_by_hand_and_its_gradient_reaches_only_the_peak():
    """decay 0.5, x = [1, 2, -5, 1]: V = [1, 2.5, -3.75, -0.875], score max_t V_t = 2.5 at t* = 1. d score / d V_t is
    1 at t* only; d score / d x_s = 0.5^(t* - s) for s <= t*: [0.5, 1, 0, 0]."""
    readout = MaxMembraneReadout(0.5)
    x = torch.tensor([1.0, 2.0, -5.0, 1.0]).view(4, 1, 1).requires_grad_()
    v = readout.membrane(x)
    v.retain_grad()
    assert v.flatten().tolist() == [1.0, 2.5, -3.75, -0.875]
    score = v.max(dim=0).values
    assert torch.equal(readout(x), score)
    score.sum().backward()
    assert v.grad.flatten().tolist() == [0.0, 1.0, 0.0, 0.0]
    assert x.grad.flatten().tolist() == [0.5, 1.0, 0.0, 0.0]


def test_max_membrane_readout_with_ce_is_snntorchs_ce_max_membrane_loss():
    """CE of ``max_t V_t`` is snnTorch's ``ce_max_membrane_loss`` on the membrane trace ``V [T, B, K]``: same value,
    same gradient on the currents."""
    sf = pytest.importorskip("snntorch.functional")
    torch.manual_seed(0)
    x, y = torch.randn(6, 5, 4), torch.tensor([0, 3, 1, 2, 3])
    readout = MaxMembraneReadout(0.8)
    ours_x, theirs_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = classification_loss("ce", readout(ours_x), y)
    theirs = sf.ce_max_membrane_loss()(readout.membrane(theirs_x), y)
    assert torch.allclose(ours, theirs)
    ours.backward()
    theirs.backward()
    assert torch.allclose(ours_x.grad, theirs_x.grad)


def test_max_membrane_readout_has_no_per_step_scores_and_checks_its_decay():
    with pytest.raises(ConfigError, match="not a mean over steps"):
        MaxMembraneReadout().steps(torch.zeros(2, 1, 3))
    with pytest.raises(ConfigError, match="MaxMembraneReadout decay must be a number in \\[0, 1\\], got 1.5"):
        MaxMembraneReadout(1.5)
    for decay in (1.5, -0.1, float("nan"), "1"):  # taken unchecked before
        with pytest.raises(ConfigError, match="MembraneReadout decay must be a number in \\[0, 1\\], got"):
            MembraneReadout(decay)
    x = torch.tensor([3.0, -1.0, 2.0]).view(3, 1, 1)
    assert MaxMembraneReadout(0.0)(x).item() == 3.0  # decay 0: the largest current
    assert MaxMembraneReadout(1.0)(x).item() == 4.0  # decay 1: the largest running sum (3, 2, 4)


@pytest.mark.parametrize("decay", [True, False, "0.5", float("nan"), float("inf"), -0.1])
def test_max_membrane_readout_checks_its_decay_as_the_membrane_readout(decay):
    """decay=True / False was taken as 1 / 0 and "0.5" raised TypeError ('<=' between float and str); now the same
    check as ``MembraneReadout``'s (a number in [0, 1], not a bool), one line."""
    with pytest.raises(ConfigError, match="MaxMembraneReadout decay must be a number in \\[0, 1\\], got") as caught:
        MaxMembraneReadout(decay)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("autocast", [False, True])
def test_a_leaky_membrane_readout_of_bfloat16_currents_sums_in_float32(autocast):
    """``V_T / T = sum_t k^(T-1-t) x_t / T`` (``method.membrane_decay``, train.precision=bf16): the powers and their
    sum were bfloat16 (k = 0.9 is 0.8984375 there), 1.0e-2 from the exact readout of the same currents on scores of
    0.88 and 1 argmax in 64 another class; now float32 as ``membrane_readout``'s running membrane, then rounded once
    (against a float64 loop over the same bfloat16 currents)."""
    steps, decay = 32, 0.9
    x = (torch.randn(steps, 64, 10, generator=torch.Generator().manual_seed(0)) * 3).bfloat16().requires_grad_()
    v = torch.zeros(64, 10, dtype=torch.float64)
    for t in range(steps):
        v = decay * v + x[t].detach().double()
    expected = v / steps
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = MembraneReadout(decay)(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), expected, rtol=2**-8, atol=1e-6)
    assert torch.equal(out.float().argmax(1), expected.argmax(1))
    out.float().sum().backward()
    first = torch.tensor(decay ** (steps - 1) / steps, dtype=torch.float64)  # dV_T/T / dx_1
    torch.testing.assert_close(x.grad[0, 0, 0].double(), first, rtol=2**-8, atol=0)


def test_readouts_of_no_steps_are_nan_and_of_integer_currents_are_float():
    """T = 0: the max-membrane readout raised IndexError where the membrane readouts give NaN. Integer currents: it
    raised a RuntimeError, the decay-1 membrane readout too, and the leaky one truncated 0.5 * 1 + 1 to 1."""
    empty = torch.zeros(0, 2, 3)
    for readout in (MembraneReadout(), MembraneReadout(0.5), MaxMembraneReadout(0.5)):
        out = readout(empty)
        assert out.shape == (2, 3) and out.isnan().all()
    x = torch.tensor([[[1, -2]], [[1, 4]]])  # [T=2, B=1, K=2]
    # by hand: V_1 = x_1, V_2 = 0.5 V_1 + x_2 -> [1, -2], [1.5, 3]; max [1.5, 3]; leaky mean V_2 / 2 = [0.75, 1.5]
    torch.testing.assert_close(MaxMembraneReadout(0.5)(x), torch.tensor([[1.5, 3.0]]))
    torch.testing.assert_close(MembraneReadout(0.5)(x), torch.tensor([[0.75, 1.5]]))
    torch.testing.assert_close(MembraneReadout()(x), torch.tensor([[1.0, 1.0]]))
