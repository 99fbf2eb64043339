"""Streaming inference equals the multi-step forward bit for bit (direct input and event frames; one sample: to float
rounding)."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers.spiking_pool import SpikingAvgPool
from deepspike.methods import get_method
from deepspike.methods.streaming import Stream
from deepspike.models import create_architecture
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.spikebp_lif import LeakCorrectedLIF


def _net(encoder, **options):
    arch = create_architecture("vgg", num_classes=4, input_shape=(2, 8, 8), blocks=[[6], [8]], hidden=[12],
                               batch_norm=False)
    torch.manual_seed(0)
    return get_method("stbp", {"timesteps": 9, "encoder": encoder, "neunorm": True, **options}).build(arch).eval()


@pytest.mark.parametrize("readout", ["rate", "membrane"])
def test_direct_input_stream_equals_multistep(readout):
    net = _net("direct", readout=readout, threshold=0.3)
    x = torch.rand(5, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    stream = Stream(net)
    outs = [stream.step(x) for _ in range(9)]
    with torch.no_grad():
        body = net.body(net.encoder(x, 9))
        assert torch.equal(torch.stack(outs), body)
        assert torch.equal(stream.scores(), net(x, timesteps=9))
        assert body.abs().sum() > 0
        stream.reset()
        for _ in range(4):
            stream.step(x)
        assert torch.equal(stream.scores(), net(x, timesteps=4))  # any prefix, after a reset


def test_event_frame_stream_equals_multistep():
    net = _net("frames")
    frames = (torch.rand(3, 9, 2, 8, 8, generator=torch.Generator().manual_seed(2)) < 0.3).float()  # [B, T, ...]
    stream = Stream(net)
    for t in range(9):
        stream.step(frames[:, t])
    with torch.no_grad():
        assert torch.equal(stream.scores(), net(frames, timesteps=9))
    assert stream.steps == 9


def test_a_trained_masked_psn_net_streams_its_whole_call_and_a_fresh_one_is_refused():
    """lambda = 1 (after the last epoch): the stream's scores equal ``net(x)``; lambda < 1: refused, as the step
    count past the neuron's T."""
    net = _net("direct", neuron="masked_psn", psn_order=3, threshold=0.2)
    with pytest.raises(ConfigError, match="^streaming: the masked PSN runs in pieces only once its masking lambda"):
        Stream(net)
    for m in net.modules():
        if hasattr(m, "begin_epoch"):
            m.begin_epoch(4, 5)
    x = torch.rand(5, 2, 8, 8, generator=torch.Generator().manual_seed(3))
    stream = Stream(net)
    for _ in range(9):
        stream.step(x)
    with torch.no_grad():
        assert torch.equal(stream.scores(), net(x, timesteps=9))
    with pytest.raises(ConfigError, match="runs 9 time steps: 9 have run and 1 more were asked"):
        stream.step(x)


def test_stream_refuses_what_it_cannot_run():
    ann = get_method("ann", {}).build(create_architecture("mlp", hidden=[8]))
    with pytest.raises(ConfigError, match="rate-coded"):
        Stream(ann)
    with pytest.raises(ConfigError, match="no step"):
        Stream(_net("direct")).scores()


class _RestingLIF(torch.nn.Module):
    """A user's spiking neuron that keeps no membrane between calls (not ``CarriesState``)."""

    is_spiking_neuron = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v, out = torch.zeros_like(x[0]), []
        for x_t in x:
            v = 0.5 * v + x_t
            out.append((v >= 1).to(x.dtype))
            v = v * (1 - out[-1])
        return torch.stack(out)


class _RepeatEncoder(torch.nn.Module):
    """A user's encoder that is neither a rate encoder nor event frames."""

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        return x.unsqueeze(0).expand(timesteps, *x.shape) * torch.linspace(0, 1, timesteps).view(-1, 1, 1, 1, 1)


def test_stream_refuses_neurons_and_encoders_it_would_run_wrongly():
    """Both ran before and gave other scores than ``net(x)``: the neuron restarted from rest every step, the
    encoder's input was taken for an event frame."""
    net = _net("direct")
    net.body[1] = _RestingLIF()
    with pytest.raises(ConfigError, match="^streaming: the neuron _RestingLIF cannot carry its state from step"):
        Stream(net)
    net = _net("direct")
    net.encoder = _RepeatEncoder()
    with pytest.raises(ConfigError, match="^streaming feeds .*; the encoder _RepeatEncoder is none of them$"):
        Stream(net)


def test_one_sample_stream_equals_multistep_to_rounding():
    """With one sample a step's linear layer multiplies one row, which the BLAS may sum in another order than T rows:
    equal to float rounding (the module docstring says so)."""
    net = _net("direct", readout="membrane", threshold=0.3)
    x = torch.rand(1, 2, 8, 8, generator=torch.Generator().manual_seed(3))
    stream = Stream(net)
    for _ in range(9):
        stream.step(x)
    with torch.no_grad():
        torch.testing.assert_close(stream.scores(), net(x, timesteps=9), rtol=1e-6, atol=1e-6)


def test_a_small_batch_mlp_stream_equals_multistep_to_rounding():
    """The module docstring said 'bit for bit ... for batches of more than one sample'; an mlp at B = 4 differed by
    3.6e-7 (a step's GEMM over B rows sums in another order than the whole call's over T B rows). It says rounding
    now; the agreement is checked to that."""
    arch = create_architecture("mlp", num_classes=3, input_shape=(1, 8, 8), hidden=[10])
    torch.manual_seed(0)
    net = get_method("stbp", {"timesteps": 5, "readout": "membrane", "threshold": 0.2}).build(arch).eval()
    x = 3 * torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    stream = Stream(net)
    for _ in range(5):
        stream.step(x)
    with torch.no_grad():
        whole = net(x, timesteps=5)
    torch.testing.assert_close(stream.scores(), whole, rtol=1e-6, atol=1e-6)
    assert whole.abs().sum() > 0


def test_a_spikebp_net_streams_with_the_spikes_of_its_whole_window():
    """lee2020's neurons (the leak-corrected LIF and the spiking pool) could not carry their membrane, so a spikebp
    net could not stream; now every spiking layer's spikes, step by step, are those of one call on all the steps
    (the linear layers' currents to float rounding: one step's rows are summed in another order), and training in
    pieces, which their whole-window derivative cannot do, is refused in one line."""
    torch.manual_seed(0)
    arch = create_architecture("lenet", num_classes=10, input_shape=(1, 28, 28))
    net = get_method("spikebp", {"timesteps": 8, "threshold": 0.3}).build(arch).eval()
    x = (torch.rand(8, 2, 1, 28, 28, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    kinds = (LeakCorrectedLIF, SpikingAvgPool)
    with torch.no_grad():
        whole, h = [], x
        for layer in net.body:
            h = layer(h)
            whole.append(h)
        with temporal_carry(net.body):
            stepped = [[] for _ in net.body]
            for t in range(8):
                h = x[t:t + 1]
                for i, layer in enumerate(net.body):
                    h = layer(h)
                    stepped[i].append(h)
    spiking = [i for i, layer in enumerate(net.body) if isinstance(layer, kinds)]
    assert len(spiking) >= 3 and all(whole[i].sum() > 0 for i in spiking)
    for i in spiking:
        assert torch.equal(torch.cat(stepped[i]), whole[i])
    torch.testing.assert_close(torch.cat(stepped[-1]), whole[-1], rtol=1e-5, atol=1e-5)
    assert Stream(net).step(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with temporal_carry(net.body), pytest.raises(ConfigError, match="runs in pieces only without gradients"):
        net.body(x.requires_grad_())


@pytest.mark.parametrize("encoder", ["frames", "population"])
def test_a_whole_sequence_given_as_one_step_is_refused_in_one_line(encoder):
    """A recurrent sequence net took a whole sample ``[B, T, F]`` as one step and returned scores ``[B, T, K]``
    (nonsense, no error); a population net coded its first step and dropped the rest. One step is ``[B, F]``."""
    torch.manual_seed(0)
    features = 6 * (3 if encoder == "population" else 1)
    arch = create_architecture("rsnn", num_classes=3, input_shape=(features,), hidden=[10])
    net = get_method("stbp", {"timesteps": 6, "threshold": 0.2, "encoder": encoder, "population_size": 3}).build(arch)
    sequence = torch.rand(4, 6, 6, generator=torch.Generator().manual_seed(0))  # [B, T, F]
    stream = Stream(net.eval())
    with pytest.raises(ConfigError, match=r"^a stream step of a \w+ network is one step, \[B, F\] or \[B, C, H, W\]; "
                                          r"got shape \(4, 6, 6\) \(a whole sample"):
        stream.step(sequence)
    with pytest.raises(ConfigError, match="^a stream step is a tensor"):
        stream.step(sequence.tolist())
    assert stream.steps == 0
    for t in range(6):
        stream.step(sequence[:, t])
    with torch.no_grad():
        assert stream.scores().shape == (4, 3)
        torch.testing.assert_close(stream.scores(), net(sequence, timesteps=6), rtol=1e-6, atol=1e-6)


def test_a_step_of_another_batch_size_mid_stream_is_refused_in_one_line_and_the_stream_goes_on():
    """A conv net's stream of 3 samples given a step of 1 stopped in torch's broadcasting RuntimeError (a traceback;
    with NeuNorm a neuron's error about its 'initial membrane')."""
    net = _net("frames", neunorm=False)
    frames = (torch.rand(3, 9, 2, 8, 8, generator=torch.Generator().manual_seed(4)) < 0.3).float()  # [B, T, ...]
    stream = Stream(net)
    stream.step(frames[:, 0])
    for bad in (frames[:1, 1], torch.zeros(4, 2, 8, 8)):
        with pytest.raises(ConfigError, match=r"^this stream runs 3 samples .*; a step of \d came: reset\(\) to start"):
            stream.step(bad)
    for t in range(1, 9):
        stream.step(frames[:, t])
    with torch.no_grad():
        assert torch.equal(stream.scores(), net(frames, timesteps=9))
    stream.reset()
    assert stream.step(frames[:1, 0]).shape[0] == 1  # after a reset any batch size


def test_a_tebn_net_is_refused_when_the_stream_is_made_not_at_its_first_step():
    """TEBN has one scale per step of its T: ``Stream(net)`` was accepted and the first ``step`` stopped with TEBN's
    advice for training ('use train.temporal_grad=bptt'), which says nothing to a stream."""
    arch = create_architecture("vgg", num_classes=4, input_shape=(2, 8, 8), blocks=[[6], [8]], hidden=[12],
                               batch_norm=True)
    net = get_method("stbp", {"timesteps": 9, "norm": "tebn"}).build(arch).eval()
    with pytest.raises(ConfigError, match=r"^streaming: TEBN \(method.norm=tebn\) scales each of its T = 9 steps by "
                                          r"its own p_t and runs all of them in one call, not in pieces$"):
        Stream(net)


def test_a_stream_step_between_training_batches_leaves_every_module_in_its_own_mode():
    """``step`` called ``net.eval()`` and left it so: a training loop that streamed a sample between its batches
    trained on in eval mode (batch-norm statistics frozen, dropout off). Each module's mode is now restored, and the
    stream still runs in eval mode (its scores are the eval net's)."""
    arch = create_architecture("vgg", num_classes=4, input_shape=(2, 8, 8), blocks=[[6], [8]], hidden=[12],
                               batch_norm=True)
    torch.manual_seed(0)
    net = get_method("stbp", {"timesteps": 5, "norm": "bn", "threshold": 0.3}).build(arch).train()
    frozen = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    frozen.eval()  # a user's choice: one batch-norm kept in eval mode while the rest trains
    modes = [m.training for m in net.modules()]
    x = torch.rand(3, 2, 8, 8, generator=torch.Generator().manual_seed(5))
    stream = Stream(net)
    for _ in range(5):
        stream.step(x)
        assert [m.training for m in net.modules()] == modes
    scores = stream.scores()
    assert [m.training for m in net.modules()] == modes
    with torch.no_grad():
        assert torch.equal(scores, net.eval()(x, timesteps=5))


def test_a_float64_step_of_a_float32_net_runs_as_the_float32_step():
    """Once "expected m1 and m2 to have the same dtype, but got: double != float" from the first layer."""
    net = get_method("stbp", {"timesteps": 2, "encoder": "direct"}).build(create_architecture("mlp", num_classes=3,
                                                                                             input_shape=(4,)))
    x = torch.rand(2, 4)
    expected = Stream(net).step(x)
    assert torch.equal(Stream(net).step(x.double()), expected)
