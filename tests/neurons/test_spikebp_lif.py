"""lee2020's neuron pieces pinned to hand-computed values: LIF forward, leak-corrected derivative,
its spreading over time (code vs rate), the pooling neuron, the integrating output, dropout, init, loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from deepspike.core.errors import ConfigError
from deepspike.layers.dropout import TimeFixedDropout
from deepspike.layers.leaky_integrator import LeakyIntegratorReadout
from deepspike.layers.spiking_pool import SpikingAvgPool
from deepspike.methods import get_method
from deepspike.methods.init import init_weights
from deepspike.models import create_architecture
from deepspike.neurons.spikebp_lif import LeakCorrectedLIF, leak_corrected_derivative, leak_corrected_lif, leak_filter
from spikebp_reference import FiredGate


def seq(values):
    """[T] list -> [T, 1, 1] float64 tensor."""
    return torch.tensor(values, dtype=torch.float64).view(-1, 1, 1)


def test_forward_leak_and_hard_reset_by_hand():
    # leak 0.5, V_th 1: h1 = .6; h2 = .3 + .6 = .9; h3 = .45 + .6 = 1.05 > 1 fire, reset;
    # h4 = 0 + 1.2 fire, reset; h5 = 0.
    s = leak_corrected_lif(seq([0.6, 0.6, 0.6, 1.2, 0.0]), leak=0.5, threshold=1.0)
    assert s.flatten().tolist() == [0, 0, 1, 1, 0]


def test_fires_strictly_above_threshold():
    s = leak_corrected_lif(seq([1.0, 0.5]), leak=1.0, threshold=1.0)  # h1 = 1 (not > 1), h2 = 1.5
    assert s.flatten().tolist() == [0, 1]


def test_leak_corrected_derivative_on_known_spike_train():
    # s = [1, 0, 1, 0, 0], leak 0.9: LF = 0.9^4 + 0.9^2 = 0.6561 + 0.81 = 1.4661, count 2
    # NG = 1 + ln(0.9) * 1.4661 / 2 = 1 - 0.1053605 * 0.73305 = 0.9227655; a' = NG / V_th (V_th = 2)
    s = seq([1, 0, 1, 0, 0])
    lf, count = leak_filter(s, 0.9)
    assert lf.item() == pytest.approx(1.4661, abs=1e-6) and count.item() == 2
    assert leak_corrected_derivative(s, 0.9).item() == pytest.approx(0.9227655, abs=1e-6)
    assert leak_corrected_derivative(s, 0.9, threshold=2.0).item() == pytest.approx(0.9227655 / 2, abs=1e-6)
    assert leak_corrected_derivative(s, 0.9, correction=False).item() == 1.0
    # without the correction (or without a leak) a' = 1[count > 0] / V_th
    assert leak_corrected_derivative(s, 0.9, threshold=2.0, correction=False).item() == 0.5
    assert leak_corrected_derivative(s, 1.0, threshold=4.0).item() == 0.25
    assert leak_corrected_derivative(seq([0, 0, 0]), 0.9).item() == 0.0  # silent neuron: no gradient


def test_a_neuron_that_fired_keeps_its_derivative_however_long_ago_as_lee2020s_text_says():
    """lee2020 sec. 3.1: only a neuron that fires no spike gets a' = 0 (its released code gates on LF > 1e-3). By hand:
    leak 0.5, T = 12, one spike at t = 1: LF = 0.5^11 = 4.8828e-4 < 1e-3, a' = 1 + ln(0.5) 4.8828e-4 = 0.999662;
    leak 0.4, T = 200, one spike at t = 1: LF = 0.4^199 underflows float32 to 0, a' = 1; no spike: 0."""
    spikes = torch.zeros(12, 1, 1)
    spikes[0] = 1.0
    assert leak_corrected_derivative(spikes, 0.5).item() == pytest.approx(1 + math.log(0.5) * 0.5**11, abs=1e-7)
    long = torch.zeros(200, 1, 2)
    long[0, 0, 0] = 1.0
    assert leak_corrected_derivative(long, 0.4).flatten().tolist() == [1.0, 0.0]


@pytest.mark.parametrize("leak", [0.99, 0.5])
def test_the_leak_filter_is_float32_under_bf16_autocast(leak):
    """``LF = sum_t leak^(T-t) s_t`` was a tensordot, which autocast (train.precision=bf16) ran in bfloat16: LF rounded
    and ``a'`` up to 2.7e-4 off; now float32 there too, against a float64 sum of the same spikes."""
    s = (torch.rand(100, 16, 50, generator=torch.Generator().manual_seed(0)) < 0.3).to(torch.uint8)
    powers = leak ** torch.arange(99, -1, -1, dtype=torch.float64)
    expected = (powers.view(100, 1, 1) * s.double()).sum(dim=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lf, _ = leak_filter(s, leak)
        derivative = leak_corrected_derivative(s, leak)
    torch.testing.assert_close(lf.double(), expected, rtol=1e-6, atol=1e-6)
    assert lf.dtype == torch.float32
    torch.testing.assert_close(derivative, leak_corrected_derivative(s, leak), rtol=0, atol=0)


def test_code_derivative_flows_through_firing_steps_only():
    # forward of the first test: s = [0, 0, 1, 1, 0]; leak 0.5: LF = 0.5^2 + 0.5^1 = 0.75, count 2,
    # NG = 1 + ln(0.5) * 0.375 = 0.7400699. Upstream grads g = [1..5]: steps 1-2 inherit step 3's
    # gradient, step 4 its own, step 5 (no later spike) none: grad_x = NG * [3, 3, 3, 4, 0].
    ng = 1 + math.log(0.5) * 0.375
    x = seq([0.6, 0.6, 0.6, 1.2, 0.0]).requires_grad_()
    s = leak_corrected_lif(x, leak=0.5, threshold=1.0, derivative="code")
    s.backward(seq([1, 2, 3, 4, 5]))
    assert x.grad.flatten().tolist() == pytest.approx([3 * ng, 3 * ng, 3 * ng, 4 * ng, 0.0])


def test_rate_derivative_spreads_mean_gradient_evenly():
    # paper eq. 24-26: every step gets a' * mean_t g = 0.7400699 * 3
    ng = 1 + math.log(0.5) * 0.375
    x = seq([0.6, 0.6, 0.6, 1.2, 0.0]).requires_grad_()
    leak_corrected_lif(x, leak=0.5, threshold=1.0, derivative="rate").backward(seq([1, 2, 3, 4, 5]))
    assert x.grad.flatten().tolist() == pytest.approx([3 * ng] * 5)


def _reference_per_step(x, leak, th, ng):
    """The original code's per-step autograd graph (an independent brute-force reference)."""
    mem = torch.zeros_like(x[0])
    outs = []
    for t in range(x.shape[0]):
        mem = mem + x[t]
        ex = F.threshold(mem, th, 0.0)
        mem = mem - ex
        out = FiredGate.apply(ex)
        mem = leak * mem.detach() + mem - mem.detach()
        out = out.detach() + out / th - (out / th).detach()
        out.register_hook(lambda g: g * ng)
        outs.append(out)
    return torch.stack(outs)


def test_code_derivative_matches_per_step_reference():
    torch.manual_seed(0)
    x = (torch.rand(12, 3, 7, dtype=torch.float64) * 1.2).requires_grad_()
    g = torch.randn(12, 3, 7, dtype=torch.float64)
    s = leak_corrected_lif(x, leak=0.9, threshold=1.3)
    s.backward(g)
    ng = leak_corrected_derivative(s.detach(), 0.9).to(torch.float64)
    x_ref = x.detach().clone().requires_grad_()
    s_ref = _reference_per_step(x_ref, 0.9, 1.3, ng)
    s_ref.backward(g)
    assert torch.equal(s.detach(), s_ref.detach())
    assert torch.allclose(x.grad, x_ref.grad, atol=1e-6)


def test_pooling_neuron_by_hand():
    # one 2x2 window over T = 3: averages .25, .5, .75 -> h = .25, .75 (not > .75), 1.5 -> fire.
    x = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.float64)
    x = x.view(3, 1, 1, 2, 2).requires_grad_()  # [T, B, C, H, W]
    s = SpikingAvgPool(2, threshold=0.75)(x)
    assert s.flatten().tolist() == [0, 0, 1]
    # grads [1, 2, 3]: steps 1-2 inherit step 3's 3, times the pool weight 0.25 -> 0.75 per pixel and step
    s.backward(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64).view(3, 1, 1, 1, 1))
    assert torch.allclose(x.grad, torch.full_like(x, 0.75))


def test_integrating_output_and_its_one_over_T_derivative():
    # leak 0.5, x = [1, 2, 3]: V(T) = .25 * 1 + .5 * 2 + 3 = 4.25, output = 4.25 / 3
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64).view(3, 1, 1).requires_grad_()
    out = LeakyIntegratorReadout(0.5)(x)
    assert out.item() == pytest.approx(4.25 / 3)
    out.backward()
    assert x.grad.flatten().tolist() == pytest.approx([1 / 3] * 3)  # the leak is noise in backward


def test_dropout_mask_fixed_over_time_and_new_each_iteration():
    torch.manual_seed(0)
    drop = TimeFixedDropout(0.5).train()
    x = torch.ones(6, 4, 100)  # [T, B, F]
    a, b = drop(x), drop(x)
    assert all(torch.equal(a[0], a[t]) for t in range(6))  # same mask at every step
    assert set(a.unique().tolist()) <= {0.0, 2.0}  # inverted dropout: kept units scaled by 1/(1-p)
    assert not torch.equal(a[0], b[0])  # a new mask next iteration
    assert torch.equal(drop.eval()(x), x)


def test_init_kappa_by_fan_in():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(64, 256, 3, bias=False)  # fan_in = 64 * 9 = 576
    init_weights(conv, 2.0)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / 576), rel=0.03)
    plain = get_method("spikebp", {"timesteps": 2}).build(create_architecture("lee2020_vgg7", width=0.5))
    res = get_method("spikebp", {"timesteps": 2}).build(create_architecture("lee2020_resnet9", width=0.5))
    w_plain = plain.body[2].module.weight  # 32 -> 32 conv, fan_in 288: kappa 2
    w_res = [m for m in res.modules() if isinstance(m, torch.nn.Conv2d)][1].weight  # 32 -> 64, fan_in 288
    assert w_plain.std().item() == pytest.approx(math.sqrt(2 / 288), rel=0.1)
    assert w_res.std().item() == pytest.approx(math.sqrt(1 / 288), rel=0.1)


def test_sse_loss_by_hand():
    method = get_method("spikebp", {})
    out = torch.tensor([[0.5, 0.2], [0.0, 1.0]])
    # sample 1: 0.5 * ((0.5 - 1)^2 + 0.2^2) = 0.145; sample 2: 0; mean 0.0725
    assert method.loss(out, torch.tensor([0, 1])).item() == pytest.approx(0.0725)


@pytest.mark.parametrize("fused", ["1", "0"])
def test_a_nan_current_gives_nan_spikes_from_then_on(monkeypatch, fused):
    """The NaN policy on lee2020's neuron, on the numba kernel (float32, ``DEEPSPIKE_FUSED=1``) and the torch
    loop: NaN spikes from the NaN step on for that neuron, the others unchanged; no spike is counted there."""
    monkeypatch.setenv("DEEPSPIKE_FUSED", fused)
    x = torch.rand(9, 2, 4, generator=torch.Generator().manual_seed(2)) * 0.9
    bad = x.clone()
    bad[3, 1, 2] = float("nan")
    clean = leak_corrected_lif(x, leak=0.9, threshold=0.5)
    s = leak_corrected_lif(bad.requires_grad_(), leak=0.9, threshold=0.5)
    nan = torch.zeros_like(s, dtype=torch.bool)
    nan[3:, 1, 2] = True
    assert torch.equal(torch.isnan(s), nan)
    assert torch.equal(s[~nan], clean[~nan]) and clean.sum() > 5
    s.nansum().backward()  # the derivative of the NaN neuron counts its spikes before the NaN only
    assert torch.isfinite(bad.grad).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_input_keeps_a_float32_membrane(dtype):
    """A bf16 / fp16 input (a layer under autocast) integrates in float32: the spikes equal the float32 run on
    ``x.float()``; 512 steps of 2^-9 reach a threshold of 1 only in float32 (bfloat16 stalls at 0.5)."""
    x = (torch.rand(12, 4, 9, generator=torch.Generator().manual_seed(3)) * 0.6).to(dtype)
    s = leak_corrected_lif(x, leak=0.95, threshold=1.0)
    assert s.dtype == dtype and torch.equal(s.float(), leak_corrected_lif(x.float(), leak=0.95, threshold=1.0))
    assert 0 < s.float().mean() < 1
    slow = torch.full((600, 1), 2.0 ** -9, dtype=torch.bfloat16)
    assert leak_corrected_lif(slow, leak=1.0, threshold=0.999).float().sum() == 1


@pytest.mark.parametrize("leak, threshold, bad", [
    (0.9, 0, "threshold"), (0.9, -1.0, "threshold"), (0.9, math.inf, "threshold"), (0.9, math.nan, "threshold"),
    (0.9, 1e39, "threshold"), (0.9, "1", "threshold"), (0.9, True, "threshold"),
    (0.0, 1.0, "leak"), (1.5, 1.0, "leak"), (math.nan, 1.0, "leak"), ("0.9", 1.0, "leak"),
])
def test_bad_leak_or_threshold_is_a_one_line_config_error_for_the_function_and_the_module(leak, threshold, bad):
    """The bare function checks as the module does: threshold=0 was a ZeroDivisionError in ``1 / threshold``,
    inf / nan / 1e39 (inf in float32) a neuron that never fires, a string leak a TypeError."""
    x = torch.rand(4, 2, 3)
    with pytest.raises(ConfigError, match=f"spikebp {bad}=") as caught:
        leak_corrected_lif(x, leak=leak, threshold=threshold)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match=f"spikebp {bad}="):
        LeakCorrectedLIF(leak, threshold)


def test_a_threshold_below_float32s_smallest_normal_is_refused_by_the_neuron_and_the_pool():
    """The backward divides by the threshold: method.threshold=1e-39 (or 1e-320) was taken and the first batches gave
    NaN losses, reported as 'training diverged ... lower optim.lr or set train.grad_clip'."""
    with pytest.raises(ConfigError, match=r"^spikebp threshold=1e-39 must be a finite number > 0 \(at least float32's "
                                          r"smallest normal 1.175e-38\)$"):
        LeakCorrectedLIF(0.99, 1e-39)
    with pytest.raises(ConfigError, match=r"^SpikingAvgPool threshold=1e-39 must be"):
        SpikingAvgPool(2, 2, 1e-39)
    assert LeakCorrectedLIF(0.99, float(torch.finfo(torch.float32).tiny)).threshold > 0


def test_a_batch_of_another_size_run_in_pieces_is_one_config_error():
    """The carried membrane [2, 3] met a batch of 4 inside temporal_carry: a RuntimeError of ``x_t + leak v``."""
    from deepspike.neurons.carry import temporal_carry

    neuron = LeakCorrectedLIF()
    with temporal_carry(neuron), torch.no_grad():
        neuron(torch.rand(5, 2, 3))
        with pytest.raises(ConfigError, match=r"^initial membrane shape \(2, 3\) does not match one step of the "
                                              r"input \(4, 3\)$"):
            neuron(torch.rand(5, 4, 3))


def test_a_gradient_through_a_leak_below_1_over_e_with_the_correction_is_refused():
    """Before, ``LeakCorrectedLIF(0.2)`` (or ``create_model(..., method="spikebp", leak=0.2)``, which skips the new
    run's check) trained with eq. 22's negative derivative: by hand one spike at the last of 2 steps gives
    ``dL/dx_2 = a' = 1 + ln(0.2) = -0.6094`` for ``L = sum s``, a flipped gradient. Now a gradient through it is one
    line; without gradients (a saved net's evaluation) and with the correction off it still runs."""
    x = torch.tensor([0.5, 1.5]).view(2, 1, 1)  # h1 = .5, h2 = .1 + 1.5 > 1: one spike, at the last step
    with pytest.raises(ConfigError, match=r"^lee2020's leak-corrected LIF takes no gradient here: leak=0.2 is below "
                                          r"1/e = 0.3679 .* \(down to -0.6094 .*: use leak >= 0.3679 or correction: "
                                          r"false \(or run it under torch.no_grad\(\)\)$"):
        LeakCorrectedLIF(0.2)(x.clone().requires_grad_())
    with torch.no_grad():
        assert LeakCorrectedLIF(0.2)(x).flatten().tolist() == [0.0, 1.0]
    off = x.clone().requires_grad_()
    LeakCorrectedLIF(0.2, correction=False)(off).sum().backward()
    assert off.grad.flatten().tolist() == [1.0, 1.0]  # a' = 1 / V_th, the silent step inherits the spike's
    at_bound = x.clone().requires_grad_()
    LeakCorrectedLIF(math.exp(-1))(at_bound).sum().backward()
    assert at_bound.grad.abs().max().item() < 1e-6  # 1 + ln(1/e) = 0
