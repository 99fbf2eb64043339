"""``train.temporal_grad=eprop``: gradients against an independent reference, random feedback, refusals, runs.

The reference is Bellec et al.'s own check of e-prop (Nat. Commun. 2020, Methods): backpropagation through time
of the same net, written here step by step in float64 with its own spike function, in which the spikes reach
other neurons (the recurrent weights) and the reset with their gradient stopped, while each neuron's own state
(membrane and adaptation) keeps it. Its gradient of ``(1/T) sum_t CE(o_t, y)`` is then exactly e-prop's, which
the library computes forward in time with eligibility traces instead.
"""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cross_entropy_method import CrossEntropyMethod
from deepspike.analysis.quantize import add_fake_quantization, remove_fake_quantization
from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.layers.event_frames import FrameEncoder
from deepspike.layers.readout import MembraneReadout, SpikeRateReadout
from deepspike.layers.recurrent import RecurrentSpiking
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods import get_method
from deepspike.methods.rate_network import RateNetwork
from deepspike.models import create_architecture
from deepspike.neurons import LIF, NeuronParams
from deepspike.neurons.adaptive import AdaptiveLIF
from deepspike.neurons.multi_spike import MultiSpikeLIF
from deepspike.neurons.state_quant import StateQuant
from deepspike.training.eprop import adaptive_synapses
from deepspike.training.temporal_grad import online_step, prepare_temporal_grad
from tiny_run import TINY, full_and_resumed_weights

SLOPE = 2.0  # fast_sigmoid's k: sigma'(x) = 1 / (1 + k |x|)^2


class _Spike(torch.autograd.Function):
    """H(x) with the fast-sigmoid pseudo-derivative, written apart from the library's surrogates."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (1 + SLOPE * x.abs()) ** 2



def _net(recurrent, reset="subtract", decay=0.8, threshold=0.5, rho=0.9, beta=0.6, bias=True, timesteps=6):
    """Frames [B, T, 5] -> (recurrent) Linear(5 -> 4) -> adaptive LIF -> Linear(4 -> 3) -> per-step readout."""
    torch.manual_seed(5)
    params = NeuronParams(decay=decay, threshold=threshold, reset=reset, surrogate="fast_sigmoid",
                          surrogate_args={"k": SLOPE})
    neuron = AdaptiveLIF(params, adapt_decay=rho, adapt_scale=beta)
    ff, out = nn.Linear(5, 4, bias=bias), nn.Linear(4, 3)
    ff.weight.data.uniform_(-0.3, 1.0)
    if recurrent:
        body = nn.Sequential(RecurrentSpiking(TimeDistributed(ff), neuron, 4), TimeDistributed(out))
        body[0].recurrent.module.weight.data.uniform_(-0.6, 0.6)
    else:
        body = nn.Sequential(TimeDistributed(ff), neuron, TimeDistributed(out))
    return RateNetwork(FrameEncoder(), body, MembraneReadout(), timesteps=timesteps).double().train()


def _layers(net):
    first = net.body[0]
    if isinstance(first, RecurrentSpiking):
        return first.feedforward.module, first.recurrent.module, first.neuron, net.body[1].module
    return first.module, None, net.body[1], net.body[2].module


def _reference_gradients(net, frames, y, feedback=None):
    """Bellec et al.'s stopped-gradient BPTT (module docstring), in float64; ``feedback``: a fixed matrix through
    which the output error reaches the spikes instead of the readout weight (random e-prop)."""
    ff, rec, neuron, out = _layers(net)
    k, th, rho, beta = neuron.fixed.decay, neuron.fixed.threshold, neuron.adapt_decay, neuron.adapt_scale
    params = [p for p in (ff.weight, ff.bias, out.weight, out.bias) if p is not None] + ([rec.weight] if rec else [])
    copies = [p.detach().clone().requires_grad_() for p in params]
    named = dict(zip(params, copies, strict=True))
    v = a = None
    s_prev = torch.zeros(len(y), 4, dtype=torch.float64)
    loss = 0.0
    steps = frames.shape[1]
    for t in range(steps):
        current = frames[:, t] @ named[ff.weight].T + (named[ff.bias] if ff.bias is not None else 0)
        if rec is not None:
            current = current + s_prev.detach() @ named[rec.weight].T  # stopped: another neuron's spike
        h = current if v is None else k * v + current
        theta = th if a is None else th + beta * a
        s = _Spike.apply(h - theta)
        reset = theta * s if neuron.fixed.reset == "subtract" else h * s
        v = h - reset.detach()  # the reset is not differentiated
        a = s if a is None else rho * a + s  # the own adaptation keeps its gradient
        if feedback is None:
            o = s @ named[out.weight].T + named[out.bias]
        else:  # value W s, gradient to s through B
            o = s.detach() @ named[out.weight].T + named[out.bias] + s @ feedback.T - (s @ feedback.T).detach()
        loss = loss + F.cross_entropy(o, y) / steps
        s_prev = s
    loss.backward()
    return {p: c.grad for p, c in named.items()}


def _frames():
    g = torch.Generator().manual_seed(11)
    return torch.rand(7, 6, 5, generator=g, dtype=torch.float64) * 1.5, torch.tensor([0, 1, 2, 2, 1, 0, 1])


@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("beta", [0.0, 0.6])
def test_eprop_gradients_equal_the_stopped_gradient_bptt_of_bellec_et_al(recurrent, reset, beta):
    net = _net(recurrent, reset=reset, beta=beta)
    frames, y = _frames()
    expected = _reference_gradients(net, frames, y)
    net.zero_grad()
    online_step(net, net, CrossEntropyMethod(), frames, y, "eprop")
    spikes_seen = False
    for p, g in expected.items():
        assert g.abs().sum() > 0
        torch.testing.assert_close(p.grad, g, rtol=1e-10, atol=1e-12)
        spikes_seen = True
    assert spikes_seen


def test_the_adaptation_eligibility_changes_the_gradient():
    """Without the adaptation term (beta's path) the gradient of the weights onto the neuron would differ: the
    reference with beta > 0 is not the beta = 0 gradient of the same spikes."""
    net = _net(True, beta=0.6)
    frames, y = _frames()
    net.zero_grad()
    online_step(net, net, CrossEntropyMethod(), frames, y, "eprop")
    with_adaptation = net.body[0].feedforward.module.weight.grad.clone()
    synapses = adaptive_synapses(net)
    assert [len(s.layers) for s in synapses] == [2]  # feed-forward and feedback weights onto the one neuron
    net.zero_grad()
    synapses[0].neuron.adapt_scale = 0.0
    online_step(net, net, CrossEntropyMethod(), frames, y, "eprop")
    assert not torch.allclose(with_adaptation, net.body[0].feedforward.module.weight.grad)


@pytest.mark.parametrize("recurrent", [False, True])
def test_random_feedback_sends_the_error_through_the_fixed_matrix(recurrent):
    net = _net(recurrent)
    prepare_temporal_grad(net, "eprop", None, "stbp", eprop_feedback="random", seed=3)
    readout = net.body[-1]
    b = readout.feedback
    assert b.shape == readout.module.weight.shape and not torch.equal(b, readout.module.weight)
    assert b.abs().max() <= 1 / 4 ** 0.5  # U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in 4
    frames, y = _frames()
    expected = _reference_gradients(net, frames, y, feedback=b)
    net.zero_grad()
    online_step(net, net, CrossEntropyMethod(), frames, y, "eprop")
    for p, g in expected.items():
        torch.testing.assert_close(p.grad, g, rtol=1e-10, atol=1e-12)


def test_random_feedback_matrices_depend_on_the_seed_only():
    first, again, other = _net(True), _net(True), _net(True)
    torch.manual_seed(123)  # the global generator plays no part
    prepare_temporal_grad(first, "eprop", None, "stbp", eprop_feedback="random", seed=3)
    prepare_temporal_grad(again, "eprop", None, "stbp", eprop_feedback="random", seed=3)
    prepare_temporal_grad(other, "eprop", None, "stbp", eprop_feedback="random", seed=4)
    assert torch.equal(first.body[-1].feedback, again.body[-1].feedback)
    assert not torch.equal(first.body[-1].feedback, other.body[-1].feedback)
    assert "feedback" not in "".join(first.state_dict())  # checkpoints and exports never see it


def test_an_mlps_adaptive_hidden_and_output_neurons_are_each_paired_with_the_linear_layer_before_them():
    arch = create_architecture("mlp", num_classes=10, input_shape=(1, 8, 8), hidden=[32])
    net = get_method("stbp", {"timesteps": 2, "encoder": "direct", "neuron": "alif"}).build(arch)
    pairs = [(s.neuron, [m.module.weight.shape for m in s.layers]) for s in adaptive_synapses(net)]
    assert [p[1] for p in pairs] == [[(32, 64)], [(10, 32)]]
    assert pairs[1][0] is net.readout.neuron  # the spike-rate readout's own neurons


def test_an_adaptive_neuron_after_a_convolution_is_refused_in_one_line():
    params = NeuronParams(decay=0.8)
    body = nn.Sequential(TimeDistributed(nn.Conv2d(1, 2, 3)), AdaptiveLIF(params), TimeDistributed(nn.Flatten()),
                         TimeDistributed(nn.Linear(2, 3)))
    net = RateNetwork(FrameEncoder(), body, MembraneReadout(), timesteps=2)
    with pytest.raises(ConfigError, match=r"^train.temporal_grad=eprop keeps the eligibility of adaptive neurons "
                                          r"\(alif\) fed straight by a linear layer .*: use method.neuron=lif or "
                                          r"train.temporal_grad=bptt$"):
        prepare_temporal_grad(net, "eprop", None, "stbp")


def test_ottt_still_refuses_adaptive_neurons():
    with pytest.raises(ConfigError, match="^train.temporal_grad=ottt needs one neuron decay .* an adaptive one"):
        prepare_temporal_grad(_net(True), "ottt", None, "stbp")


@pytest.mark.parametrize("bad, says", [
    (["train.temporal_grad=ottt", "train.eprop_feedback=random"], "null unless train.temporal_grad=eprop"),
    (["train.temporal_grad=eprop", "train.eprop_feedback=backprop"], "valid: symmetric, random"),
])
def test_bad_feedback_settings_are_refused(bad, says):
    with pytest.raises(ConfigError, match=says):
        load_config(None, [*TINY, *bad])


RSNN_ALIF = ["data.name=digits_rows", "data.augment.crop_padding=0", "model.name=rsnn", "model.args.hidden=[12]",
             "method.encoder=frames", "method.timesteps=8", "method.neuron=alif", "method.adapt_scale=0.3",
             "method.readout=membrane",
             "train.temporal_grad=eprop"]


@pytest.mark.parametrize(("feedback", "kappa"), [("symmetric", "null"), ("random", "null"), ("symmetric", "0.8")])
def test_an_eprop_run_resumes_exactly_and_learns(tmp_path, feedback, kappa):
    cfg = load_config(None, [*TINY, *RSNN_ALIF, f"train.eprop_feedback={feedback}",
                             f"train.eprop_readout_decay={kappa}"])  # kappa: the leaky readout
    full, cut = full_and_resumed_weights(cfg, tmp_path)
    for key, value in full.items():
        assert torch.equal(value, cut[key]), key
    loss = [json.loads(line)["train_loss"] for line in (tmp_path / "full" / "metrics.jsonl").open()]
    assert loss[1] < loss[0]  # it learns


@pytest.mark.parametrize("recurrent", [False, True])
def test_eprop_under_bf16_autocast_gives_the_float32_gradients_to_bfloat16s_rounding(recurrent):
    net = _net(recurrent).float()
    frames, y = _frames()
    net.zero_grad()
    online_step(net, net, CrossEntropyMethod(), frames.float(), y, "eprop")
    expected = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    online_step(net, net, CrossEntropyMethod(), frames.float(), y, "eprop", precision=torch.bfloat16)  # was a
    for p, g in zip(net.parameters(), expected, strict=True):  # RuntimeError (BFloat16 != float) in backward
        assert p.grad.dtype == torch.float32 and (p.grad - g).norm() < 0.05 * g.norm()


@pytest.mark.parametrize("recurrent", [False, True])
def test_eprop_trains_a_net_whose_weights_are_fake_quantized_as_analyze_qat_does(recurrent):
    """QAT parametrizes the weights (``analysis.quantize``): the layers are then subclasses of ``nn.Linear`` whose
    ``weight`` is computed; e-prop pairs them as before and its correction reaches the full-precision weight
    straight through, as on a net with the quantized weights baked in."""
    net, baked = add_fake_quantization(_net(recurrent), 4), _net(recurrent)  # the same weights
    remove_fake_quantization(add_fake_quantization(baked, 4), bake=True)
    frames, y = _frames()
    baked.zero_grad()
    online_step(baked, baked, CrossEntropyMethod(), frames, y, "eprop")
    net.zero_grad()
    online_step(net, net, CrossEntropyMethod(), frames, y, "eprop")  # was: ConfigError, "this net feeds one otherwise"
    full_precision = dict(net.named_parameters())
    for name, p in baked.named_parameters():
        name = name.replace(".weight", ".parametrizations.weight.original") if name.endswith("weight") else name
        torch.testing.assert_close(full_precision[name].grad, p.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("recurrent", [False, True])
def test_an_adaptive_neuron_fed_by_two_linear_layers_in_a_row_is_refused_in_one_line(recurrent):
    """``Linear -> Linear -> alif``: the first layer's synapses reach the neuron through the second, so their
    adaptation eligibility is not the second layer's; it was accepted and the first weight's gradient was 21% off
    Bellec et al.'s reference."""
    params = NeuronParams(decay=0.8)
    first, neuron = TimeDistributed(nn.Linear(5, 4)), AdaptiveLIF(params)
    hidden = RecurrentSpiking(TimeDistributed(nn.Linear(4, 4)), neuron, 4) if recurrent else nn.Sequential(
        TimeDistributed(nn.Linear(4, 4)), neuron)
    body = nn.Sequential(first, hidden, TimeDistributed(nn.Linear(4, 3)))
    net = RateNetwork(FrameEncoder(), body, MembraneReadout(), timesteps=2)
    with pytest.raises(ConfigError, match=r"^train.temporal_grad=eprop keeps the eligibility of adaptive neurons "
                                          r"\(alif\) fed straight by a linear layer .*reading spikes or the input\); "
                                          r"this net feeds one otherwise: use method.neuron=lif or "
                                          r"train.temporal_grad=bptt$"):
        prepare_temporal_grad(net, "eprop", None, "stbp")


def test_two_recurrent_adaptive_layers_in_a_row_are_each_paired():
    arch = create_architecture("rsnn", num_classes=3, input_shape=(4,), hidden=[6, 5])
    net = get_method("stbp", {"timesteps": 2, "encoder": "frames", "neuron": "alif", "readout": "membrane"}).build(arch)
    assert [[m.module.weight.shape for m in s.layers] for s in adaptive_synapses(net)] == [
        [(6, 4), (6, 6)], [(5, 6), (5, 5)]]


def test_an_adaptive_neuron_per_position_after_a_position_wise_linear_layer_takes_its_eligibility_per_position():
    """``[B, P, N] -> Linear(N, M) -> alif`` on each of P positions (weights shared): the eligibility is kept per
    sample and position (it was a RuntimeError, tensor sizes 4 and 16), the gradient Bellec et al.'s reference's."""
    torch.manual_seed(5)
    params = NeuronParams(decay=0.8, threshold=0.5, reset="zero", surrogate="fast_sigmoid",
                          surrogate_args={"k": SLOPE})
    ff, out = nn.Linear(5, 4), nn.Linear(12, 3)  # frames [B, T, P=3, 1, N=5]
    ff.weight.data.uniform_(-0.3, 1.0)
    body = nn.Sequential(TimeDistributed(nn.Flatten(1, 2)), TimeDistributed(ff), AdaptiveLIF(params, 0.9, 0.6),
                         TimeDistributed(nn.Flatten()), TimeDistributed(out))
    net = RateNetwork(FrameEncoder(), body, MembraneReadout(), timesteps=6).double().train()
    y = _frames()[1]
    frames = torch.rand(7, 6, 3, 1, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 1.5
    named = {p: p.detach().clone().requires_grad_() for p in (ff.weight, ff.bias, out.weight, out.bias)}
    v = a = None
    loss = 0.0
    for t in range(6):  # the stopped-gradient BPTT of the test above, each position a neuron of its own
        h = frames[:, t, :, 0] @ named[ff.weight].T + named[ff.bias]  # [B, P, M]
        h = h if v is None else 0.8 * v + h
        theta = 0.5 if a is None else 0.5 + 0.6 * a
        s = _Spike.apply(h - theta)
        v, a = h - (h * s).detach(), s if a is None else 0.9 * a + s  # reset to zero, not differentiated
        loss = loss + F.cross_entropy(s.flatten(1) @ named[out.weight].T + named[out.bias], y) / 6
    loss.backward()
    prepare_temporal_grad(net, "eprop", None, "stbp")
    net.zero_grad()
    online_step(net, net, CrossEntropyMethod(), frames, y, "eprop")
    for p, copy in named.items():
        assert copy.grad.abs().sum() > 0
        torch.testing.assert_close(p.grad, copy.grad, rtol=1e-10, atol=1e-12)


def _deep_net(spike_readout, reset):
    """Frames [B, T, 5] -> Linear(5 -> 4) -> alif -> Linear(4 -> 4) -> alif -> Linear(4 -> 3) -> a membrane
    readout, or a third alif whose spike rate is the readout."""
    torch.manual_seed(5)
    params = NeuronParams(decay=0.8, threshold=0.5, reset=reset, surrogate="fast_sigmoid", surrogate_args={"k": SLOPE})
    layers = [nn.Linear(5, 4), nn.Linear(4, 4), nn.Linear(4, 3)]
    for lin in layers[:2]:
        lin.weight.data.uniform_(-0.3, 1.0)
    body = nn.Sequential(TimeDistributed(layers[0]), AdaptiveLIF(params, 0.9, 0.6), TimeDistributed(layers[1]),
                         AdaptiveLIF(params, 0.9, 0.6), TimeDistributed(layers[2]))
    readout = SpikeRateReadout(AdaptiveLIF(params, 0.9, 0.6)) if spike_readout else MembraneReadout()
    return RateNetwork(FrameEncoder(), body, readout, timesteps=6).double().train(), layers


def _deep_reference(net, layers, frames, y, own):
    """The stopped-gradient BPTT of ``_reference_gradients`` for a stack of alif layers: the spikes pass the
    gradient on at their own step, only neuron ``own``'s state keeps it through time (the one its layer feeds)."""
    neurons = [m for m in net.modules() if isinstance(m, AdaptiveLIF)]
    named = {p: p.detach().clone().requires_grad_() for lin in layers for p in (lin.weight, lin.bias)}
    state, loss = [(None, None)] * len(neurons), 0.0
    for t in range(frames.shape[1]):
        z = frames[:, t]
        for i, lin in enumerate(layers):
            z = z @ named[lin.weight].T + named[lin.bias]
            if i < len(neurons):
                v, a = (s if i == own or s is None else s.detach() for s in state[i])
                h = z if v is None else 0.8 * v + z
                theta = 0.5 if a is None else 0.5 + 0.6 * a
                z = _Spike.apply(h - theta)
                reset = theta * z if neurons[i].fixed.reset == "subtract" else h * z
                state[i] = (h - reset.detach(), z if a is None else 0.9 * a + z)
        loss = loss + F.cross_entropy(z, y) / frames.shape[1]
    loss.backward()
    return named[layers[own].weight].grad, named[layers[own].bias].grad


@pytest.mark.parametrize("spike_readout", [False, True])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_two_adaptive_layers_and_an_adaptive_output_take_the_reference_gradients(spike_readout, reset):
    """The lower layer's learning signal comes through the upper neurons at the same step (their slope), its
    eligibility through its own neurons' state; a spike-rate readout's alif is paired with the output layer."""
    net, layers = _deep_net(spike_readout, reset)
    frames, y = _frames()
    net.zero_grad()
    online_step(net, net, CrossEntropyMethod(), frames, y, "eprop")
    for own, lin in enumerate(layers):
        weight, bias = _deep_reference(net, layers, frames, y, own)
        assert weight.abs().sum() > 0
        torch.testing.assert_close(lin.weight.grad, weight, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(lin.bias.grad, bias, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("recurrent", [False, True])
def test_the_one_pass_kernel_gives_the_torch_steps_gradients(recurrent, monkeypatch):
    """``training.eprop_kernels`` (numba: correction and eligibility update in one pass) against the torch form
    (``DEEPSPIKE_FUSED=0``), float32, with a bias column, and checked to have run."""
    pytest.importorskip("numba")
    from deepspike.training import eprop_kernels

    runs = []
    kernel = eprop_kernels.correct_and_advance
    monkeypatch.setattr(eprop_kernels, "correct_and_advance", lambda *a: runs.append(1) or kernel(*a))
    frames, y = _frames()
    grads = {}
    for switch in ("0", "1"):
        monkeypatch.setenv("DEEPSPIKE_FUSED", switch)
        net = _net(recurrent).float()
        net.zero_grad()
        online_step(net, net, CrossEntropyMethod(), frames.float(), y, "eprop")
        grads[switch] = [p.grad.clone() for p in net.parameters()]
    assert runs  # the kernel ran with the switch on
    for fused, plain in zip(grads["1"], grads["0"], strict=True):
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)


def _leaky_net(recurrent, neuron, kappa, reset="subtract"):
    """``_net`` with a LIF (``neuron="lif"``) or adaptive LIF and the leaky readout ``kappa`` set up."""
    net = _net(recurrent, reset=reset)
    if neuron == "lif":
        lif = LIF(decay=0.8, threshold=0.5, reset=reset, surrogate="fast_sigmoid", surrogate_args={"k": SLOPE})
        if recurrent:
            net.body[0].neuron = lif.double()
        else:
            net.body[1] = lif.double()
    prepare_temporal_grad(net, "eprop", None, "stbp", eprop_readout_decay=kappa)
    return net


def _leaky_reference(net, frames, y, kappa, feedback=None):
    """``_reference_gradients`` with the readout leaking, ``y_t = kappa y_{t-1} + o_t``, the gradient through it
    kept (exact BPTT through the readout); a LIF neuron is an adaptive one with ``beta = 0``; ``feedback`` as
    there."""
    ff, rec, neuron, out = _layers(net)
    fixed = neuron.params if isinstance(neuron, LIF) else neuron.fixed
    k, th = fixed.decay, fixed.threshold
    rho, beta = (0.0, 0.0) if isinstance(neuron, LIF) else (neuron.adapt_decay, neuron.adapt_scale)
    named = {p: p.detach().clone().requires_grad_() for p in (ff.weight, ff.bias, out.weight, out.bias)}
    if rec is not None:
        named[rec.weight] = rec.weight.detach().clone().requires_grad_()
    v = a = score = None
    s_prev, loss = torch.zeros(len(y), 4, dtype=torch.float64), 0.0
    for t in range(frames.shape[1]):
        current = frames[:, t] @ named[ff.weight].T + named[ff.bias]
        if rec is not None:
            current = current + s_prev.detach() @ named[rec.weight].T
        h = current if v is None else k * v + current
        theta = th if a is None else th + beta * a
        s = _Spike.apply(h - theta)
        v = h - (theta * s if fixed.reset == "subtract" else h * s).detach()
        a = s if a is None else rho * a + s
        o = s @ named[out.weight].T + named[out.bias]
        if feedback is not None:  # value W s, gradient to s through B
            o = s.detach() @ named[out.weight].T + named[out.bias] + s @ feedback.T - (s @ feedback.T).detach()
        score = o if score is None else kappa * score + o
        loss = loss + F.cross_entropy(score, y) / frames.shape[1]
        s_prev = s
    loss.backward()
    return {p: c.grad for p, c in named.items()}


@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("neuron", ["lif", "alif"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_a_leaky_readout_filters_the_eligibility_to_the_gradient_through_the_readout(recurrent, neuron, reset):
    """Bellec et al.'s readout ``y_t = kappa y_{t-1} + o_t`` with the traces low-pass filtered by kappa: the
    gradients of the stopped-gradient BPTT through the leaky readout (for the layer without recurrence, the
    exact BPTT gradient with the reset not differentiated), all weights; kappa = 0 is the memoryless one."""
    frames, y = _frames()
    grads = {}
    for kappa in (0.0, 0.7):
        net = _leaky_net(recurrent, neuron, kappa, reset)
        expected = _leaky_reference(net, frames, y, kappa)
        net.zero_grad()
        online_step(net, net, CrossEntropyMethod(), frames, y, "eprop")
        for p, g in expected.items():
            assert g.abs().sum() > 0
            torch.testing.assert_close(p.grad, g, rtol=1e-10, atol=1e-12)
        grads[kappa] = [p.grad.clone() for p in net.parameters()]
    assert any((a - b).abs().max() > 1e-3 for a, b in zip(grads[0.0], grads[0.7], strict=True))


@pytest.mark.parametrize("recurrent", [False, True])
def test_a_leaky_readout_with_random_feedback_sends_the_filtered_error_through_the_fixed_matrix(recurrent):
    net = _net(recurrent)
    prepare_temporal_grad(net, "eprop", None, "stbp", eprop_feedback="random", seed=3, eprop_readout_decay=0.7)
    frames, y = _frames()
    expected = _leaky_reference(net, frames, y, 0.7, feedback=net.body[-1].feedback)
    net.zero_grad()
    online_step(net, net, CrossEntropyMethod(), frames, y, "eprop")
    for p, g in expected.items():
        torch.testing.assert_close(p.grad, g, rtol=1e-10, atol=1e-12)


class _SumMethod(CrossEntropyMethod):
    def loss(self, out, y):
        return out.sum()


def test_a_leaky_readout_gives_the_hand_computed_gradients_of_two_steps():
    """One input, one LIF neuron (k = 0.5, th = 1, reset by subtraction), readout ``o_t = u s_t``, loss
    ``(y_1 + y_2) / 2`` with ``y_1 = o_1``, ``y_2 = kappa o_1 + o_2``, kappa = 0.5, inputs 1.5 then 0.4, w = 1.
    h_1 = 1.5 (spike, psi_1 = 1 / (1 + 2 * 0.5)^2 = 1/4), v_1 = 0.5, h_2 = 0.25 + 0.4 = 0.65 (no spike,
    psi_2 = 1 / (1 + 2 * 0.35)^2 = 1 / 2.89). dE/du = ((1 + kappa) s_1 + s_2) / 2 = 0.75;
    dE/dw = (u / 2)((1 + kappa) e_1 + e_2), e_1 = psi_1 * 1.5, e_2 = psi_2 (0.5 * 1.5 + 0.4)."""
    lif = LIF(decay=0.5, threshold=1.0, reset="subtract", surrogate="fast_sigmoid", surrogate_args={"k": SLOPE})
    ff, out = nn.Linear(1, 1, bias=False).double(), nn.Linear(1, 1, bias=False).double()
    ff.weight.data.fill_(1.0)
    out.weight.data.fill_(0.8)  # in float64 (0.8 rounded to float32 is 1.5e-8 off)
    body = nn.Sequential(TimeDistributed(ff), lif, TimeDistributed(out))
    net = RateNetwork(FrameEncoder(), body, MembraneReadout(), timesteps=2).double().train()
    prepare_temporal_grad(net, "eprop", None, "stbp", eprop_readout_decay=0.5)
    online_step(net, net, _SumMethod(), torch.tensor([[[1.5], [0.4]]], dtype=torch.float64), torch.tensor([0]),
                "eprop")
    e_1, e_2 = 0.25 * 1.5, (0.75 + 0.4) / 2.89
    assert out.weight.grad.item() == pytest.approx(0.75, rel=1e-12)
    assert ff.weight.grad.item() == pytest.approx(0.4 * (1.5 * e_1 + e_2), rel=1e-12)


def test_a_leaky_readout_refuses_a_neuron_whose_eligibility_it_cannot_filter():
    """A layer that is no linear one straight before the neuron, and a quantised membrane (``_slope`` would take
    the surrogate at the unrounded ``h_t`` without the clipped straight-through gradient)."""
    net = _net(False)
    net.body[0] = TimeDistributed(nn.Sequential(nn.Linear(5, 4)))  # not a linear layer straight before the neuron
    with pytest.raises(ConfigError, match="train.eprop_readout_decay filters"):
        prepare_temporal_grad(net, "eprop", None, "stbp", eprop_readout_decay=0.5)
    net = _leaky_net(False, "lif", 0.0)
    net.body[1] = LIF(decay=0.8, threshold=0.5, state_quant=StateQuant(bits=4))
    prepare_temporal_grad(net, "eprop", None, "stbp")  # kappa = 0: the step's own backward takes the slope
    with pytest.raises(ConfigError, match=r"float membranes.*method.state_bits"):
        prepare_temporal_grad(net, "eprop", None, "stbp", eprop_readout_decay=0.5)
    net.body[1] = MultiSpikeLIF(NeuronParams(decay=0.8, threshold=0.5, reset="subtract"), 31)  # a sum of slopes
    prepare_temporal_grad(net, "eprop", None, "stbp")
    with pytest.raises(ConfigError, match=r"float membranes.*method.max_spikes > 1"):
        prepare_temporal_grad(net, "eprop", None, "stbp", eprop_readout_decay=0.5)


class _HeldOutOfOrder(nn.Module):
    """Holds its neuron before the linear layer that feeds it (the order ``adaptive_synapses`` reads)."""

    def __init__(self, neuron):
        super().__init__()
        self.neuron, self.fc = neuron, TimeDistributed(nn.Linear(4, 3))

    def forward(self, x):
        return self.neuron(self.fc(x))


@pytest.mark.parametrize("neuron", ["lif", "alif"])
def test_a_net_that_runs_its_layers_out_of_the_order_it_holds_them_is_refused_naming_the_neuron(neuron):
    """The LIF neurons that the leaky readout pairs too were called adaptive in the refusal."""
    net = _leaky_net(False, neuron, 0.5)
    net.body = nn.Sequential(net.body[0], _HeldOutOfOrder(net.body[1]), TimeDistributed(nn.Linear(3, 3))).double()
    kind = "an adaptive neuron" if neuron == "alif" else "a neuron"
    with pytest.raises(ConfigError, match=f"^train.temporal_grad=eprop paired {kind} of 3 inputs with a linear layer"):
        online_step(net, net, CrossEntropyMethod(), *_frames(), "eprop")
