"""``HeterogeneousLIF`` against a plain loop written here, and against the one-value-per-layer neurons."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.heterogeneous import HeterogeneousLIF
from deepspike.neurons.modules import SpikingNeuron
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.synaptic import SynapticLIF


def plain_loop(x, decay, threshold, alpha, reset, spike_fn):
    """i_t = alpha i + x_t; h = k v + i; s = spike_fn(h - th); v = h (1 - s) | h - th s | h, one step at a time."""
    i = torch.zeros_like(x[0])
    v = torch.zeros_like(x[0])
    out = []
    for x_t in x:
        i = (alpha * i if alpha is not None else 0.0) + x_t
        h = decay * v + i
        s = spike_fn(h - threshold)
        v = {"zero": h * (1 - s), "subtract": h - threshold * s, "none": h}[reset]
        out.append(s)
    return torch.stack(out)


def _constants(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    decay = 0.5 + 0.5 * torch.rand(shape, generator=g)  # 0.5 .. 1, one per neuron
    decay.view(-1)[0] = 1.0  # an IF neuron among the LIFs
    threshold = 0.5 + torch.rand(shape, generator=g)
    alpha = torch.rand(shape, generator=g)
    return decay, threshold, alpha


@pytest.mark.parametrize("synaptic", [False, True])
@pytest.mark.parametrize("reset", ["zero", "subtract", "none"])
def test_spikes_and_input_gradient_equal_a_plain_loop(synaptic, reset):
    shape = (3, 2, 5)
    decay, threshold, alpha = _constants(shape)
    params = NeuronParams(reset=reset)
    neuron = HeterogeneousLIF(params, decay, threshold, alpha if synaptic else None)
    x = (torch.rand(20, 4, *shape, generator=torch.Generator().manual_seed(1)) * 0.8).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    s = neuron(x)
    ref = plain_loop(x_ref, decay, threshold, alpha if synaptic else None, reset, params.spike_fn)
    assert 0.05 * s.numel() < s.sum() < 0.95 * s.numel()  # neither silent nor saturated
    assert torch.equal(s, ref)
    weights = torch.randn(s.shape, generator=torch.Generator().manual_seed(2))
    (s * weights).sum().backward()
    (ref * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-6)


def test_the_same_constant_everywhere_is_the_one_value_per_layer_neurons():
    x = torch.rand(30, 3, 7, generator=torch.Generator().manual_seed(4))
    params = NeuronParams(decay=0.8, threshold=0.7, reset="subtract")
    same = torch.full((7,), 0.8), torch.full((7,), 0.7)
    with torch.no_grad():
        assert torch.equal(HeterogeneousLIF(params, *same)(x), SpikingNeuron(params)(x))
        synaptic = HeterogeneousLIF(params, *same, torch.full((7,), 0.6))(x)
        assert torch.equal(synaptic, SynapticLIF(params, syn_decay=0.6)(x))


@pytest.mark.parametrize("synaptic", [False, True])
def test_a_run_in_pieces_equals_one_call(synaptic):
    decay, threshold, alpha = _constants((6,), seed=5)
    neuron = HeterogeneousLIF(NeuronParams(reset="zero"), decay, threshold, alpha if synaptic else None)
    x = torch.rand(12, 2, 6, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        whole = neuron(x)
        with temporal_carry(neuron):
            pieces = torch.cat([neuron(x[:5]), neuron(x[5:])])
    assert torch.equal(pieces, whole)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_thresholds_at_or_below_zero_run_and_fire_at_rest(reset):
    """Learnt thresholds are not kept > 0 (a per-channel PLIF's read back from NIR): th <= 0 is accepted and, with no
    input, h = 0 >= th fires at every step (th = -0.5, subtract reset: v = 0.5 after it, h = k v > th); th = 1 never."""
    neuron = HeterogeneousLIF(NeuronParams(reset=reset), torch.full((3,), 0.5), torch.tensor([-0.5, 0.0, 1.0]))
    with torch.no_grad():
        s = neuron(torch.zeros(4, 2, 3))
    assert torch.equal(s, torch.tensor([1.0, 1.0, 0.0]).expand(4, 2, 3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_carried_state_does_not_keep_the_call_s_whole_current_alive(dtype):
    neuron = HeterogeneousLIF(NeuronParams(), torch.full((6,), 0.5), torch.ones(6), torch.full((6,), 0.4))
    with torch.no_grad(), temporal_carry(neuron):
        neuron(torch.rand(50, 2, 6).to(dtype))
        for state in neuron.state:  # (v, i): 2 x 6 float32 values each, not i's 50 steps (2,400 bytes before)
            assert state.untyped_storage().nbytes() == state.numel() * state.element_size() == 48


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"decay": torch.tensor([0.5, 1.5])}, r"decay must be finite and in \[0, 1\] for every neuron"),
    ({"decay": torch.tensor([0.5, float("nan")])}, r"decay must be finite"),
    ({"threshold": torch.tensor([1.0, float("inf")])}, r"threshold must be finite"),
    ({"syn_decay": torch.tensor([-0.1, 0.5])}, r"syn_decay must be finite and in \[0, 1\]"),
    ({"threshold": torch.ones(3)}, r"decay \(2,\), threshold \(3,\) and syn_decay None do not broadcast together"),
])
def test_bad_constants_are_one_line_errors(kwargs, message):
    given = {"decay": torch.tensor([0.5, 0.9]), "threshold": torch.ones(2), "syn_decay": None, **kwargs}
    with pytest.raises(ConfigError, match=rf"^HeterogeneousLIF: {message}"):
        HeterogeneousLIF(NeuronParams(), **given)


def test_an_input_the_constants_do_not_fit_is_a_one_line_error():
    neuron = HeterogeneousLIF(NeuronParams(), torch.full((4,), 0.9), torch.ones(4))
    with pytest.raises(ConfigError, match=r"constants of shape \(4,\) do not fit input \(3, 2, 5\)"):
        neuron(torch.zeros(3, 2, 5))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_input_runs_the_float32_constants_as_the_one_value_per_layer_neurons(dtype):
    # decay 0.9 and threshold 0.7 are not bfloat16 / float16 numbers: rounding them to the input's dtype changed
    # 6 of these 1,920 spikes (either dtype) against SpikingNeuron, whose float constants stay exact
    x = torch.rand(30, 8, 8, generator=torch.Generator().manual_seed(4)).to(dtype)
    params = NeuronParams(decay=0.9, threshold=0.7, reset="subtract")
    same = torch.full((8,), 0.9), torch.full((8,), 0.7)
    with torch.no_grad():
        plain = HeterogeneousLIF(params, *same)(x)
        assert 0.05 * plain.numel() < plain.float().sum() < 0.95 * plain.numel()
        assert torch.equal(plain, SpikingNeuron(params)(x))
        synaptic = HeterogeneousLIF(params, *same, torch.full((8,), 0.6))(x)
        assert torch.equal(synaptic, SynapticLIF(params, syn_decay=0.6)(x))


@pytest.mark.parametrize("synaptic", [False, True])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_low_precision_run_one_step_at_a_time_equals_one_call(dtype, synaptic):
    # carried v and i were rounded to the input's dtype between calls (one call keeps them in float32)
    decay, threshold, alpha = _constants((64,), seed=5)
    neuron = HeterogeneousLIF(NeuronParams(reset="subtract"), decay, threshold, alpha if synaptic else None)
    x = torch.rand(30, 8, 64, generator=torch.Generator().manual_seed(4)).to(dtype)
    with torch.no_grad():
        whole = neuron(x)
        with temporal_carry(neuron):
            pieces = torch.cat([neuron(x[t:t + 1]) for t in range(x.shape[0])])
    assert 0.05 * whole.numel() < whole.float().sum() < 0.95 * whole.numel()
    assert torch.equal(pieces, whole)


@pytest.mark.parametrize(("constants", "x_shape", "shown"), [
    # a synaptic decay the check left out: 'RuntimeError: The size of tensor a (5) must match ... (4)'
    ((torch.tensor(0.9), torch.tensor(1.0), torch.full((5,), 0.5)), (3, 2, 4), r"\(5,\)"),
    # constants with more axes than a step: an expand RuntimeError, or (synaptic) spikes [3, 2, 3, 5] for x [3, 3, 5]
    ((torch.full((2, 1, 5), 0.9), torch.tensor(1.0), None), (3, 3, 5), r"\(2, 1, 5\)"),
    ((torch.full((2, 1, 5), 0.9), torch.tensor(1.0), torch.full((2, 1, 5), 0.5)), (3, 3, 5), r"\(2, 1, 5\)"),
])
def test_constants_that_would_broadcast_past_the_input_are_one_line_errors(constants, x_shape, shown):
    neuron = HeterogeneousLIF(NeuronParams(), *constants)
    with pytest.raises(ConfigError, match=rf"^HeterogeneousLIF: constants of shape {shown} do not fit input"):
        neuron(torch.rand(x_shape))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("synaptic", [False, True])
def test_a_module_moved_to_low_precision_keeps_its_float32_constants(dtype, synaptic):
    # .to(bfloat16) rounded the buffers (decay 0.9 -> 0.8984, threshold 0.3 -> 0.3008): 437 of these 15,360 spikes
    # (141 with the synaptic current) differed from SpikingNeuron / SynapticLIF moved to bfloat16, whose float
    # constants stay exact
    params = NeuronParams(decay=0.9, threshold=0.3, reset="subtract")
    alpha = torch.full((8,), 0.7) if synaptic else None
    neuron = HeterogeneousLIF(params, torch.full((8,), 0.9), torch.full((8,), 0.3), alpha).to(dtype)
    reference = (SynapticLIF(params, syn_decay=0.7) if synaptic else SpikingNeuron(params)).to(dtype)
    assert all(b.dtype == torch.float32 for b in neuron.buffers())
    assert torch.equal(neuron.decay, torch.full((8,), 0.9)) and torch.equal(neuron.threshold, torch.full((8,), 0.3))
    x = (torch.rand(64, 30, 8, generator=torch.Generator().manual_seed(0)) * 0.2).to(dtype)
    with torch.no_grad():
        s = neuron(x)
        assert 0.05 * s.numel() < s.float().sum() < 0.95 * s.numel()
        assert torch.equal(s, reference(x))
    copy = HeterogeneousLIF(params, torch.full((8,), 0.5), torch.ones(8), None if alpha is None else alpha * 0)
    copy.load_state_dict(neuron.state_dict())  # the state dict holds the float32 constants
    assert torch.equal(copy.decay, neuron.decay) and torch.equal(copy.threshold, neuron.threshold)
