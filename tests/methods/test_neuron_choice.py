"""``method.neuron`` of stbp (``methods.neuron_choice``): lif unchanged, plif / learnable threshold per layer or per
channel with their parameters in ``model.parameters()`` and the checkpoint, the PSN family; one-line refusals; exact
resume."""

import re

import pytest
import torch

from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.methods import get_method, neuron_choice, register_neuron
from deepspike.methods.stbp import StbpOptions
from deepspike.methods.streaming import Stream
from deepspike.models import create_architecture
from deepspike.neurons import LIF
from deepspike.neurons.adaptive import AdaptiveLIF
from deepspike.neurons.learnable import LearnableLIF
from deepspike.neurons.masked_psn import MaskedPSN
from deepspike.neurons.multi_spike import MultiSpikeLIF, MultiSpikeSynapticLIF
from deepspike.neurons.psn import PSN
from deepspike.neurons.sliding_psn import SlidingPSN
from deepspike.neurons.state_quant import StateQuant
from deepspike.neurons.synaptic import SynapticLIF
from deepspike.training.temporal_grad import prepare_temporal_grad
from tiny_run import TINY, full_and_resumed_weights


def _net(**options):
    method = get_method("stbp", options)
    return method.build(create_architecture("scnn_digits", num_classes=10))


def _neurons(net, kind):
    return [m for m in net.modules() if isinstance(m, kind)]


def test_default_is_the_plain_lif():
    net = _net()
    assert _neurons(net, LIF) and not _neurons(net, LearnableLIF) and not _neurons(net, PSN)
    assert all(m.inplace for m in _neurons(net, LIF)[:-1])  # body neurons reuse their input (as before)


@pytest.mark.parametrize(("per", "learn_threshold"), [("layer", False), ("channel", True), ("neuron", True)])
def test_plif_parameters_are_trained_and_saved(per, learn_threshold):
    net = _net(neuron="plif", neuron_params=per, learn_threshold=learn_threshold, tau_init=3.0)
    neurons = _neurons(net, LearnableLIF)
    assert neurons and not _neurons(net, LIF)
    params = {id(p) for p in net.parameters()}
    for m in neurons:
        assert id(m.w) in params and (m.threshold is None) != learn_threshold
        assert (m.w.dim() == 0) == (per == "layer")
        torch.testing.assert_close(1 / torch.sigmoid(m.w), torch.full_like(m.w, 3.0))
        assert learn_threshold == (m.threshold is not None and id(m.threshold) in params)
    conv_neuron = neurons[0]
    assert per == "layer" or conv_neuron.w.shape[0] > 1  # one tau per channel of the first conv layer
    assert (conv_neuron.w.dim() == 3) == (per == "neuron")  # [C, H, W]: one tau per neuron
    x = torch.rand(4, 1, 8, 8)
    copy = _net(neuron="plif", neuron_params=per, learn_threshold=learn_threshold)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01)
    copy.load_state_dict(net.state_dict())
    assert torch.equal(copy(x), net(x))


def test_psn_builds_and_refuses_what_it_cannot_run():
    net = _net(neuron="psn", timesteps=4)
    assert all(m.timesteps == 4 for m in _neurons(net, PSN))
    out = net(torch.rand(2, 1, 8, 8))
    out.sum().backward()
    assert all(m.weight.grad is not None for m in _neurons(net, PSN))
    with pytest.raises(ConfigError, match="cannot carry its state"):
        prepare_temporal_grad(net, "sltt", None, "stbp")
    with pytest.raises(ConfigError, match="eval_timesteps=2 must equal"):
        StbpOptions(neuron="psn", timesteps=4, eval_timesteps=2)
    with pytest.raises(ConfigError, match="needs all its 4 time steps"):
        net(torch.rand(2, 1, 8, 8), timesteps=2)


def test_masked_psn_builds_with_its_order_and_runs_at_its_own_step_count_only():
    net = _net(neuron="masked_psn", timesteps=4, psn_order=2)
    neurons = _neurons(net, MaskedPSN)
    assert neurons and all(m.order == 2 and m.timesteps == 4 for m in neurons)
    net(torch.rand(2, 1, 8, 8)).sum().backward()
    assert all(m.weight.grad is not None and m.bias.grad is not None for m in neurons)
    in_training = "the masked PSN runs in pieces only once its masking lambda is 1 .*, and it is 0"
    with pytest.raises(ConfigError, match=f"^train.temporal_grad=sltt: {in_training}"):
        prepare_temporal_grad(net, "sltt", None, "stbp")
    with pytest.raises(ConfigError, match="^method.neuron=masked_psn needs all T steps at once"):
        StbpOptions(neuron="masked_psn", timesteps=4, eval_timesteps=2)
    with pytest.raises(ConfigError, match=f"^streaming: {in_training}"):
        Stream(_net(neuron="masked_psn", timesteps=4))  # after training (lambda = 1) it streams: test_streaming


def test_sliding_psn_runs_at_any_step_count_online_and_streaming():
    torch.manual_seed(0)
    net = _net(neuron="sliding_psn", timesteps=4, psn_order=3, encoder="direct", threshold=0.3).eval()
    assert all(m.order == 3 for m in _neurons(net, SlidingPSN)) and not _neurons(net, LIF)
    StbpOptions(neuron="sliding_psn", timesteps=4, eval_timesteps=7)
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    stream = Stream(net)
    outs = [stream.step(x) for _ in range(6)]
    with torch.no_grad():
        assert torch.equal(stream.scores(), net(x, timesteps=6))  # another summation order: exact on this input
        assert torch.stack(outs).abs().sum() > 0
    train = _net(neuron="sliding_psn", timesteps=4, psn_order=3)
    prepare_temporal_grad(train, "sltt", None, "stbp")
    prepare_temporal_grad(_net(neuron="sliding_psn", timesteps=4), "checkpoint", 2, "stbp")


@pytest.mark.parametrize(("options", "message"), [
    ({"neuron": "masked_psn", "timesteps": 4, "psn_order": 5},
     "^bad value 5 for method.psn_order: expected an integer >= 1 and <= method.timesteps=4 \\(masked_psn\\)$"),
    ({"neuron": "sliding_psn", "psn_order": 0}, "^bad value 0 for method.psn_order: expected an integer >= 1$"),
    ({"neuron": "sliding_psn", "psn_order": 10**12},
     "^bad value 1000000000000 for method.psn_order: expected at most 16,384 \\(sliding_psn: the longest window"),
    ({"psn_order": True}, "^bad value True for method.psn_order"),
    ({"neuron": "sliding_psn", "neuron_params": "channel"}, "^method.neuron_params=channel is for lif and plif"),
    ({"neuron": "psn", "neuron_params": "channel"}, "^method.neuron_params=channel is for lif and plif"),
    ({"neuron": "psn", "neuron_params": "neuron"}, "^method.neuron_params=neuron is for lif and plif"),
    ({"neuron": "sliding_psn", "detach_reset": True}, "^method.detach_reset acts on a reset, and method.neuron=sli"),
    # accepted, and ignored: the PSN family trains its thresholds whatever learn_threshold says
    ({"neuron": "psn", "learn_threshold": True},
     "^method.learn_threshold is for lif and plif: method.neuron=psn always trains its thresholds$"),
    ({"neuron": "lif", "neuron_params": "channel"},  # accepted, and a plain LIF built: nothing per channel
     "^method.neuron_params=channel gives each channel its own learnt constants; the fixed lif learns none"),
    ({"neuron": "lif", "neuron_params": "neuron"}, "^method.neuron_params=neuron gives each neuron its own learnt")])
def test_psn_family_options_are_refused_in_one_line(options, message):
    with pytest.raises(ConfigError, match=message):
        StbpOptions(**options)


def test_masked_psn_resume_is_exact_and_ends_fully_masked(tmp_path):
    """The masking follows the epoch (``begin_epoch``): a run cut after epoch 1 and resumed ends where the uncut run
    ends, with lambda = 1 (the band alone) after the last epoch."""
    cfg = load_config(None, [*TINY, "method.neuron=masked_psn", "method.psn_order=2", "train.epochs=3"])
    full, cut = full_and_resumed_weights(cfg, tmp_path)
    masking = [k for k in full if k.endswith(".masking")]
    assert masking and all(float(full[k]) == 1.0 for k in masking)
    for key, value in full.items():
        assert torch.equal(value, cut[key]), key


@pytest.mark.parametrize(("key", "value"), [("neuron", "izhikevich"), ("neuron_params", "synapse"), ("tau_init", 1.0),
                                            ("tau_init", "x"), ("learn_threshold", "yes")])
def test_bad_options_are_one_line_config_errors(key, value):
    with pytest.raises(ConfigError, match=f"method.{key}") as err:
        StbpOptions(**{key: value})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("override", "message"), [
    ("decay=0", "decay=0.0 is outside"), ("threshold=-1", "threshold=-1.0"),
    ("reset=zz", "unknown reset 'zz'; valid: none, subtract, zero"), ("surrogate=zz", "unknown surrogate 'zz'"),
    ("surrogate_args.a=-1", "a=-1.0 must be")])
def test_neuron_parameters_are_refused_when_the_recipe_loads(override, message):
    """Before the model is built: ``load_config`` refuses them, as every other option."""
    with pytest.raises(ConfigError, match=message) as err:
        load_config(None, ["method.name=stbp", f"method.{override}"])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("per", ["channel", "neuron"])
def test_plif_resume_is_exact(tmp_path, per):
    """A PLIF + learnable-threshold run cut after epoch 1 and resumed ends bit for bit where the uncut run ends."""
    cfg = load_config(None, [*TINY, "method.neuron=plif", "method.learn_threshold=true",
                             f"method.neuron_params={per}"])
    full, cut = full_and_resumed_weights(cfg, tmp_path)
    assert any(k.endswith(".w") for k in full) and any(k.endswith(".threshold") for k in full)
    for key, value in full.items():
        assert torch.equal(value, cut[key]), key


def test_temporal_grad_modes_and_streaming():
    """plif carries its membrane (sltt runs); OTTT's traces need one fixed decay, so a learnt one is refused; PSN
    refuses to stream (one step at a time)."""
    plif = _net(neuron="plif")
    prepare_temporal_grad(plif, "sltt", None, "stbp")
    with pytest.raises(ConfigError, match="ottt needs one neuron decay"):
        prepare_temporal_grad(plif, "ottt", None, "stbp")
    with pytest.raises(ConfigError, match="^streaming: the neuron PSN cannot carry its state"):
        Stream(_net(neuron="psn", timesteps=4))


@pytest.fixture
def own_neurons(monkeypatch):
    """Registrations end with the test."""
    monkeypatch.setattr(neuron_choice, "_OWN", {})


class _PlainLIF(LIF):
    """A user's neuron that computes what LIF computes (not in place), so the net must equal the built-in one."""


def test_a_registered_neuron_builds_every_hidden_neuron_layer(own_neurons):
    shapes = []

    @register_neuron("test_plain_lif")
    def plain_lif(options, shape):
        shapes.append(shape)
        return _PlainLIF(decay=options.decay, threshold=options.threshold, reset=options.reset,
                         surrogate=options.surrogate, surrogate_args=dict(options.surrogate_args))

    torch.manual_seed(0)
    ours = _net(neuron="test_plain_lif")
    torch.manual_seed(0)
    builtin = _net()
    assert len(_neurons(ours, _PlainLIF)) == len(shapes) == len(_neurons(builtin, LIF)) == 4  # the readout's too
    assert shapes == [(16, 8, 8), (32, 8, 8), (32, 4, 4), (10,)]  # one sample's output of the layer before
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(ours(x), builtin(x))
    assert "test_plain_lif" in StbpOptions(neuron="test_plain_lif").neuron


def test_a_neuron_name_is_checked_and_a_factory_must_make_a_module(own_neurons):
    builtin = "lif, plif, psn, masked_psn, sliding_psn, synaptic, alif"
    with pytest.raises(ConfigError, match=f"^bad value 'mine' for method.neuron; valid: {builtin}$"):
        StbpOptions(neuron="mine")
    register_neuron("mine")(lambda options, shape: "not a module")
    with pytest.raises(ConfigError, match="^method.neuron=mine: its factory returned a str, not a torch module$"):
        _net(neuron="mine")
    def another(options, shape):
        return LIF()

    with pytest.raises(ConfigError, match="^neuron 'mine' is already registered"):
        register_neuron("mine")(another)
    with pytest.raises(TypeError, match="other than lif, plif, psn, masked_psn, sliding_psn, synaptic, alif"):
        register_neuron("plif")
    with pytest.raises(ConfigError, match="valid: lif, plif, psn, masked_psn, sliding_psn, synaptic, alif, mine$"):
        StbpOptions(neuron="yours")


@pytest.mark.parametrize(("neuron", "kind", "options", "settings"), [
    ("synaptic", SynapticLIF, {"syn_decay": 0.3}, {"syn_decay": 0.3}),
    ("alif", AdaptiveLIF, {"adapt_decay": 0.8, "adapt_scale": 0.1}, {"adapt_decay": 0.8, "adapt_scale": 0.1})])
def test_synaptic_and_alif_build_every_neuron_and_run_in_pieces(neuron, kind, options, settings):
    """method.neuron=synaptic|alif: one in every neuron layer with the method's decay, threshold, reset and its own
    settings; it trains, streams one step at a time to the scores of a whole call, and runs under sltt; OTTT's
    traces (one first-order leak) and the lif/plif-only options are refused in one line."""
    net = _net(neuron=neuron, decay=0.6, reset="subtract", timesteps=4, **options)
    neurons = _neurons(net, kind)
    assert len(neurons) == len(_neurons(_net(), LIF)) and not _neurons(net, LIF)
    for m in neurons:
        assert m.fixed.decay == 0.6 and m.fixed.reset == "subtract"
        assert all(getattr(m, key) == value for key, value in settings.items())
    x = torch.rand(2, 1, 8, 8)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.eval()
    stream = Stream(net)
    for _ in range(4):
        stream.step(x)
    torch.testing.assert_close(stream.scores(), net(x))
    prepare_temporal_grad(net, "sltt", None, "stbp")
    with pytest.raises(ConfigError, match="ottt needs one neuron decay"):
        prepare_temporal_grad(_net(neuron=neuron), "ottt", None, "stbp")
    for bad in ({"learn_threshold": True}, {"neuron_params": "channel"}, {"neuron_params": "neuron"}):
        with pytest.raises(ConfigError, match=f"^method.neuron={neuron} has fixed per-layer settings"):
            StbpOptions(neuron=neuron, **bad)
    with pytest.raises(ConfigError, match="^bad value 1.5 for method.syn_decay"):
        StbpOptions(neuron="synaptic", syn_decay=1.5)
    with pytest.raises(ConfigError, match="^bad value for method.adapt_decay/adapt_scale: .* got 0.9/-1"):
        StbpOptions(neuron="alif", adapt_scale=-1)


@pytest.mark.parametrize("neuron", ["lif", "synaptic"])
def test_state_bits_quantise_the_lif_and_synaptic_membranes(neuron):
    net = _net(neuron=neuron, state_bits=4, state_low=0.1, state_high=0.3)
    kind = LIF if neuron == "lif" else SynapticLIF
    quants = {(m.params if neuron == "lif" else m.fixed).state_quant for m in _neurons(net, kind)}
    assert quants == {StateQuant(4, 0.1, 0.3)}
    torch.manual_seed(0)
    x = torch.rand(8, 1, 8, 8)
    float_net = _net(neuron=neuron)
    float_net.load_state_dict(net.state_dict())  # the same weights: only the membranes differ
    assert not torch.equal(net.eval()(x), float_net.eval()(x))


@pytest.mark.parametrize("options, message", [
    ({"state_bits": 0}, "^method.state_bits must be an integer from 1 to 16, got 0$"),
    ({"state_bits": 4, "state_high": -1.0}, "^method.state_high must be a finite number >= 0, got -1.0$"),
    ({"state_bits": 4, "neuron": "plif"}, "^method.state_bits quantises the membrane of the fixed lif and synaptic "
                                          "neurons, not method.neuron=plif$"),
    ({"state_bits": 4, "learn_threshold": True}, "not method.neuron=lif with learn_threshold$"),
    ({"state_low": -1.0}, "^method.state_low must be a finite number >= 0, got -1.0$"),
])
def test_state_bits_refusals(options, message):  # state_low / state_high are checked without state_bits too
    with pytest.raises(ConfigError, match=message):
        StbpOptions(**options)


@pytest.mark.parametrize("per", ["channel", "neuron"])
@pytest.mark.parametrize("shape", [None, ()])
@pytest.mark.parametrize("neuron", ["plif", "lif"])
def test_a_per_channel_or_per_neuron_layer_without_its_shape_is_a_one_line_error(per, shape, neuron):
    # before: make_neuron without the layer's shape built one tau / threshold for the whole layer, silently
    options = StbpOptions(neuron=neuron, neuron_params=per, learn_threshold=True)
    with pytest.raises(ConfigError, match=rf"^method.neuron_params={per} needs the shape of the layer the neuron "
                                          rf"follows .*; got {re.escape(repr(shape))}$"):
        neuron_choice.make_neuron(options, shape)
    built = neuron_choice.make_neuron(options, (3, 2, 2))
    assert built.threshold.shape == ((3,) if per == "channel" else (3, 2, 2))
    assert neuron_choice.make_neuron(StbpOptions(neuron=neuron, learn_threshold=True)).threshold.shape == ()


def test_max_spikes_builds_multi_spike_hidden_neurons_and_a_one_spike_readout():
    """``method.max_spikes: 31``: the hidden lif / synaptic neurons fire up to 31 spikes a step
    (``neurons.multi_spike``), the readout's one (Xylo's output neurons); the default builds the plain ones."""
    arch = create_architecture("mlp", num_classes=10, input_shape=(64,), hidden=[8])
    for neuron, plain, multi in (("lif", LIF, MultiSpikeLIF), ("synaptic", SynapticLIF, MultiSpikeSynapticLIF)):
        net = get_method("stbp", {"neuron": neuron, "reset": "subtract", "max_spikes": 31}).build(arch)
        hidden = _neurons(net.body, multi)
        assert len(hidden) == 1 and hidden[0].max_spikes == 31
        assert type(net.readout.neuron) is plain and getattr(net.readout.neuron, "max_spikes", 1) == 1
        net = get_method("stbp", {"neuron": neuron, "reset": "subtract"}).build(arch)
        assert not _neurons(net, multi)


@pytest.mark.parametrize(("options", "message"), [
    ({"max_spikes": 0}, r"^bad value 0 for method.max_spikes: expected an integer from 1 to 256"),
    ({"max_spikes": 1.5}, r"^bad value 1.5 for method.max_spikes"),
    ({"max_spikes": 31, "neuron": "plif", "reset": "subtract"}, r"^method.max_spikes=31 fires several spikes a step "
                                                                r"from the fixed lif and synaptic neurons only, not "
                                                                r"method.neuron=plif$"),
    ({"max_spikes": 31, "learn_threshold": True, "reset": "subtract"}, r"not method.neuron=lif with learn_threshold$"),
    ({"max_spikes": 31}, r"^method.max_spikes=31 needs method.reset: subtract \(each spike removes one threshold\), "
                         r"got 'zero'$")])
def test_max_spikes_refusals(options, message):
    with pytest.raises(ConfigError, match=message) as err:
        StbpOptions(**options)
    assert "\n" not in str(err.value)
