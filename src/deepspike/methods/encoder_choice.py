"""The input encoder of ``stbp`` (``method.encoder``): the built-in ones and encoders of one's own.

Built-in: ``direct``, ``poisson``, ``bipolar`` (``coding.encoder.InputEncoder``: images ``x [B, C, H, W]`` ->
``[T, B, C, H, W]``), ``frames`` (event frames ``[B, T', C, H, W]`` -> ``[T, B, C, H, W]``,
``layers.event_frames.FrameEncoder``) and ``delta`` (analog sequences or frames -> ON/OFF delta spikes,
``layers.event_frames.DeltaEncoder`` with ``method.delta_threshold``, ``delta_off_spikes``, ``delta_mode``) and
``population`` (each analog value the responses of ``method.population_size`` Gaussian fields on
``[population_low, population_high]``, ``population_width`` spacings wide, as currents or with
``population_spikes`` Bernoulli spikes; ``layers.population_encoder.PopulationEncoder``).

``register_encoder(name)`` adds ``factory(options) -> nn.Module`` (``options``: the method's options dataclass);
``method.encoder=name`` then builds it. Its module maps a batch and a number of steps to the network's input series,
``forward(x [B, ...], timesteps) -> [T, B, ...]`` with ``T = timesteps``, e.g. a latency code that fires each pixel
once, earlier for brighter ones. A random encoder should draw from torch's global generator, which checkpoints save
and evaluation seeds (as the built-ins do), so that resumed runs and ``deepspike eval`` repeat its draws. Streaming
(``methods.streaming.Stream``) runs the built-in image encoders only, one step at a time, and refuses others in one
line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from deepspike.coding.encoder import ENCODERS, InputEncoder
from deepspike.core.registration import factory_registrar, made_module
from deepspike.layers.event_frames import DeltaEncoder, FrameEncoder
from deepspike.layers.population_encoder import PopulationEncoder

BUILT_IN = (*ENCODERS, "frames", "delta", "population")
"""The built-in encoders."""

EncoderFactory = Callable[[Any], nn.Module]
_OWN: dict[str, EncoderFactory] = {}


def register_encoder(name: str) -> Callable[[EncoderFactory], EncoderFactory]:
    """Decorator registering ``factory(options) -> nn.Module`` as ``method.encoder=name`` (module docstring).

    ``TypeError`` for a name that is not a new non-empty string (a built-in's included) or a factory that is not
    callable; ``ConfigError`` for a name another factory has (``core.registration``)."""
    return factory_registrar("register_encoder", "encoder", name, BUILT_IN, _OWN)


def encoder_names() -> tuple[str, ...]:
    """Every valid ``method.encoder``: the built-in ones, then those registered, sorted."""
    return (*BUILT_IN, *sorted(_OWN))


def make_encoder(options: Any) -> nn.Module:
    """The encoder ``options.encoder`` names; a registered factory that returns no torch module is a one-line
    ``ConfigError``."""
    name = options.encoder
    if name in _OWN:
        return made_module("encoder", name, _OWN[name](options))
    if name == "delta":
        return DeltaEncoder(options.delta_threshold, options.delta_off_spikes, options.delta_mode)
    if name == "population":
        return PopulationEncoder(options.population_size, options.population_low, options.population_high,
                                 options.population_width, options.population_spikes)
    return FrameEncoder() if name == "frames" else InputEncoder(name)
