"""TTFS losses, regularisers and zhou2021's gradient clip against hand-computed values."""

import math

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.models.spec import Architecture, Flatten, Linear
from deepspike.ttfs.layers import TTFSLinear
from deepspike.ttfs.losses import (
    clip_row_normalized,
    fill_silent,
    l2_cost,
    ttfs_loss,
    weight_sum_cost,
)

LOG1P_E = math.log(1 + math.exp(-1))  # 0.313261687...


def test_ce_on_negative_times():
    # softmax(-t) with t = (1, 2), target 0: -log(e^-1 / (e^-1 + e^-2)) = log(1 + e^-1)
    t = torch.tensor([[1.0, 2.0]])
    assert float(ttfs_loss("ce", t, torch.tensor([0]))) == pytest.approx(LOG1P_E, rel=1e-6)
    assert float(ttfs_loss("ce", t, torch.tensor([1]))) == pytest.approx(1 + LOG1P_E, rel=1e-6)


def test_zhou_paper_form():
    # t_c/tau + log sum_{i != c} e^{-t_i/tau}; t = (1, 2, 3), c = 0: 1 + log(e^-2 + e^-3) = -1 + log(1 + e^-1)
    t = torch.tensor([[1.0, 2.0, 3.0]])
    assert float(ttfs_loss("zhou_paper", t, torch.tensor([0]))) == pytest.approx(-1 + LOG1P_E, rel=1e-6)
    # tau = 2 halves every exponent: 0.5 + log(e^-1 + e^-1.5) = 0.5 - 1 + log(1 + e^-0.5)
    expected = -0.5 + math.log(1 + math.exp(-0.5))
    assert float(ttfs_loss("zhou_paper", t, torch.tensor([0]), tau=2.0)) == pytest.approx(expected, rel=1e-6)
    # batch mean: second row target 2: 3 + log(e^-1 + e^-2) = 2 + log(1 + e^-1)
    t2 = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    got = float(ttfs_loss("zhou_paper", t2, torch.tensor([0, 2])))
    assert got == pytest.approx(((-1 + LOG1P_E) + (2 + LOG1P_E)) / 2, rel=1e-6)


def test_zhou_code_form_is_softmax_over_minus_z():
    # t = (0, ln 2): z = (1, 2), logits (-1, -2): -log softmax_0 = log(1 + e^-1)
    t = torch.tensor([[0.0, math.log(2.0)]])
    assert float(ttfs_loss("zhou_code", t, torch.tensor([0]))) == pytest.approx(LOG1P_E, rel=1e-6)
    # tau = 2 halves the exponent: t = (0, 2 ln 2) gives z = e^(t/2) = (1, 2) again (t * tau would give (1, 16):
    # log(1 + e^-15)); target 1: -log softmax_1(-1, -2) = 1 + log(1 + e^-1)
    t2 = torch.tensor([[0.0, 2 * math.log(2.0)]])
    assert float(ttfs_loss("zhou_code", t2, torch.tensor([0]), tau=2.0)) == pytest.approx(LOG1P_E, rel=1e-6)
    assert float(ttfs_loss("zhou_code", t2, torch.tensor([1]), tau=2.0)) == pytest.approx(1 + LOG1P_E, rel=1e-6)
    # z = e^(t/tau) with t/tau capped at 80 (e^80 fits float32): t = (0, 100), target 1 scores -e^80 against -1,
    # a loss of e^80 - 1 (uncapped: e^100 = inf in float32)
    assert float(ttfs_loss("zhou_code", torch.tensor([[0.0, 100.0]]), torch.tensor([1]))) == pytest.approx(
        math.exp(80), rel=1e-5)


def test_silent_outputs_count_as_late():
    t = torch.tensor([[1.0, math.inf], [30.0, math.inf]])
    filled = fill_silent(t, t_silent=5.0)
    assert filled.tolist() == [[1.0, 30.0], [30.0, 30.0]]  # max(t_silent, latest finite) = 30
    assert fill_silent(torch.tensor([[1.0, math.inf]]), 5.0).tolist() == [[1.0, 5.0]]
    # a silent target gives a finite loss: ce on (-1, -5) for target 1 = 4 + log(1 + e^-4)
    got = float(ttfs_loss("ce", torch.tensor([[1.0, math.inf]]), torch.tensor([1]), t_silent=5.0))
    assert got == pytest.approx(4 + math.log(1 + math.exp(-4)), rel=1e-6)


@torch.no_grad()
def test_weight_sum_cost_and_l2():
    layer = TTFSLinear(2, 2, bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, 0.2], [1.0, 0.5]]))
        layer.bias.copy_(torch.tensor([0.2, 0.5]))
    # row sums with the bias weight: 0.5 and 2.0; theta = 1 -> hinge (0.5, 0)
    assert float(weight_sum_cost([layer], 1.0, "sum")) == pytest.approx(0.5)
    assert float(weight_sum_cost([layer], 1.0, "mean")) == pytest.approx(0.25)
    sq = [0.01, 0.04, 1.0, 0.25, 0.04, 0.25]  # all six weights squared
    assert float(l2_cost([layer], "sum")) == pytest.approx(sum(sq))
    assert float(l2_cost([layer], "mean")) == pytest.approx(sum(sq) / 6)
    assert float(weight_sum_cost([layer, layer], 1.0, "sum")) == pytest.approx(1.0)  # summed over layers


def test_method_penalty_is_the_regularisers():
    arch = Architecture("fc", (Flatten(), Linear(3, act=False)), (1, 2, 1), 3)
    m = get_method("ttfs", {"weight_sum_cost": 2.0, "l2": 0.5, "loss": "ce"})
    model = m.build(arch)
    t = torch.tensor([[1.0, 2.0, 3.0]])
    y = torch.tensor([0])
    assert float(m.loss(t, y)) == pytest.approx(float(ttfs_loss("ce", t, y)))  # loss: data term only
    layer = model.neuron_layers()[0]
    hinge = torch.relu(1.0 - layer.weight_sums()).mean()
    l2 = torch.cat([layer.weight.reshape(-1), layer.bias]).pow(2).mean()
    assert float(m.penalty(model)) == pytest.approx(float(2.0 * hinge + 0.5 * l2), rel=1e-6)
    assert get_method("stdbp", {}).penalty(model) is None  # zhang2021: no regulariser


def test_row_normalised_clip():
    # 4 rows of 25 entries equal to 4: row norms 20, ||G||_F / sqrt(4) = 20 > 10 -> halved
    g = torch.full((4, 25), 4.0)
    clipped = clip_row_normalized(g, 10.0)
    row_norms = clipped.norm(dim=1)
    assert float(row_norms.pow(2).mean().sqrt()) == pytest.approx(10.0)
    torch.testing.assert_close(clipped, g * 0.5)
    small = torch.full((4, 25), 0.1)  # norm 0.5: untouched
    assert torch.equal(clip_row_normalized(small, 10.0), small)
    conv = torch.full((2, 3, 2, 2), 10.0)  # conv gradient: rows = output channels, norm 20*sqrt(3)
    clipped = clip_row_normalized(conv, 10.0)
    assert float(clipped.reshape(2, -1).norm(dim=1).pow(2).mean().sqrt()) == pytest.approx(10.0, rel=1e-6)
    assert float(clip_row_normalized(torch.tensor(-30.0), 10.0)) == -10.0  # a 0-d gradient is one row of norm 30
    with pytest.raises(ConfigError):
        clip_row_normalized(g, 0.0)


def test_after_backward_clips_every_weight_gradient():
    arch = Architecture("fc", (Flatten(), Linear(8), Linear(3, act=False)), (1, 4, 4), 3)
    torch.manual_seed(0)
    m = get_method("ttfs", {"grad_clip_rows": 0.01})
    model = m.build(arch)
    x = torch.rand(6, 1, 4, 4)
    loss = m.loss(model(x), torch.tensor([0, 1, 2, 0, 1, 2])) + m.penalty(model)
    loss.backward()
    before = [w.grad.clone() for layer in model.neuron_layers() for w in layer.weights()]
    m.after_backward(model)
    after = [w.grad for layer in model.neuron_layers() for w in layer.weights()]
    for g0, g1 in zip(before, after):
        norm0 = float(g0.reshape(g0.shape[0], -1).norm(dim=1).pow(2).mean().sqrt())
        norm1 = float(g1.reshape(g1.shape[0], -1).norm(dim=1).pow(2).mean().sqrt())
        assert norm1 == pytest.approx(min(norm0, 0.01), rel=1e-4)  # clipped to 0.01, direction kept
        torch.testing.assert_close(g1 * norm0, g0 * norm1)
    assert any(float(g.norm()) > 0.011 for g in before)  # something was big enough to be clipped


def test_unknown_loss_is_a_config_error():
    with pytest.raises(ConfigError, match="valid"):
        ttfs_loss("mse", torch.zeros(1, 2), torch.tensor([0]))


@pytest.mark.parametrize("name", ["ce", "zhou_code", "zhou_paper"])
@pytest.mark.parametrize(("t", "target", "tau", "message"), [
    (torch.tensor([[math.nan, 2.0, 3.0]]), torch.tensor([0]), 1.0, "NaN or -inf"),  # once scored as silent
    (torch.tensor([[-math.inf, 2.0, 3.0]]), torch.tensor([0]), 1.0, "NaN or -inf"),
    (torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), 1.0, "with B, K >= 1"),  # once a NaN loss
    (torch.tensor([[1.0, 2.0]]), torch.tensor([2]), 1.0, r"target classes must lie in \[0, 2\)"),
    (torch.tensor([[1.0, 2.0]]), torch.tensor([0.0]), 1.0, "class indices"),
    (torch.tensor([[1.0, 2.0]]), torch.tensor([0]), 0.0, "tau must be a finite number > 0"),
    (torch.tensor([[1.0, 2.0]]), torch.tensor([0]), -1.0, "tau must be a finite number > 0"),
])
def test_a_loss_of_bad_times_targets_or_tau_is_refused(name, t, target, tau, message):
    with pytest.raises(ConfigError, match=message):
        ttfs_loss(name, t, target, tau=tau)


@pytest.mark.parametrize("name", ["zhou_code", "zhou_paper", "ce"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_the_losses_of_half_precision_times_are_computed_in_float32(name, dtype):
    """zhou_code's ``exp(t/tau)`` of float16 times overflowed past t/tau ~ 11 (a silent output counts at ln 1e5 = 11.5):
    the loss was inf (float32: 2.2e5); every loss is now the float32 loss of the same numbers, and its gradient the
    float32 one in the times' dtype (zhou_code's, e^13 here, is past float16's range itself)."""
    t = torch.tensor([[2.0, 12.0, math.inf], [15.0, 13.0, 1.0]]).to(dtype).requires_grad_()
    ref = t.detach().float().requires_grad_()
    y = torch.tensor([0, 1])
    loss, ref_loss = ttfs_loss(name, t, y), ttfs_loss(name, ref, y)
    assert loss.item() == ref_loss.item()
    loss.backward()
    ref_loss.backward()
    assert t.grad.dtype == dtype and torch.equal(t.grad, ref.grad.to(dtype))


def test_zhou_paper_with_one_class_is_refused():
    """K = 1: the sum over the classes other than the target is empty and the loss was -inf."""
    t, target = torch.tensor([[0.5], [1.0]]), torch.tensor([0, 0])
    with pytest.raises(ConfigError, match="^ttfs_loss: zhou_paper needs at least 2 classes .* got K = 1$"):
        ttfs_loss("zhou_paper", t, target)
    assert ttfs_loss("ce", t, target).item() == 0.0  # one class: cross-entropy is 0, nothing to refuse
