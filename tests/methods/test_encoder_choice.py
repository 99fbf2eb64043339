"""``register_encoder``: an encoder of one's own becomes ``method.encoder=name`` of ``stbp``; its series is what the
body receives, a run with it trains and resumes exactly, and names and factories are checked in one line."""

import pytest
import torch
from torch import nn

from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.layers.event_frames import DeltaEncoder
from deepspike.layers.population_encoder import PopulationEncoder
from deepspike.methods import create_model, encoder_choice, get_method, register_encoder
from deepspike.methods.stbp import StbpOptions
from deepspike.methods.streaming import Stream
from deepspike.models import create_architecture
from deepspike.training.reload import load_run
from tiny_run import TINY, full_and_resumed_weights


class Latency(nn.Module):
    """One spike per pixel, at step ``round((1 - x) (T - 1))``: brighter pixels fire earlier; dark ones (x = 0)
    never."""

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        when = ((1 - x.clamp(0, 1)) * (timesteps - 1)).round()
        steps = torch.arange(timesteps, dtype=x.dtype).view(-1, *([1] * x.dim()))
        return ((steps == when) & (x > 0)).to(x.dtype)  # [T, B, ...]


@pytest.fixture
def own_encoders(monkeypatch):
    """Registrations end with the test."""
    monkeypatch.setattr(encoder_choice, "_OWN", {})


def test_a_registered_encoder_feeds_the_body(own_encoders):
    register_encoder("latency")(lambda options: Latency())
    method = get_method("stbp", {"encoder": "latency", "timesteps": 5})
    net = method.build(create_architecture("scnn_digits", num_classes=10)).eval()
    assert isinstance(net.encoder, Latency)
    seen = []
    net.body.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = torch.rand(3, 1, 8, 8)
    net(x)
    assert torch.equal(seen[0], Latency()(x, 5)) and seen[0].sum(0).max() == 1  # each pixel at most once
    with pytest.raises(ConfigError, match="^streaming feeds one step .* the encoder Latency is none of them$"):
        Stream(net)


def test_a_run_with_a_registered_encoder_resumes_exactly(own_encoders, tmp_path):
    register_encoder("latency")(lambda options: Latency())
    full, cut = full_and_resumed_weights(load_config(None, [*TINY, "method.encoder=latency"]), tmp_path)
    assert all(torch.equal(v, cut[k]) for k, v in full.items())


def test_encoder_names_and_factories_are_checked(own_encoders):
    with pytest.raises(ConfigError, match="^bad value 'mine' for method.encoder; valid: direct, poisson, bipolar, "
                                          "frames, delta, population$"):
        StbpOptions(encoder="mine")
    with pytest.raises(TypeError, match="^register_encoder: the name must be a non-empty string other than direct, "
                                        "poisson, bipolar, frames, delta, population; got 'poisson'$"):
        register_encoder("poisson")
    register_encoder("mine")(lambda options: "not a module")
    with pytest.raises(ConfigError, match="^method.encoder=mine: its factory returned a str, not a torch module$"):
        get_method("stbp", {"encoder": "mine"}).build(create_architecture("scnn_digits", num_classes=10))
    with pytest.raises(ConfigError, match="^encoder 'mine' is already registered"):
        register_encoder("mine")(Latency)


DELTA_ROWS = [*TINY, "data.name=digits_rows", "data.augment.crop_padding=0", "model.name=rsnn",
              "model.args.hidden=[16]", "method.encoder=delta", "method.timesteps=8", "method.delta_threshold=0.25",
              "method.delta_mode=level"]


def test_a_delta_coded_sequence_run_resumes_exactly(tmp_path):
    full, cut = full_and_resumed_weights(load_config(None, DELTA_ROWS), tmp_path)
    assert all(torch.equal(v, cut[k]) for k, v in full.items())
    net = get_method("stbp", {"encoder": "delta", "delta_threshold": 0.25, "delta_mode": "level"}).build(
        create_architecture("rsnn", num_classes=10, input_shape=(8,), hidden=[16]))
    assert isinstance(net.encoder, DeltaEncoder) and net.encoder.mode == "level"
    with pytest.raises(ConfigError, match="the encoder DeltaEncoder is none of them$"):
        Stream(net)
    with pytest.raises(ConfigError, match="^bad value 0.0 for method.delta_threshold: expected > 0$"):
        StbpOptions(encoder="delta", delta_threshold=0.0)


POPULATION = [*TINY, "method.encoder=population", "method.population_size=3", "method.population_spikes=true"]


def test_a_population_coded_run_is_built_for_the_wider_input_and_resumes_exactly(tmp_path):
    full, cut = full_and_resumed_weights(load_config(None, POPULATION), tmp_path)
    assert all(torch.equal(v, cut[k]) for k, v in full.items())
    first = next(v for k, v in full.items() if k.endswith("weight"))
    assert first.shape == (24, 64 * 3)  # mlp hidden [24] on the 8x8 digits, three fields per pixel
    config, parts, _ = load_run(tmp_path / "full")
    assert parts.arch.input_shape == (3, 8, 8) and isinstance(parts.model.encoder, PopulationEncoder)
    assert parts.model.encoder.spikes and parts.model.encoder.size == 3


@pytest.mark.parametrize("model, shape, step", [("scnn_digits", (1, 8, 8), (2, 1, 8, 8)),
                                                 ("rsnn", (8,), (2, 8))])
def test_population_coded_nets_stream_as_they_run(model, shape, step):
    torch.manual_seed(0)
    args = {"hidden": [16]} if model == "rsnn" else {}
    net = create_model(model, method="stbp", input_shape=shape, model_args=args, encoder="population",
                       population_size=4, timesteps=5).eval()
    assert net.encoder.size == 4
    if model == "rsnn":  # a sequence [B, T', F], fed one step [B, F] at a time
        x = torch.rand(2, 5, 8)
        steps = [x[:, t] for t in range(5)]
    else:  # an image, fed at every step
        x = torch.rand(*step)
        steps = [x] * 5
    stream = Stream(net)
    for s in steps:
        stream.step(s)
    with torch.no_grad():
        assert torch.allclose(stream.scores(), net(x, timesteps=5), atol=1e-6)
    with pytest.raises(ConfigError, match="^method.population_low < population_high"):
        StbpOptions(encoder="population", population_low=1.0, population_high=0.5)
