"""The hidden-rate penalty (``layers.rate_penalty``): its formulas by hand, snnTorch's L1 as a reference, and the
collector's life cycle (train calls collect, eval calls and replays do not; deep copies stay whole)."""

import copy

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.rate_penalty import HiddenRates, check_rate_reg, hidden_neurons, rate_penalty
from deepspike.neurons.modules import IF


def test_penalties_by_hand():
    """Rates of one layer, B = 2, N = 2: [[0.5, 1], [0, 0.5]]. l1: mean = 0.5; l2: (0.25 + 1 + 0 + 0.25) / 4 =
    0.375; band low 0.25, high 0.5: lower (0 + 0 + 0.25^2 + 0) / 4 = 0.015625, upper: means [0.75, 0.25] ->
    (0.25^2 + 0) / 2 = 0.03125. Two layers add up."""
    r = torch.tensor([[0.5, 1.0], [0.0, 0.5]])
    assert float(rate_penalty([r], "l1")) == pytest.approx(0.5)
    assert float(rate_penalty([r], "l2")) == pytest.approx(0.375)
    assert float(rate_penalty([r], "band", 0.25, 0.5)) == pytest.approx(0.015625 + 0.03125)
    assert float(rate_penalty([r, r[:, :1]], "l1")) == pytest.approx(0.5 + 0.25)


def test_l1_is_snntorchs_l1_rate_sparsity_rescaled():
    """snnTorch's ``l1_rate_sparsity(Lambda)`` is ``Lambda * sum(spikes)``; ours is the mean rate, the same with
    ``Lambda = 1 / (T B N)``."""
    reg = pytest.importorskip("snntorch.functional.reg")
    torch.manual_seed(0)
    s = (torch.rand(5, 3, 4) < 0.3).float()  # [T, B, N]
    theirs = reg.l1_rate_sparsity(Lambda=1.0 / s.numel())(s)
    assert torch.allclose(rate_penalty([s.mean(0)], "l1"), theirs)


@pytest.mark.parametrize("args, match", [
    (("l3", 0.1, 0.0, 0.1), "valid: none, l1, l2, band"),
    (("l1", -1.0, 0.0, 0.1), "rate_reg_weight"),
    (("band", 0.1, 0.5, 0.2), "low <= high"),
    (("band", 0.1, 0.0, 1.5), "low <= high"),
])
def test_bad_choices_are_refused_in_one_line(args, match):
    with pytest.raises(ConfigError, match=match):
        check_rate_reg(*args)


class _Net(nn.Module):
    """Input currents [T, B, 2] -> IF -> IF (threshold 2) in ``body``, then an IF outside it (as a readout's)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(IF(), nn.Sequential(IF(threshold=2.0), nn.Identity()))
        self.out = IF()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


def test_collector_follows_train_calls_only():
    """Currents 0.5 and 1.0 into IF (threshold 1) for T = 4: spikes 0101 and 1111, rates 0.5 and 1; into the IF
    with threshold 2: h = 0 1 1 2 (fires at t = 4) and 1 2 1 2 (fires twice), rates 0.25 and 0.5. Eval calls take
    the hooks off (the fused runs stay free) and collect nothing; a deep copy collects on its own."""
    net = _Net()
    net.hidden_rates = probe = HiddenRates.attach(net, net.body)
    assert len(hidden_neurons(net.body)) == 2
    x = torch.tensor([0.5, 1.0]).expand(4, 3, 2)
    net(x)
    rates = probe.take()
    assert [r.tolist() for r in rates] == [[[0.5, 1.0]] * 3, [[0.25, 0.5]] * 3]
    with pytest.raises(ConfigError, match="bptt or checkpoint"):
        probe.take()  # taken already: no call since
    net.eval()
    net(x)
    assert all(not m._forward_hooks for m in probe.neurons)
    with pytest.raises(ConfigError, match="sltt, ottt and eprop"):
        probe.take()
    net.train()
    with torch.no_grad():
        net(x)
    with pytest.raises(ConfigError):
        probe.take()  # no gradient, nothing to regularise
    twin = copy.deepcopy(net)
    assert twin.hidden_rates is not probe and twin.hidden_rates.neurons[0] is twin.body[0]
    twin(x * 2)  # rates 1 and 1, then 0.5 and 0.5
    with pytest.raises(ConfigError):
        probe.take()  # the twin's call is not the original's
    assert [r.tolist() for r in twin.hidden_rates.take()] == [[[1.0, 1.0]] * 3, [[0.5, 0.5]] * 3]
    twin.eval()
    twin(x)  # the twin's hooks come off; the original's stay
    assert all(not m._forward_hooks for m in twin.hidden_rates.neurons) and all(m._forward_hooks for m in probe.neurons)


@pytest.mark.parametrize("kind", ["l1", "l2", "band"])
def test_an_empty_batch_adds_zero_and_keeps_the_graph(kind):
    """A torchrun rank whose share of a short last batch is empty: the penalty is 0 (not the NaN of a mean over no
    values), and it still reaches the spikes, so backward runs."""
    empty = torch.zeros(0, 5, requires_grad=True)
    full = torch.full((2, 5), 0.5, requires_grad=True)
    penalty = rate_penalty([empty, full], kind, low=0.1, high=0.2)
    assert torch.isfinite(penalty)
    assert penalty.item() == pytest.approx(rate_penalty([full], kind, low=0.1, high=0.2).item())
    penalty.backward()
    assert empty.grad is not None and empty.grad.shape == (0, 5)
