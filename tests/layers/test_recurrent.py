"""The recurrent spiking layer against a hand-written loop, snnTorch's RLeaky, and itself run in pieces."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers import recurrent as recurrent_layer
from deepspike.layers.recurrent import RecurrentSpiking
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods import create_model
from deepspike.neurons import LIF, PSN, LearnableLIF, NeuronParams
from deepspike.neurons.carry import read_state, temporal_carry, write_state
from deepspike.neurons.masked_psn import MaskedPSN
from deepspike.neurons.sliding_psn import SlidingPSN

T, B, N, M = 7, 3, 5, 6


def _layer(reset="subtract", surrogate="arctan") -> RecurrentSpiking:
    torch.manual_seed(0)
    layer = RecurrentSpiking(TimeDistributed(torch.nn.Linear(N, M, bias=False)),
                             LIF(decay=0.8, threshold=0.5, reset=reset, surrogate=surrogate), M)
    with torch.no_grad():
        layer.recurrent.module.weight.normal_(0.0, 0.6)
        layer.feedforward.module.weight.normal_(0.0, 0.8)
    return layer


def _inputs() -> torch.Tensor:
    torch.manual_seed(1)
    return (torch.rand(T, B, N) < 0.4).float()


def _hand_loop(x, w, v_rec, reset):
    """``I_t = W x_t + V s_{t-1}``, ``v = 0.8 v + I``, ``s = [v >= 0.5]``, then the reset."""
    v, s, out = torch.zeros(B, M), torch.zeros(B, M), []
    for t in range(T):
        v = 0.8 * v + x[t] @ w.T + s @ v_rec.T
        s = (v >= 0.5).float()
        v = v - 0.5 * s if reset == "subtract" else v * (1 - s)
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_spikes_equal_a_hand_written_loop(reset):
    layer, x = _layer(reset), _inputs()
    with torch.no_grad():
        got = layer(x)
        want = _hand_loop(x, layer.feedforward.module.weight, layer.recurrent.module.weight, reset)
    assert got.shape == (T, B, M)
    assert torch.equal(got, want)
    assert 0 < got.sum() < got.numel()  # some neurons fire, not all: the recurrence is exercised
    no_feedback = layer.recurrent.module.weight.detach().clone()
    with torch.no_grad():
        layer.recurrent.module.weight.zero_()
        assert not torch.equal(layer(x), got)  # the feedback changes the spikes
        layer.recurrent.module.weight.copy_(no_feedback)


def test_spikes_and_gradients_equal_snntorch_rleaky():
    """snnTorch's ``RLeaky(all_to_all=True)`` with reset to zero applied in the same step (``reset_delay=False``),
    a bias-free feedback weight and the same arctan surrogate (its ATan, alpha 2) is the same neuron; its spike
    condition is ``v > th`` where ours is ``v >= th``, equal for these random currents."""
    snn = pytest.importorskip("snntorch")
    layer, x = _layer("zero"), _inputs()
    ref = snn.RLeaky(beta=0.8, threshold=0.5, linear_features=M, all_to_all=True, reset_mechanism="zero",
                     reset_delay=False)
    with torch.no_grad():
        ref.recurrent.weight.copy_(layer.recurrent.module.weight)
        ref.recurrent.bias.zero_()
    w_ref = layer.feedforward.module.weight.detach().clone().requires_grad_(True)
    spk, mem = ref.reset_mem()
    ref_out = []
    for t in range(T):
        spk, mem = ref(x[t] @ w_ref.T, spk, mem)
        ref_out.append(spk)
    ref_out = torch.stack(ref_out)
    out = layer(x)
    assert torch.equal(out, ref_out)
    weights = torch.linspace(0.1, 1.0, T * B * M).reshape(T, B, M)  # a loss that weighs every spike differently
    (out * weights).sum().backward()
    (ref_out * weights).sum().backward()
    torch.testing.assert_close(layer.feedforward.module.weight.grad, w_ref.grad)
    torch.testing.assert_close(layer.recurrent.module.weight.grad, ref.recurrent.weight.grad)
    assert layer.recurrent.module.weight.grad.abs().sum() > 0


def test_running_in_pieces_equals_one_call():
    layer, x = _layer(), _inputs()
    whole = layer(x)
    whole.sum().backward()
    grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    with temporal_carry(layer):
        first = layer(x[:3])
        saved = read_state(layer)
        rest = layer(x[3:])
        write_state(layer, saved)  # the replay a checkpointed segment does
        assert torch.equal(layer(x[3:]), rest)
    pieces = torch.cat([first, rest])
    assert torch.equal(pieces, whole)
    pieces.sum().backward()
    for g, p in zip(grads, layer.parameters(), strict=True):
        torch.testing.assert_close(p.grad, g)
    assert layer.neuron.carry is None and layer.state is None  # nothing left behind after the block


def test_the_neuron_starts_at_rest_in_every_call():
    layer, x = _layer(), _inputs()
    assert torch.equal(layer(x), layer(x))
    assert layer.neuron.carry is None and layer.neuron.state is None


class _ArctanSpike(torch.autograd.Function):
    """``H(x)`` forward, ``(alpha/2) / (1 + (pi/2 alpha x)^2)`` with alpha 2 backward (written out here)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).float()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (1 + (torch.pi * x) ** 2)


def test_detached_carry_cuts_the_gradient_through_time():
    """SLTT/OTTT (``detach``), one step per call: neither the fed-back spikes nor the membrane carry gradient from
    step to step; the gradients are those of a loop that detaches both (reset by subtraction, arctan surrogate)."""
    layer, x = _layer(), _inputs()
    with temporal_carry(layer, detach=True):
        out = torch.cat([layer(x[t:t + 1]) for t in range(T)])
    weights = torch.linspace(0.1, 1.0, T * B * M).reshape(T, B, M)
    (out * weights).sum().backward()
    w = layer.feedforward.module.weight.detach().clone().requires_grad_(True)
    v_rec = layer.recurrent.module.weight.detach().clone().requires_grad_(True)
    v, s, ref = torch.zeros(B, M), torch.zeros(B, M), []
    for t in range(T):
        v = 0.8 * v.detach() + x[t] @ w.T + s.detach() @ v_rec.T
        s = _ArctanSpike.apply(v - 0.5)
        v = v - 0.5 * s
        ref.append(s)
    ref = torch.stack(ref)
    (ref * weights).sum().backward()
    assert torch.equal(out, ref)
    torch.testing.assert_close(layer.feedforward.module.weight.grad, w.grad)
    torch.testing.assert_close(layer.recurrent.module.weight.grad, v_rec.grad)
    assert v_rec.grad.abs().sum() > 0


def test_a_sliding_psn_steps_with_its_carried_inputs():
    """The sliding PSN (order 2, w = (0.5, 1), threshold 0.5) in the loop: ``I_t = W x_t + V s_{t-1}``,
    ``h_t = 0.5 I_{t-1} + I_t``, ``s_t = [h_t >= 0.5]``, written out by hand."""
    torch.manual_seed(0)
    neuron = SlidingPSN(2, decay=0.5, threshold=0.5)
    layer = RecurrentSpiking(TimeDistributed(torch.nn.Linear(N, M, bias=False)), neuron, M)
    with torch.no_grad():
        layer.recurrent.module.weight.normal_(0.0, 0.6)
    x = _inputs()
    w, v_rec = layer.feedforward.module.weight.detach(), layer.recurrent.module.weight.detach()
    previous_current, s, want = torch.zeros(B, M), torch.zeros(B, M), []
    for t in range(T):
        current = x[t] @ w.T + s @ v_rec.T
        s = (0.5 * previous_current + current >= 0.5).float()
        previous_current = current
        want.append(s)
    with torch.no_grad():
        got = layer(x)
    assert torch.equal(got, torch.stack(want)) and 0 < got.sum() < got.numel()


def test_a_neuron_that_cannot_step_is_refused():
    with pytest.raises(ConfigError, match="PSN cannot do"):
        RecurrentSpiking(TimeDistributed(torch.nn.Linear(N, M)), PSN(T), M)
    with pytest.raises(ConfigError, match=r"MaskedPSN cannot do \(the masked PSN runs in pieces only once its masking "
                                          r"lambda is 1 .*, and it is 0\); use method.neuron lif, plif, sliding_psn"):
        RecurrentSpiking(TimeDistributed(torch.nn.Linear(N, M)), MaskedPSN(T, 2), M)


def test_stbp_builds_it_from_the_spec_and_other_methods_refuse():
    net = create_model("rsnn", method="stbp", num_classes=4, input_shape=(N,), model_args={"hidden": [M]},
                       timesteps=T, encoder="frames", readout="membrane", loss="ce")
    assert isinstance(net.body[0], RecurrentSpiking)
    x = (torch.rand(B, T, N) < 0.4).float()  # a sequence batch [B, T, F]
    assert net(x).shape == (B, 4)
    for method in ("ann", "spikebp", "ttfs", "stdbp"):
        with pytest.raises(ConfigError, match="is recurrent, which this method cannot build"):
            create_model("rsnn", method=method, num_classes=4, input_shape=(N,))
    with pytest.raises(ConfigError, match="cannot do"):
        create_model("rsnn", method="stbp", num_classes=4, input_shape=(N,), timesteps=T, neuron="psn")


def test_xylo_reads_recurrent_hidden_layers_with_their_feedback_weights():
    """The Xylo mapping's view of the net (no Rockpool needed): a recurrent layer is its feed-forward linear, its
    neuron and its feedback linear; a recurrent output layer is refused in one line (Xylo's output neurons have no
    recurrent weights). The mapping itself: tests/conformance/test_chip_targets.py; NIR export of recurrent nets:
    tests/deploy/test_nir_recurrent.py."""
    from deepspike.deploy.xylo import dense_layers, xylo_layers
    from deepspike.layers.readout import SpikeRateReadout
    from deepspike.methods.rate_network import RateNetwork

    net = create_model("rsnn", method="stbp", num_classes=4, input_shape=(N,), model_args={"hidden": [M, M]},
                       timesteps=T, encoder="frames")
    layers = xylo_layers(net)
    for (lin, neuron, rec), layer in zip(layers, net.body[:2], strict=False):
        assert lin is layer.feedforward.module and neuron is layer.neuron and rec is layer.recurrent.module
    assert layers[2][0] is net.body[2].module and layers[2][1] is net.readout.neuron and layers[2][2] is None
    assert dense_layers(net) == [(lin, neuron) for lin, neuron, _ in layers]
    out = RecurrentSpiking(TimeDistributed(torch.nn.Linear(M, 4)), LIF(decay=0.8), 4)
    net = RateNetwork(torch.nn.Identity(), torch.nn.Sequential(TimeDistributed(torch.nn.Linear(N, M)), LIF()),
                      SpikeRateReadout(out), T)
    with pytest.raises(ConfigError, match="xylo: the output layer \\(RecurrentSpiking\\) cannot be recurrent") as e:
        dense_layers(net)
    assert "\n" not in str(e.value)


def test_the_activity_recorder_counts_the_feedback_synapses():
    """Each spike of steps 0..T-2 reaches the M feedback synapses of the step after (the last step's spikes
    leave the call); the feed-forward layer's events are the input spikes, with fan-out M."""
    from deepspike.layers.activity_recorder import ActivityRecorder

    net = create_model("rsnn", method="stbp", num_classes=4, input_shape=(N,), model_args={"hidden": [M]},
                       timesteps=T, encoder="frames", decay=0.8, threshold=0.3).eval()
    x = (torch.rand(B, T, N) < 0.4).float()
    recorder = ActivityRecorder(net, codings=("rate",), operations=True)
    with recorder, torch.no_grad():
        net(x)
    with torch.no_grad():
        spikes = net.body[0](x.transpose(0, 1))  # [T, B, M]
    feedback = recorder.synapses["body.0.recurrent.module"]
    assert feedback.events == spikes[:-1].sum().item() > 0
    assert feedback.acs == M * feedback.events and feedback.macs == 0
    assert recorder.synapses["body.0.feedforward.module"].events == x.sum().item()
    assert recorder.layers["body.0.neuron"].spikes == spikes.sum().item()


def test_a_recurrent_net_runs_in_segments_and_streams_like_one_call():
    """Checkpointed BPTT (``time_segment``) gives the same output and, to float rounding, the same gradients;
    streaming one step at a time gives the same scores."""
    from deepspike.methods.streaming import Stream

    torch.manual_seed(0)
    net = create_model("rsnn", method="stbp", num_classes=4, input_shape=(N,), model_args={"hidden": [M, M]},
                       timesteps=8, encoder="frames", readout="membrane", loss="ce", decay=0.8, threshold=0.3)
    x = (torch.rand(B, 8, N) < 0.4).float()
    whole = net(x)
    whole.sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    net.time_segment = 3
    segmented = net(x)
    segmented.sum().backward()
    assert torch.equal(segmented, whole)
    for g, p in zip(grads, net.parameters(), strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-6)
    net.time_segment = None
    stream = Stream(net)
    for t in range(8):
        stream.step(x[:, t])
    torch.testing.assert_close(stream.scores(), net.eval()(x), rtol=0, atol=1e-6)


def _scanned_layer(neuron=None) -> RecurrentSpiking:
    torch.manual_seed(0)
    neuron = neuron or LIF(decay=0.8, threshold=0.5, reset="zero", surrogate="arctan")
    layer = RecurrentSpiking(TimeDistributed(torch.nn.Linear(N, M, bias=False)), neuron, M, bias=True)
    with torch.no_grad():
        layer.recurrent.module.weight.normal_(0.0, 0.6)
    return layer


def _calls_of_the_scan(monkeypatch) -> list:
    calls = []
    real = recurrent_layer.recurrent_multistep
    monkeypatch.setattr(recurrent_layer, "recurrent_multistep", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_the_layer_scans_without_hooks_and_steps_its_neuron_with_them(monkeypatch):
    layer, x = _scanned_layer(), (torch.rand(T, B, N, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    calls = _calls_of_the_scan(monkeypatch)
    scanned = layer(x)
    assert calls == [1]
    seen = []
    handle = layer.neuron.register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    stepped = layer(x)
    handle.remove()
    assert seen == [1] * T and calls == [1]  # the monitors see every step's call
    assert torch.equal(scanned, stepped) and 0 < scanned.sum() < scanned.numel()


def test_the_layer_steps_with_the_switch_off_with_plif_and_with_detached_carries(monkeypatch):
    x = (torch.rand(T, B, N, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    calls = _calls_of_the_scan(monkeypatch)
    monkeypatch.setenv("DEEPSPIKE_FUSED", "0")
    layer = _scanned_layer()
    off = layer(x)
    monkeypatch.delenv("DEEPSPIKE_FUSED")
    assert calls == [] and torch.equal(off, layer(x)) and calls == [1]
    _scanned_layer(LearnableLIF(NeuronParams(decay=0.5, threshold=0.5)))(x)
    assert calls == [1]
    with temporal_carry(layer, detach=True):
        layer(x[:1])
    assert calls == [1]


def test_carried_state_across_calls_gives_one_calls_spikes_and_gradients():
    layer = _scanned_layer()
    x = (torch.rand(T, B, N, generator=torch.Generator().manual_seed(4)) < 0.5).float()
    whole = layer(x)
    (whole * torch.linspace(0.1, 1.0, whole.numel()).reshape(whole.shape)).sum().backward()
    grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    with temporal_carry(layer):
        pieces = torch.cat([layer(x[:2]), layer(x[2:5]), layer(x[5:])])
    assert torch.equal(pieces, whole)
    (pieces * torch.linspace(0.1, 1.0, pieces.numel()).reshape(pieces.shape)).sum().backward()
    for p, g in zip(layer.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g)


@pytest.mark.parametrize("reset", ["zero", "none"])
def test_the_carried_state_holds_one_step_not_all_of_them(reset):
    """Checkpointed BPTT keeps each segment's end state until backward: it must be one step's, not a view of the
    whole [T, B, M] output or membrane."""
    layer = _scanned_layer(LIF(decay=0.8, threshold=0.5, reset=reset, surrogate="arctan"))
    x = (torch.rand(T, B, N, generator=torch.Generator().manual_seed(5)) < 0.5).float()
    with temporal_carry(layer):
        layer(x)
        held = [s for s in read_state(layer) if s is not None]
        assert len(held) == 2
        for state in held:
            assert state.untyped_storage().nbytes() == B * M * state.element_size()


def test_double_backward_through_the_scan_is_refused_and_rate_probes_keep_it(monkeypatch):
    layer, x = _scanned_layer(), (torch.rand(T, B, N, generator=torch.Generator().manual_seed(6)) < 0.5).float()
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(layer(x).sum(), x, create_graph=False)  # first order: fine
    with pytest.raises(RuntimeError, match="no second-order gradient .*through the recurrent scan"):
        torch.autograd.grad(layer(x).sum(), x, create_graph=True)
    calls = _calls_of_the_scan(monkeypatch)
    net = create_model("rsnn", method="stbp", num_classes=4, input_shape=(N,), model_args={"hidden": [M]},
                       timesteps=T, encoder="frames", readout="membrane", loss="ce", rate_reg="l2").train()
    net(torch.rand(B, T, N)).sum().backward()
    assert calls == [1] and len(net.hidden_rates.take()) == 1  # the rate of the recurrent layer, from the scan


def test_no_steps_give_empty_spikes():
    layer = _scanned_layer()
    assert layer(torch.zeros(0, B, N)).shape == (0, B, M)


@pytest.mark.parametrize("features", [0, -1, 2.5, True, "6"])
def test_a_feature_count_that_is_no_whole_number_is_refused(features):
    """features=0 was taken (a [0, 0] feedback, then 'mat1 and mat2 shapes cannot be multiplied'); 2.5 or True
    raised a TypeError from nn.Linear."""
    with pytest.raises(ConfigError, match=rf"^a recurrent layer's features must be a whole number >= 1, got "
                                          rf"{features!r}$".replace("(", r"\(")):
        RecurrentSpiking(TimeDistributed(torch.nn.Linear(N, M)), LIF(), features)


@pytest.mark.parametrize("switch", ["1", "0"])
def test_features_that_differ_from_the_feedforward_output_are_a_one_line_error(switch, monkeypatch):
    """A feed-forward layer of M = 6 outputs with features=5 ended in torch's 'mat1 and mat2 shapes cannot be
    multiplied' (both the scan and the step loop)."""
    monkeypatch.setenv("DEEPSPIKE_FUSED", switch)
    layer = RecurrentSpiking(TimeDistributed(torch.nn.Linear(N, M)), LIF(), M - 1)
    with pytest.raises(ConfigError, match=r"^a recurrent layer of 5 features got currents \[7, 3, 6\] from its "
                                          r"feed-forward layer: their last size must be that$"):
        layer(_inputs())
