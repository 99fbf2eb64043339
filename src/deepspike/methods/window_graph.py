"""A ``WindowNetwork`` as populations of spikes and the synapses between them (for the simulator and NIR).

``WindowWalk`` walks the network's modules once, the way its spikes flow: every chain of linear modules between
two populations (conv, linear, batch-norm, average pooling, flatten, dropout; all in eval mode) is collected
and handed to ``neurons`` together with the population it starts from; every ``WindowNeurons`` (and finally
the readout) is a population of neurons, every max pooling a relay population (``relay``: the earliest spike of
each region passes on), and a residual junction's neurons get two sources: the body's chain and the shortcut's,
delayed by the body's windows so that both arrive in the window before the junction's. Subclasses say what a
population becomes: ``event_stages`` builds dense synapse matrices for ``ttfs.window_sim`` (small nets: tests,
examples), ``deploy.nir_window`` NIR nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.containers import ResidualBlock
from deepspike.methods.window_network import WindowNetwork
from deepspike.ttfs.window_layers import RampedLayer, WindowNeurons
from deepspike.ttfs.window_sim import NeuronStage, RelayStage, Synapses

LINEAR = (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.Flatten, nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass
class Source:
    """A population (``population``: whatever the walk's subclass names it by), its per-sample shape, the end of
    its window, the linear modules applied to its spikes since, the delay of that path, and whether it codes
    signed values (``signed``: the input, two halves; a neuron layer's values are ``>= 0``)."""

    population: Any
    shape: tuple[int, ...]
    t_max: float
    chain: list[nn.Module] = field(default_factory=list)
    delay: float = 0.0
    signed: bool = False


class WindowWalk:
    """The walk (module docstring); subclasses implement ``neurons`` and ``relay``."""

    def neurons(self, layer: RampedLayer, sources: list[Source], shape: tuple[int, ...], fires: bool) -> Any:
        """Add the population of ``layer`` (output ``shape``) fed by ``sources``; return its name."""
        raise NotImplementedError

    def relay(self, pool: nn.MaxPool2d, source: Source, shape: tuple[int, ...]) -> Any:
        """Add the max-pool relay of ``source`` (output ``shape``); return its name."""
        raise NotImplementedError

    def run(self, net: WindowNetwork, input_population: Any, input_shape: tuple[int, ...]) -> Source:
        """Walk ``net`` (eval mode, windows calibrated) from the input population; returns the readout's source."""
        start = Source(input_population, tuple(input_shape), float(net.encoder.window), signed=True)
        cur = self.sequence(net.body, start)
        shape = shape_after(cur.chain, cur.shape)
        name = self.neurons(net.readout, [cur], shape, fires=False)
        return Source(name, shape, cur.t_max + float(net.readout.window))

    def sequence(self, modules: nn.Module, cur: Source) -> Source:
        for m in modules.children() if isinstance(modules, nn.Sequential) else [modules]:
            cur = self.module(m, cur)
        return cur

    def module(self, m: nn.Module, cur: Source) -> Source:
        if isinstance(m, nn.Sequential):
            return self.sequence(m, cur)
        if isinstance(m, LINEAR):
            return Source(cur.population, cur.shape, cur.t_max, [*cur.chain, m], signed=cur.signed)
        if isinstance(m, WindowNeurons):
            shape = shape_after(cur.chain, cur.shape)
            return Source(self.neurons(m, [cur], shape, True), shape, cur.t_max + float(m.window))
        if isinstance(m, nn.MaxPool2d):
            if cur.chain:
                raise ConfigError("max pooling after a linear layer has no single-spike relay; pool after a neuron")
            if cur.signed:  # the earliest spike of the positive half is max(x, 0), not max(x)
                raise ConfigError("max pooling of the signed input has no single-spike relay (its negative half "
                                  "would be lost); pool after a neuron layer")
            shape = shape_after([m], cur.shape)
            return Source(self.relay(m, cur, shape), shape, cur.t_max)
        if isinstance(m, ResidualBlock):
            return self.residual(m, cur)
        raise ConfigError(f"{type(m).__name__} has no spiking counterpart in a windowed TTFS network")

    def residual(self, block: ResidualBlock, cur: Source) -> Source:
        if cur.chain:
            raise ConfigError("a residual block must start at a population of spikes")
        body = self.sequence(block.body, cur)
        shortcut = self.sequence(block.shortcut, Source(cur.population, cur.shape, cur.t_max, signed=cur.signed))
        shortcut.delay = body.t_max - cur.t_max
        shape = shape_after(body.chain, body.shape)
        name = self.neurons(block.act, [body, shortcut], shape, True)
        return Source(name, shape, body.t_max + float(block.act.window))


class _DenseStages(WindowWalk):
    """Populations numbered as ``ttfs.window_sim`` does (0, 1: input halves), synapses as dense Jacobians."""

    def __init__(self) -> None:
        self.stages: list[NeuronStage | RelayStage] = []

    def neurons(self, layer: RampedLayer, sources: list[Source], shape: tuple[int, ...], fires: bool) -> int:
        synapses, bias = [], 0.0
        for src in sources:
            weight, b = affine_map(src.chain, src.shape)
            bias = bias + b
            synapses.append(Synapses(src.population, weight, src.delay))
            if src.population == 0:  # the input's negative half: the same synapses with -w
                synapses.append(Synapses(1, -weight, src.delay))
        self.stages.append(NeuronStage(synapses, bias, float(layer.window), layer.alpha, fires))
        return len(self.stages) + 1

    def relay(self, pool: nn.MaxPool2d, source: Source, shape: tuple[int, ...]) -> int:
        self.stages.append(RelayStage(source.population, _earliest(pool, source.shape)))
        return len(self.stages) + 1


def event_stages(net: WindowNetwork, input_shape: tuple[int, ...]) -> list[NeuronStage | RelayStage]:
    """The stages of ``net`` (eval mode, windows calibrated) for ``ttfs.window_sim.simulate``."""
    walk = _DenseStages()
    walk.run(net, 0, input_shape)
    return walk.stages


def affine_map(chain: list[nn.Module], shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W [M, N], b [M])`` of the affine map ``chain`` on flattened ``[N]`` inputs of per-sample ``shape``."""
    def run(v: torch.Tensor) -> torch.Tensor:
        x = v.reshape(1, *shape)
        for m in chain:
            x = m(x)
        return x.reshape(-1)

    dtype = next((p.dtype for m in chain for p in m.parameters()), torch.float64)
    zero = torch.zeros(int(torch.tensor(shape).prod()), dtype=dtype)
    with torch.no_grad():
        bias = run(zero)
    return torch.autograd.functional.jacobian(run, zero).detach(), bias.detach()


def shape_after(chain: list[nn.Module], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-sample output shape of the modules ``chain`` applied to inputs of per-sample ``shape``."""
    dtype = next((p.dtype for m in chain for p in m.parameters()), torch.float32)
    x = torch.zeros(1, *shape, dtype=dtype)
    with torch.no_grad():
        for m in chain:
            x = m(x)
    return tuple(x.shape[1:])


def _earliest(pool: nn.MaxPool2d, shape: tuple[int, ...]):
    """``times [B, N] -> [B, N']``: the earliest spike of each pooling region (``-maxpool(-t)``)."""
    def relay(times: torch.Tensor) -> torch.Tensor:
        return -pool(-times.reshape(times.shape[0], *shape)).reshape(times.shape[0], -1)
    return relay
