"""``MaskedPSN``: the band mask and the masking schedule by hand, spikes against an explicit loop over the band,
the unmasked start equal to ``PSN``, gradients against autograd of the plain formula on both paths, calls in pieces
after training against one call, refusals."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.masked_psn import MaskedPSN, band_mask, masking_at
from deepspike.neurons.psn import PSN
from deepspike.neurons.surrogate import get_surrogate


@pytest.fixture(params=["fused", "torch"])
def path(request, monkeypatch):
    monkeypatch.setenv("DEEPSPIKE_FUSED", "1" if request.param == "fused" else "0")
    return request.param


def test_band_mask_by_hand():
    assert band_mask(4, 2).tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    assert band_mask(3, 3).tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    assert band_mask(3, 1).tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_masking_schedule_reaches_the_band_at_the_last_epoch():
    assert [masking_at(e, 5) for e in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert masking_at(0, 1) == 1.0
    m = MaskedPSN(4, 2)
    assert float(m.masking) == 0.0  # a fresh neuron is the plain PSN
    m.begin_epoch(2, 3)
    assert float(m.masking) == 1.0 and "masking" in m.state_dict()


def test_fully_masked_spikes_equal_the_band_loop():
    """lambda = 1: ``H[t] = sum_{j = t-k+1}^{t} W[t, j] x[j]``, one term at a time (float64, torch path)."""
    torch.manual_seed(0)
    m = MaskedPSN(6, 3, threshold=0.1).double()
    with torch.no_grad():
        m.weight.copy_(torch.randn(6, 6, dtype=torch.float64))  # above the diagonal too: the mask must drop it
    m.begin_epoch(0, 1)
    x = torch.randn(6, 2, 5, dtype=torch.float64)
    h = torch.zeros_like(x)
    for t in range(6):
        for j in range(max(0, t - 2), t + 1):
            h[t] += m.weight[t, j].detach() * x[j]
    assert torch.equal(m(x), (h - 0.1 >= 0).double())


def test_unmasked_start_equals_psn(path):
    torch.manual_seed(1)
    masked, plain = MaskedPSN(5, 2, decay=0.7, threshold=0.4), PSN(5, decay=0.7, threshold=0.4)
    with torch.no_grad():
        noise = 0.3 * torch.randn(5, 5)
        masked.weight.add_(noise)
        plain.weight.add_(noise)
    x = torch.randn(5, 3, 4)
    with torch.no_grad():
        assert torch.equal(masked(x), plain(x))


def test_gradients_equal_autograd_of_the_plain_formula(path):
    torch.manual_seed(2)
    m = MaskedPSN(4, 2, decay=0.6, threshold=0.3, surrogate="arctan")
    with torch.no_grad():
        m.weight.add_(0.2 * torch.randn(4, 4))
    m.begin_epoch(1, 3)  # lambda = 0.5: out-of-band weights count half
    x = torch.randn(4, 3, 2, requires_grad=True)
    g = torch.randn(4, 3, 2)
    (m(x) * g).sum().backward()
    w = m.weight.detach().clone().requires_grad_()
    b = m.bias.detach().clone().requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    mask = 0.5 * band_mask(4, 2) + 0.5
    h = torch.einsum("tk,kbn->tbn", w * mask, x2)
    (get_surrogate("arctan")(h - b.view(4, 1, 1)) * g).sum().backward()
    torch.testing.assert_close(m.weight.grad, w.grad)
    torch.testing.assert_close(m.bias.grad, b.grad)
    torch.testing.assert_close(x.grad, x2.grad)


def test_refusals():
    with pytest.raises(ConfigError, match="order k in 1..timesteps, got timesteps=4, k=5"):
        MaskedPSN(4, 5)
    with pytest.raises(ConfigError, match="order k in 1..timesteps"):
        MaskedPSN(4, 0)
    with pytest.raises(ConfigError, match="k=2.5"):
        MaskedPSN(4, 2.5)
    with pytest.raises(ConfigError, match="needs all its 4 time steps at once, got 2"):
        MaskedPSN(4, 2)(torch.rand(2, 3))


def _trained(timesteps=7, order=3):
    """A masked PSN at lambda = 1 with random weights (above the band too, which the mask must drop), float64."""
    torch.manual_seed(3)
    m = MaskedPSN(timesteps, order, threshold=0.2, surrogate="arctan").double()
    with torch.no_grad():
        m.weight.copy_(torch.randn(timesteps, timesteps, dtype=torch.float64))
    m.begin_epoch(0, 1)
    return m


def _spikes_and_grads(m, x, upstream, pieces, detach=False):
    """Spikes of ``m`` on ``x`` cut into ``pieces`` (step counts; None: one plain call) and the gradients of
    ``sum(spikes * upstream)`` for the input, the weights and the thresholds."""
    m.zero_grad()
    x = x.detach().clone().requires_grad_()
    if pieces is None:
        s = m(x)
    else:
        with temporal_carry(m, detach=detach):
            bounds = torch.tensor([0, *pieces]).cumsum(0).tolist()
            s = torch.cat([m(x[a:b]) for a, b in zip(bounds, bounds[1:])])
    (s * upstream).sum().backward()
    return s.detach(), x.grad, m.weight.grad.clone(), m.bias.grad.clone()


@pytest.mark.parametrize("order", [1, 3, 7])
@pytest.mark.parametrize("pieces", [[1] * 7, [2, 1, 4], [7]])
def test_a_trained_neuron_in_pieces_equals_one_call(order, pieces):
    m = _trained(order=order)
    x, upstream = torch.randn(7, 2, 5, dtype=torch.float64), torch.randn(7, 2, 5, dtype=torch.float64)
    whole = _spikes_and_grads(m, x, upstream, None)
    parts = _spikes_and_grads(m, x, upstream, pieces)
    assert torch.equal(parts[0], whole[0]) and 0 < whole[0].sum() < whole[0].numel()
    for mine, reference in zip(parts[1:], whole[1:]):
        torch.testing.assert_close(mine, reference)


def test_one_step_at_a_time_equals_the_band_loop_with_a_detached_carry():
    """SLTT/OTTT's detached carry: the step count is kept (not detached), the spikes are the band loop's."""
    m = _trained(timesteps=5, order=2)
    x = torch.randn(5, 3, 4, dtype=torch.float64)
    w = m.weight.detach()
    h = torch.stack([sum(w[t, j] * x[j] for j in range(max(0, t - 1), t + 1)) for t in range(5)])
    with torch.no_grad(), temporal_carry(m, detach=True):
        steps = torch.cat([m(x[t:t + 1]) for t in range(5)])
    assert torch.equal(steps, (h - 0.2 >= 0).double())


def test_pieces_are_refused_before_the_band_alone_and_past_the_neurons_steps():
    m = MaskedPSN(6, 2)
    m.begin_epoch(1, 3)  # lambda = 0.5
    assert m.pieces_refusal() == ("the masked PSN runs in pieces only once its masking lambda is 1 (the band alone, "
                                  "after the last training epoch), and it is 0.5")
    with temporal_carry(m), pytest.raises(ConfigError, match="only once its masking lambda is 1"):
        m(torch.rand(1, 3))
    m.begin_epoch(2, 3)
    assert m.pieces_refusal() is None
    with temporal_carry(m):
        m(torch.rand(4, 3))
        with pytest.raises(ConfigError, match="^the masked PSN neuron runs 6 time steps: 4 have run and 3 more were"):
            m(torch.rand(3, 3))
    with pytest.raises(ConfigError, match="needs all its 6 time steps at once, got 4"):
        m(torch.rand(4, 3))  # outside a carry block: one call on all T steps, as before


def test_carried_inputs_of_another_batch_are_one_line():
    # was a RuntimeError from torch.cat ("Sizes of tensors must match except in dimension 0")
    m = MaskedPSN(6, 2)
    m.begin_epoch(0, 1)  # lambda = 1: runs in pieces
    with temporal_carry(m):
        m(torch.rand(2, 2, 4))
        with pytest.raises(ConfigError, match=r"^carried inputs \(2, 4\) per step do not match one step of the input "
                                              r"\(3, 4\)"):
            m(torch.rand(1, 3, 4))
