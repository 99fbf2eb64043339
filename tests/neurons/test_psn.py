"""``PSN`` (parallel spiking neuron): output equals its matmul definition computed by hand; gradient of W and b
against autograd of the plain formula; refusals."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.dynamics import neuron_multistep
from deepspike.neurons.masked_psn import MaskedPSN
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.psn import PSN, lif_response_matrix
from deepspike.neurons.sliding_psn import SlidingPSN
from deepspike.neurons.surrogate import BUILT_IN, get_surrogate


@pytest.fixture(params=["fused", "torch"])
def path(request, monkeypatch):
    """Both implementations: the numba one (CPU float32, ``neurons.fused_psn``) and plain torch operations."""
    monkeypatch.setenv("DEEPSPIKE_FUSED", "1" if request.param == "fused" else "0")
    return request.param


def test_output_equals_hand_computed_matmul(path):
    m = PSN(3, threshold=1.0)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [2.0, -1.0, 0.5]]))
        m.bias.copy_(torch.tensor([1.0, 0.5, 1.0]))
    x = torch.tensor([[0.8, 1.2], [0.3, -0.2], [1.0, 0.4]]).view(3, 1, 2)  # [T, B, N]
    # H[0] = (0.8, 1.2); H[1] = 0.5 x0 + x1 = (0.7, 0.4); H[2] = 2 x0 - x1 + 0.5 x2 = (1.8, 2.8)
    expected = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]).view(3, 1, 2)  # H - b >= 0
    assert torch.equal(m(x), expected)


def test_initial_weight_is_the_no_reset_lif():
    torch.testing.assert_close(lif_response_matrix(3, 0.5),
                               torch.tensor([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.25, 0.5, 1.0]]))


def test_fresh_psn_fires_like_the_no_reset_lif(path):
    """Reference: ``neuron_multistep`` with ``NeuronParams(decay=0.5, threshold=1.0, reset="none")``. For x = 0.6 at
    every step, by hand h = 0.6, 0.9, 1.05 against threshold 1: spikes [0, 0, 1] (the initial thresholds b = 1)."""
    x = torch.full((3, 1, 1), 0.6)
    lif, _ = neuron_multistep(x, NeuronParams(decay=0.5, threshold=1.0, reset="none"), fused=False)
    assert lif.flatten().tolist() == [0.0, 0.0, 1.0]
    with torch.no_grad():
        assert torch.equal(PSN(3, decay=0.5, threshold=1.0)(x), lif)

def test_gradients_equal_autograd_of_the_plain_formula(path):
    torch.manual_seed(0)
    m = PSN(4, decay=0.6, threshold=0.4, surrogate="sigmoid", surrogate_args={"alpha": 3.0})
    with torch.no_grad():
        m.weight.add_(0.1 * torch.randn(4, 4))
    x = torch.randn(4, 3, 2, 5, requires_grad=True)
    w = torch.randn(4, 3, 2, 5)
    (m(x) * w).sum().backward()
    weight = m.weight.detach().clone().requires_grad_()
    bias = m.bias.detach().clone().requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    h = torch.einsum("tk,kbcn->tbcn", weight, x2)  # H[t] = sum_k W[t, k] X[k]
    s = get_surrogate("sigmoid", alpha=3.0)(h - bias.view(4, 1, 1, 1))
    (s * w).sum().backward()
    torch.testing.assert_close(m.weight.grad, weight.grad)
    torch.testing.assert_close(m.bias.grad, bias.grad)
    torch.testing.assert_close(x.grad, x2.grad)


def test_refuses_other_step_counts():
    with pytest.raises(ConfigError, match="needs all its 4 time steps"):
        PSN(4)(torch.rand(1, 2, 3))
    for timesteps in (0, 2.5, True, "4"):  # 2.5 and "4" were TypeError tracebacks from torch.full, True one step
        with pytest.raises(ConfigError, match="^PSN timesteps=.* must be a whole number >= 1$"):
            PSN(timesteps)


@pytest.mark.parametrize("surrogate", BUILT_IN)
@pytest.mark.parametrize("layout", ["expanded", "channels_last"])
def test_fused_equals_torch_on_repeated_and_channels_last_inputs(layout, surrogate, monkeypatch):
    """The numba path on a time-invariant input (one step repeated as a stride-0 view: direct encoding) and on
    channels-last steps gives the torch path's spikes and gradients, for every built-in surrogate (its numba row,
    ``fused_kernels._row_surrogate``)."""
    torch.manual_seed(1)
    m = PSN(4, decay=0.5, threshold=0.3, surrogate=surrogate)
    base = torch.randn(2, 3, 4, 4)
    results = []
    for fused in ("1", "0"):
        monkeypatch.setenv("DEEPSPIKE_FUSED", fused)
        m.zero_grad()
        b = base.clone().requires_grad_()
        if layout == "expanded":
            x = b.unsqueeze(0).expand(4, *b.shape)
        else:
            x = (b.unsqueeze(0) * torch.arange(1.0, 5.0).view(4, 1, 1, 1, 1)).contiguous(
                memory_format=torch.channels_last_3d)
        s = m(x)
        (s * torch.linspace(-1, 1, s.numel()).view(s.shape)).sum().backward()
        results.append((s.detach(), b.grad, m.weight.grad.clone(), m.bias.grad.clone()))
    assert torch.equal(results[0][0], results[1][0])
    for a, b in zip(results[0][1:], results[1][1:], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)



@pytest.mark.parametrize("repeated", [False, True])
def test_float32_input_inside_bfloat16_autocast_runs_in_float32(repeated, monkeypatch):
    """A batch-norm hands the neuron float32 inside autocast (TEBN did, and the fused path crashed converting a
    bfloat16 product to numpy): the spikes and gradients are those of the same call without autocast."""
    monkeypatch.setenv("DEEPSPIKE_FUSED", "1")
    torch.manual_seed(2)
    m = PSN(3, decay=0.5, threshold=0.2)
    base = torch.randn(5, 7)
    results = []
    for enabled in (True, False):
        m.zero_grad()
        b = base.clone().requires_grad_()
        x = b.unsqueeze(0).expand(3, 5, 7) if repeated else b.unsqueeze(0) * torch.tensor([1.0, 0.5, 2.0]).view(3, 1, 1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            s = m(x)
            (s * torch.linspace(-1, 1, s.numel()).view(s.shape)).sum().backward()
        results.append((s.detach(), b.grad, m.weight.grad.clone(), m.bias.grad.clone()))
    assert results[0][0].dtype == torch.float32
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("neuron", ["psn", "masked_psn", "sliding_psn", "sliding_psn_carried"])
@pytest.mark.parametrize("case", ["bfloat16_model", "autocast"])
def test_bfloat16_mixing_is_float32_against_a_float64_reference(neuron, case, monkeypatch):
    """Reference: ``H = W X`` in float64 from the same bfloat16 inputs and the weights the neuron holds, spikes
    ``H - b >= 0`` (ties within 1e-5 left out). The mixing ran in bfloat16 (``H`` rounded to 8 bits of mantissa):
    198 of 204,800 spikes of a 32-step PSN flipped (212 under autocast); float32 mixing flips none, and the
    spikes keep the input's dtype."""
    monkeypatch.setenv("DEEPSPIKE_FUSED", "0")
    torch.manual_seed(0)
    t = 32
    m = {"psn": lambda: PSN(t, decay=0.9), "masked_psn": lambda: MaskedPSN(t, 6, decay=0.9),
         "sliding_psn": lambda: SlidingPSN(12, decay=0.9), "sliding_psn_carried": lambda: SlidingPSN(12, decay=0.9)}
    m = m[neuron]()
    with torch.no_grad():
        m.weight.add_(0.05 * torch.randn(m.weight.shape))
    x = (0.3 * torch.randn(t, 16, 50) + 0.1).bfloat16()
    m = m.bfloat16() if case == "bfloat16_model" else m
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=case == "autocast"):
        if neuron == "sliding_psn_carried":  # two calls carrying the inputs between them (carried_psn_spikes)
            with temporal_carry(m):
                s = torch.cat([m(x[:10]), m(x[10:])])
        else:
            s = m(x)
        w = m.masked_weight() if neuron == "masked_psn" else m.band_matrix(t) if "sliding" in neuron else m.weight
    h = w.double() @ x.double().reshape(t, -1)
    margin = (h - m.bias.double().expand(t).view(t, 1)).view(x.shape)
    assert s.dtype == torch.bfloat16
    flipped = (s.double() != (margin >= 0).double()) & (margin.abs() > 1e-5)
    assert int(flipped.sum()) == 0


PSN_FAMILY = {"psn": lambda **kw: PSN(4, **kw), "masked_psn": lambda **kw: MaskedPSN(4, 2, **kw),
              "sliding_psn": lambda **kw: SlidingPSN(3, **kw)}
BAD_STARTS = [({"decay": float("nan")}, "decay=nan"), ({"decay": float("inf")}, "decay=inf"), ({"decay": 5}, "decay=5"),
              ({"decay": -0.5}, "decay=-0.5"), ({"threshold": float("nan")}, "threshold=nan"),
              ({"threshold": float("inf")}, "threshold=inf"), ({"threshold": -1.0}, "threshold=-1"),
              ({"threshold": 0.0}, "threshold=0")]


@pytest.mark.parametrize("neuron", PSN_FAMILY)
@pytest.mark.parametrize(("bad", "shown"), BAD_STARTS)
def test_a_nonsense_starting_decay_or_threshold_is_one_line(neuron, bad, shown):
    """The PSN family starts from a no-reset LIF, whose decay must lie in (0, 1] and threshold be a finite number > 0
    (as ``method.decay`` / ``method.threshold`` are checked). Before, the constructors took anything: decay NaN made
    every weight below the diagonal NaN (every spike NaN), decay 5 a weight of 125 on the input three steps back,
    threshold inf a neuron that never fires."""
    with pytest.raises(ConfigError, match=shown) as caught:
        PSN_FAMILY[neuron](**bad)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("neuron", PSN_FAMILY)
def test_an_integer_start_gives_float_parameters(neuron):
    """``decay=1, threshold=2`` (ints) start as the float IF: weights of 1 on and below the diagonal, thresholds 2."""
    m = PSN_FAMILY[neuron](decay=1, threshold=2)
    assert m.weight.dtype == m.bias.dtype == torch.float32
    assert torch.all(m.bias == 2.0) and torch.all(m.weight[m.weight != 0] == 1.0)


@pytest.mark.parametrize("build", [lambda t: PSN(t), lambda t: MaskedPSN(t, 2)])
def test_a_psn_whose_t_by_t_weights_cannot_be_built_is_one_line(build):
    """T = 2,000,000 asked torch for a 16 TB [T, T] weight (an allocator traceback when the net was built)."""
    with pytest.raises(ConfigError, match=r"timesteps=2000000 is above 16,384: its \[T, T\] weights would take "
                                          r"14,901.2 GiB per layer"):
        build(2_000_000)
    assert build(16).weight.shape == (16, 16)
