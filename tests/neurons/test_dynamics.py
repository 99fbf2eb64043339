"""IF/LIF dynamics against golden trajectories and BPTT gradients worked out by hand; the input policy of
every neuron module (floating dtypes only, empty inputs, NaN propagated to the spikes)."""

import copy
import pickle

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons import IF, LIF, RESETS, NeuronParams, membrane_readout, neuron_multistep, neuron_step
from deepspike.neurons.chunked_if import ChunkedIF
from deepspike.neurons.fused import fused_available
from deepspike.neurons.spikebp_lif import LeakCorrectedLIF

X = [0.6, 0.6, 0.6, 1.2, 0.0]


def _run(params, inputs):
    x = torch.tensor(inputs, dtype=torch.float64).view(-1, 1, 1)  # [T] -> [T, B=1, 1]
    s, v_t, h = neuron_multistep(x, params, return_membrane=True)
    return s.flatten().tolist(), h.flatten().tolist(), v_t.item()


# LIF, decay 0.5, threshold 1, input X. h_t = 0.5 v_{t-1} + x_t, fire at h_t >= 1.
#   t1: h = 0.6                      s=0 v=0.6
#   t2: h = 0.3 + 0.6 = 0.9          s=0 v=0.9
#   t3: h = 0.45 + 0.6 = 1.05        s=1  zero: v=0      subtract: v=0.05    none: v=1.05
# zero:     t4: h = 0 + 1.2 = 1.2        s=1 v=0;       t5: h = 0          s=0 v=0
# subtract: t4: h = 0.025 + 1.2 = 1.225  s=1 v=0.225;   t5: h = 0.1125     s=0 v=0.1125
# none:     t4: h = 0.525 + 1.2 = 1.725  s=1 v=1.725;   t5: h = 0.8625     s=0 v=0.8625
@pytest.mark.parametrize(
    ("reset", "membrane", "v_final"),
    [
        ("zero", [0.6, 0.9, 1.05, 1.2, 0.0], 0.0),
        ("subtract", [0.6, 0.9, 1.05, 1.225, 0.1125], 0.1125),
        ("none", [0.6, 0.9, 1.05, 1.725, 0.8625], 0.8625),
    ],
)
def test_lif_golden_trajectory(reset, membrane, v_final):
    s, h, v_t = _run(NeuronParams(decay=0.5, threshold=1.0, reset=reset), X)
    assert s == [0, 0, 1, 1, 0]
    assert h == pytest.approx(membrane, abs=1e-12)
    assert v_t == pytest.approx(v_final, abs=1e-12)


def test_if_subtract_golden_with_tie():
    # IF, threshold 1, subtract; dyadic inputs so every value is exact in binary.
    #   h: 0.75 (s=0) | 0.75+0.5=1.25 (s=1, v=0.25) | 0.25+0.25=0.5 (s=0) | 0.5+1.5=2.0 (s=1, v=1.0)
    #      | 1.0+0.0=1.0 -> exactly at threshold: fires (H(0) = 1), v=0.
    s, h, v_t = _run(NeuronParams(decay=1.0, reset="subtract"), [0.75, 0.5, 0.25, 1.5, 0.0])
    assert s == [0, 1, 0, 1, 1]
    assert h == [0.75, 1.25, 0.5, 2.0, 1.0]
    assert v_t == 0.0


def test_lif_subtract_golden_with_threshold_three_quarters():
    """Reset by subtraction removes th, not 1: LIF decay 1/2, th 3/4, dyadic inputs (exact in binary), no ties.
    h_t = v_{t-1} / 2 + x_t; on a spike v_t = h_t - 3/4.
      t1: h = 1/2                      s=0 v=1/2
      t2: h = 1/4 + 5/8 = 7/8          s=1 v=1/8
      t3: h = 1/16 + 3/4 = 13/16       s=1 v=1/16
      t4: h = 1/32 + 1/4 = 9/32        s=0 v=9/32
      t5: h = 9/64 + 1/2 = 41/64       s=0 v=41/64
    (subtracting 1 instead would leave v_2 = -1/8, h_3 = 11/16 < 3/4: no spike at t3.)"""
    x = torch.tensor([0.5, 0.625, 0.75, 0.25, 0.5], dtype=torch.float64).view(-1, 1, 1)
    params = NeuronParams(decay=0.5, threshold=0.75, reset="subtract")
    s, v_t, h = neuron_multistep(x, params, return_membrane=True, fused=False)  # the reference loop
    assert s.flatten().tolist() == [0, 1, 1, 0, 0]
    assert h.flatten().tolist() == [0.5, 0.875, 0.8125, 0.28125, 0.640625]
    assert v_t.item() == 0.640625


def test_step_equals_wu2019_eq5():
    # wu2019 eq. 5-6: u_{t+1} = k u_t (1 - o_t) + I_{t+1}; o = 1[u >= Vth]. Written out independently.
    torch.manual_seed(0)
    x = torch.rand(20, 3, 4, dtype=torch.float64) * 0.8
    k, th = 0.25, 0.75
    u, o, us, os_ = torch.zeros(3, 4, dtype=torch.float64), torch.zeros(3, 4, dtype=torch.float64), [], []
    for t in range(20):
        u = k * u * (1 - o) + x[t]
        o = (u >= th).double()
        us.append(u)
        os_.append(o)
    s, _, h = neuron_multistep(x, NeuronParams(decay=k, threshold=th), return_membrane=True)
    assert torch.equal(s, torch.stack(os_))
    torch.testing.assert_close(h, torch.stack(us), rtol=0, atol=1e-12)
    assert s.sum() > 5  # the comparison saw spikes


def test_step_and_multistep_agree_and_v0():
    x = torch.rand(6, 2, 3)
    v0 = torch.rand(2, 3)
    p = NeuronParams(decay=0.8, reset="subtract")
    s_all, v_all = neuron_multistep(x, p, v0=v0)
    v, spikes = v0, []
    for t in range(6):
        s, v = neuron_step(x[t], v, p)
        spikes.append(s)
    assert torch.equal(s_all, torch.stack(spikes)) and torch.equal(v_all, v)


def _two_step_grads(**kw):
    """Grad of L = s_1 + s_2 w.r.t. x_1, x_2 for an LIF (decay 0.5, th 1, rectangular a = 1)."""
    x = torch.tensor(kw.pop("x"), dtype=torch.float64, requires_grad=True)
    s, _ = neuron_multistep(x.view(2, 1), NeuronParams(decay=0.5, **kw))
    s.sum().backward()
    return x.grad.tolist()


# Case A: x = (0.8, 0.7). h1 = 0.8 (s1=0, h(-0.2)=1); v1 = h1 (1 - s1); h2 = 0.5 v1 + 0.7 = 1.1 (s2=1,
# h(0.1)=1). dL/dx2 = h(0.1) = 1. dL/dx1 = ds1/dh1 + ds2/dh2 * dh2/dv1 * dv1/dh1 with ds1/dh1 = 1:
#   zero reset:  dv1/dh1 = 1 - s1 - h1 h(h1-1) = 1 - 0 - 0.8 = 0.2;  detached: 1 - s1 = 1
#   dh2/dv1 = 0.5 (leak_grad) or 1 (leak in forward only)
#   -> 1 + 0.5*0.2 = 1.1 | detach: 1 + 0.5 = 1.5 | no leak grad: 1 + 0.2 = 1.2 | both: 1 + 1 = 2
#   subtract reset: dv1/dh1 = 1 - th h(h1-1) = 0 -> 1 + 0 = 1 | detached: dv1/dh1 = 1 -> 1.5
# Case B: x = (1.2, 0.9). h1 = 1.2 (s1=1, h(0.2)=1), zero reset v1 = 0, h2 = 0.9 (s2=0, h(-0.1)=1).
#   dL/dx1 = 1 + 0.5 * (1 - 1 - 1.2 * 1) = 0.4 | detached: 1 + 0.5 * (1 - 1) = 1
@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"x": [0.8, 0.7]}, [1.1, 1.0]),
        ({"x": [0.8, 0.7], "detach_reset": True}, [1.5, 1.0]),
        ({"x": [0.8, 0.7], "leak_grad": False}, [1.2, 1.0]),
        ({"x": [0.8, 0.7], "leak_grad": False, "detach_reset": True}, [2.0, 1.0]),
        ({"x": [0.8, 0.7], "reset": "subtract"}, [1.0, 1.0]),
        ({"x": [0.8, 0.7], "reset": "subtract", "detach_reset": True}, [1.5, 1.0]),
        ({"x": [1.2, 0.9]}, [0.4, 1.0]),
        ({"x": [1.2, 0.9], "detach_reset": True}, [1.0, 1.0]),
    ],
)
def test_bptt_two_steps_by_hand(kw, expected):
    assert _two_step_grads(**kw) == pytest.approx(expected, abs=1e-12)


def test_leak_grad_false_keeps_forward_exact():
    x = torch.rand(10, 4, 5)
    a = neuron_multistep(x, NeuronParams(decay=0.7, threshold=0.5), return_membrane=True)
    b = neuron_multistep(x, NeuronParams(decay=0.7, threshold=0.5, leak_grad=False), return_membrane=True)
    assert all(torch.equal(u, w) for u, w in zip(a, b))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_membrane_readout_on_low_precision_keeps_a_float32_running_sum(dtype):
    # 0.999 v + 0.0011 summed in bfloat16 stalled at v = 0.5 (float32: v_T = 0.950)
    x = (torch.full((2000, 2, 3), 0.0011) + torch.linspace(0, 1e-3, 6).view(2, 3)).to(dtype).requires_grad_()
    v, expected = None, []  # plain float32 loop on the same (rounded) currents
    for x_t in x.detach().float():
        v = x_t if v is None else 0.999 * v + x_t
        expected.append(v)
    expected = torch.stack(expected)
    out = membrane_readout(x, 0.999)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), expected.to(dtype).float(), rtol=0, atol=0)
    out[-1].float().sum().backward()  # dv_T/dx_t = 0.999^(T-1-t), rounded once to dtype
    weights = 0.999 ** torch.arange(1999, -1, -1, dtype=torch.float64)
    torch.testing.assert_close(x.grad.float(), weights.view(-1, 1, 1).expand(2000, 2, 3).to(dtype).float(),
                               rtol=1e-2, atol=1e-3)


def test_membrane_readout_by_hand():
    # decay 0.5: v = 1, 0.5*1 + 2 = 2.5, 0.5*2.5 - 1 = 0.25; decay 1: cumulative sums 1, 3, 2.
    x = torch.tensor([1.0, 2.0, -1.0]).view(3, 1, 1)
    assert membrane_readout(x, 0.5).flatten().tolist() == [1.0, 2.5, 0.25]
    assert membrane_readout(x).flatten().tolist() == [1.0, 3.0, 2.0]


def test_modules_are_stateless_and_repr():
    lif = LIF(decay=0.5)
    x = torch.tensor(X).view(5, 1, 1)
    first, second = lif(x), lif(x)  # a second call starts from v = 0 again
    assert torch.equal(first, second) and first.flatten().tolist() == [0, 0, 1, 1, 0]
    assert repr(lif) == "LIF(decay=0.5, threshold=1, reset='zero', surrogate=rectangular(a=1))"
    r = repr(IF(threshold=0.75, reset="subtract", surrogate="arctan", surrogate_args={"alpha": 3}))
    assert r == "IF(decay=1, threshold=0.75, reset='subtract', surrogate=arctan(alpha=3))"
    assert "leak_grad=False" in repr(LIF(0.9, leak_grad=False))
    assert lif.with_threshold(2.0).params.threshold == 2.0
    assert copy.deepcopy(lif).params == lif.params and pickle.loads(pickle.dumps(lif)).params == lif.params


def test_module_backward_shapes():
    x = torch.randn(4, 2, 3, 5, 5, requires_grad=True)  # [T, B, C, H, W]
    s = LIF(decay=0.9, threshold=0.3, surrogate="sigmoid")(x)
    assert s.shape == x.shape
    s.sum().backward()
    assert x.grad.shape == x.shape and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"decay": 0.0}, r"decay=0.0 is outside \(0, 1\]"),
        ({"decay": 1.5}, r"decay=1.5 is outside \(0, 1\]"),
        ({"threshold": 0.0}, "threshold=0.0 must be a finite number > 0"),
        ({"threshold": -1.0}, "threshold=-1.0 must be"),
        ({"reset": "hard"}, "unknown reset 'hard'; valid: none, subtract, zero"),
        ({"surrogate": "box"}, "unknown surrogate 'box'"),
        ({"surrogate_args": {"k": 2}}, "unknown parameter 'k' for surrogate 'rectangular'"),
    ],
)
def test_params_validation(kw, message):
    with pytest.raises(ConfigError, match=message):
        NeuronParams(**kw)


def test_shape_validation():
    p = NeuronParams()
    with pytest.raises(ConfigError, match=r"time-first \[T, B, ...\]"):
        neuron_multistep(torch.zeros(5), p)
    with pytest.raises(ConfigError, match="initial membrane shape"):
        neuron_multistep(torch.zeros(5, 2, 3), p, v0=torch.zeros(2, 4))
    with pytest.raises(ConfigError, match="membrane shape"):
        neuron_step(torch.zeros(2, 3), torch.zeros(3, 2), p)
    with pytest.raises(ConfigError, match="readout decay"):
        membrane_readout(torch.zeros(3, 1), decay=0.0)


def test_params_frozen_and_hashable():
    p = NeuronParams(decay=0.5, surrogate_args={"a": 0.5})
    with pytest.raises(AttributeError):
        p.decay = 0.9
    assert hash(p) == hash(NeuronParams(decay=0.5, surrogate_args={"a": 0.5}))


NEURONS = {"IF": IF, "LIF": lambda: LIF(decay=0.7), "ChunkedIF": ChunkedIF, "LeakCorrectedLIF": LeakCorrectedLIF}
needs_fused = pytest.mark.skipif(not fused_available(), reason="numba (extra 'fast') missing or DEEPSPIKE_FUSED=0")


@pytest.mark.parametrize("name", NEURONS)
@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int64, torch.complex64])
@pytest.mark.parametrize("grad", [True, False])
def test_a_non_floating_input_is_one_config_error(name, dtype, grad):
    x = torch.ones(3, 2, 4).to(dtype)
    message = r"neuron input must be a floating-point tensor \(float16, bfloat16, float32 or float64\), got torch\."
    with torch.set_grad_enabled(grad), pytest.raises(ConfigError, match=message):
        NEURONS[name]()(x)


def test_functions_check_the_dtype_too():
    with pytest.raises(ConfigError, match="floating-point tensor"):
        neuron_step(torch.ones(2, 3, dtype=torch.int32), None, NeuronParams())
    with pytest.raises(ConfigError, match="floating-point tensor"):
        neuron_multistep(torch.ones(2, 3, dtype=torch.bool), NeuronParams())


@pytest.mark.parametrize("name", NEURONS)
@pytest.mark.parametrize("shape", [(0, 2, 4), (3, 0, 4), (0, 0, 1, 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_an_empty_input_gives_empty_spikes_and_gradients(name, shape, dtype):
    x = torch.zeros(shape, dtype=dtype, requires_grad=True)
    s = NEURONS[name]()(x)
    s.sum().backward()
    assert (s.shape, s.dtype, x.grad.shape) == (shape, dtype, shape)
    with torch.no_grad():
        assert NEURONS[name]()(x).shape == shape


def test_no_time_steps_keep_the_initial_membrane():
    v0 = torch.rand(2, 3)
    s, v, h = neuron_multistep(torch.zeros(0, 2, 3), NeuronParams(), v0=v0, return_membrane=True)
    assert s.shape == h.shape == (0, 2, 3) and torch.equal(v, v0)
    assert membrane_readout(torch.zeros(0, 2), decay=0.5).shape == (0, 2)


def _with_nan(shape=(8, 2, 3), at=(2, 0, 1), seed=0):
    """Random currents in [0, 0.9) and the same with one NaN at step ``at[0]`` of neuron ``at[1:]``."""
    x = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 0.9
    bad = x.clone()
    bad[at] = float("nan")
    return x, bad


def _assert_nan_from(s, s_clean, at):
    """``s`` is NaN for neuron ``at[1:]`` from step ``at[0]`` on and equals ``s_clean`` everywhere else."""
    t, idx = at[0], (slice(None),) + tuple(at[1:])
    nan = torch.zeros_like(s, dtype=torch.bool)
    nan[idx] = torch.arange(s.shape[0]) >= t
    assert torch.equal(torch.isnan(s), nan)
    assert torch.equal(s[~nan], s_clean[~nan])


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("fused", [False, pytest.param(True, marks=needs_fused)])
@pytest.mark.parametrize("grad", [False, True])
def test_a_nan_current_makes_that_neurons_spikes_nan_from_then_on(reset, fused, grad):
    """The NaN policy (``neurons.dynamics``): propagated, on the reference loop and the fused kernel."""
    x, bad = _with_nan()
    p = NeuronParams(decay=0.8, threshold=0.5, reset=reset)
    s_clean, _ = neuron_multistep(x, p, fused=fused)
    s, v = neuron_multistep(bad.requires_grad_(grad), p, fused=fused)
    _assert_nan_from(s.detach(), s_clean, (2, 0, 1))
    assert torch.isnan(v[0, 1]) and not torch.isnan(v[1]).any()


@pytest.mark.parametrize("value", ["0", "false", "off", "no"])
def test_a_forced_kernel_refused_by_the_switch_names_every_off_value(monkeypatch, value):
    """``DEEPSPIKE_FUSED=false`` switches the kernels off as ``0`` does; the refusal said they need 'DEEPSPIKE_FUSED
    not 0', which a user who set ``false`` meets. It now names every value that switches them off."""
    monkeypatch.setenv("DEEPSPIKE_FUSED", value)
    with pytest.raises(ConfigError, match="DEEPSPIKE_FUSED not 0/false/off/no, CPU float32"):
        neuron_multistep(torch.rand(3, 2, 4), NeuronParams(decay=0.5), fused=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_forced_kernel_on_an_empty_batch_gives_empty_spikes(dtype):
    """``fused=True`` on a batch of no sample (numba on, CPU float32) raised the refusal 'needs numba ..., CPU float32
    tensors', every condition of which the input met: no kernel runs an empty tensor. It now gives the loop's empty
    spikes and the zero membrane, as ``fused=None`` does."""
    x = torch.rand(3, 0, 4, dtype=dtype)
    s, v = neuron_multistep(x, NeuronParams(decay=0.5), fused=True)
    assert s.shape == (3, 0, 4) and s.dtype == dtype and v.shape == (0, 4)
