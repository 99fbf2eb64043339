"""QCFS (Bu et al. 2022) against hand-computed values, its straight-through gradients, the IF neuron it stands
for, and the ``ann`` method option."""

import re

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers.qcfs import QCFS, qcfs, remove_quantisation
from deepspike.methods import get_method
from deepspike.models import create_architecture


def test_values_by_hand():
    # lambda = 2, L = 4: steps of 0.5; z = 2x + 1/2, floor, clip to [0, 4], times 0.5
    x = torch.tensor([-1.0, 0.0, 0.2, 0.25, 0.74, 0.75, 1.9, 2.5, 10.0])
    expected = torch.tensor([0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 2.0, 2.0, 2.0])
    assert torch.equal(qcfs(x, torch.tensor(2.0), 4), expected)


def test_straight_through_gradients_by_hand():
    threshold = torch.tensor(2.0, requires_grad=True)
    x = torch.tensor([-1.0, 0.6, 3.0], requires_grad=True)  # below, inside, above the clip range
    qcfs(x, threshold, 4).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 0.0]))
    # inside: (floor(z) - x L / lambda) / L = (floor(1.7) - 1.2) / 4 = -0.05; above: 1; below: 0
    assert threshold.grad.item() == pytest.approx(-0.05 + 1.0)


def _bu_reference(x: torch.Tensor, threshold: torch.Tensor, levels: int) -> torch.Tensor:
    """Bu et al.'s code: ``x / lambda`` clipped to [0, 1], then ``floor(u L + 1/2) / L`` (straight through), times
    lambda."""
    z = (x / threshold).clamp(0.0, 1.0) * levels + 0.5
    return (z + (torch.floor(z) - z).detach()) / levels * threshold


def test_gradients_equal_the_papers_code_up_to_half_a_step_outside_the_range():
    # lambda = 2, L = 4 (steps of 0.5): x in [-0.25, 0) and (2, 2.25) had d/dx = 1 and d/dlambda = 0.1 / -0.1 where
    # the docstring and the paper's code give d/dx = 0 and d/dlambda = 0 below, 1 above
    x = torch.tensor([-3.0, -0.25, -0.2, -0.01, 0.0, 0.1, 0.3, 1.0, 1.9, 2.0, 2.01, 2.2, 2.24, 5.0],
                     dtype=torch.float64)
    grads = []
    for f in (qcfs, _bu_reference):
        xs, lam = x.clone().requires_grad_(), torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
        y = f(xs, lam, 4)
        per_x = torch.autograd.grad(y.sum(), xs, retain_graph=True)[0]
        per_lam = torch.stack([torch.autograd.grad(y[i], lam, retain_graph=True)[0] for i in range(len(x))])
        grads.append((y.detach(), per_x, per_lam))
    (y, dx, dlam), (y_ref, dx_ref, dlam_ref) = grads
    assert torch.equal(y, y_ref) and torch.equal(dx, dx_ref)
    assert torch.allclose(dlam, dlam_ref, atol=1e-12)
    assert dx[1:4].tolist() == [0.0] * 3 and dlam[1:4].tolist() == [0.0] * 3  # below: 0, 0
    assert dx[10:13].tolist() == [0.0] * 3 and dlam[10:13].tolist() == [1.0] * 3  # above: 0, 1


def test_if_neuron_with_half_threshold_start_and_subtraction_matches_at_t_equals_l():
    """An IF neuron (threshold lambda, v0 = lambda / 2, reset by subtraction) on a constant input for T = L steps
    fires floor(x L / lambda + 1/2) times, clipped to [0, L]: its rate times lambda is QCFS(x)."""
    lam, levels = 1.5, 8
    x = torch.linspace(-0.5, 2.0, 101)
    v, count = torch.full_like(x, lam / 2), torch.zeros_like(x)
    for _ in range(levels):
        v = v + x
        fired = (v >= lam).float()
        v, count = v - fired * lam, count + fired
    assert torch.allclose(count * lam / levels, qcfs(x, torch.tensor(lam), levels), atol=1e-6)


def test_ann_method_builds_qcfs_and_refuses_bad_options():
    model = get_method("ann", {"activation": "qcfs", "levels": 4}).build(create_architecture("mlp", width=0.25))
    layers = [m for m in model.modules() if isinstance(m, QCFS)]
    assert layers and all(m.levels == 4 and m.threshold.item() == 8.0 for m in layers)
    for bad in ({"activation": "gelu"}, {"levels": 0}, {"qcfs_threshold": 0.0}):
        with pytest.raises(ConfigError):
            get_method("ann", bad)
    with pytest.raises(ConfigError):
        QCFS(levels=0)


@pytest.mark.parametrize("kw", [{"levels": True}, {"levels": 2.0}, {"threshold": "8"}, {"threshold": 10**400},
                                {"threshold": 1e39}, {"threshold": True}, {"threshold": float("nan")}])
def test_bad_constructor_arguments_give_one_line_config_errors(kw):
    # levels=True was taken as 1 level, threshold "8" raised TypeError, 10**400 OverflowError, 1e39 a float32 inf
    name = next(iter(kw))
    with pytest.raises(ConfigError, match=rf"^QCFS {name} must be .*, got {re.escape(repr(kw[name]))}$"):
        QCFS(**kw)


def test_quantisation_taken_out_is_clip_by_hand():
    model = get_method("ann", {"activation": "qcfs", "levels": 4}).build(create_architecture("mlp", width=0.25))
    assert remove_quantisation(model) == len([m for m in model.modules() if isinstance(m, QCFS)]) > 0
    layer = QCFS(levels=4, threshold=2.0)
    remove_quantisation(layer)
    x = torch.tensor([-1.0, 0.0, 0.2, 0.74, 1.9, 2.5])
    assert torch.equal(layer(x), torch.tensor([0.0, 0.0, 0.2, 0.74, 1.9, 2.0]))
    assert remove_quantisation(torch.nn.ReLU()) == 0


@pytest.mark.parametrize(("lam", "levels"), [(0.7, 8), (0.7, 16), (3.0, 4), (8.0, 4)])
def test_bfloat16_input_matches_a_float64_reference(lam, levels):
    # bfloat16 x with the float32 threshold: z = x L / lambda + 1/2 was computed in bfloat16 (the 0-d parameter does
    # not promote it), putting 1 to 15 of 4,097 points a level off. Reference: the same bfloat16 x in float64.
    x = torch.linspace(-1.0, lam + 1.0, 4097).to(torch.bfloat16)
    threshold = torch.tensor(lam)
    y = qcfs(x, threshold, levels)
    xd, td = x.double(), threshold.double()
    steps = torch.floor(xd * levels / td + 0.5).clamp(0, levels)
    assert y.dtype == torch.bfloat16
    assert torch.equal(y, (steps * (td / levels)).to(torch.bfloat16))
