"""Replay a ``ttfs_window`` NIR graph (``deploy.nir_window``) spike by spike, reading only the graph.

The graph's populations (the two ``Input`` halves, every ``CubaLIF`` and every earliest-spike ``IF`` after a
``SumPool2d``) become the stages of the event-driven simulator ``ttfs.window_sim``; the linear nodes between
them (``Conv2d``, ``Linear``, ``AvgPool2d``, ``Flatten``, ``Scale``, ``Delay``) become synapse matrices (their
Jacobian) and delays. The clock inputs give each layer its bias (``weight x (window_start - spike time)``) and its
ramp ``alpha``; the node metadata gives the windows and the gating of the input currents. Dense matrices: for
small nets (tests), not a VGG.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.deploy.graph_order import topological_order
from deepspike.deploy.nir_fields import pair, plain_metadata
from deepspike.methods.window_graph import affine_map
from deepspike.ttfs.window_sim import NeuronStage, RelayStage, SimResult, Synapses, simulate


def _meta(obj) -> dict:
    return plain_metadata(getattr(obj, "metadata", None))


def _field(meta: dict, key: str, where: str, number: bool = False):
    """``meta[key]``, text or (``number``) a finite float; ``ConfigError`` naming ``where`` and the key if it is
    missing or of another kind (a hand-written graph)."""
    value = meta.get(key)
    if number and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if not number and isinstance(value, str):
        return value
    kind = "a finite number" if number else "text"
    raise ConfigError(f"ttfs_window replay: {where} metadata {key!r} is {value!r}, not {kind}")


def _clocks(text: str) -> dict[str, float]:
    """``"bias_1:3.5,ramp_1:0.0"`` -> ``{"bias_1": 3.5, "ramp_1": 0.0}``; ``ConfigError`` for another form."""
    clocks = {}
    for item in (i for i in text.split(",") if i):
        name, _, time = item.rpartition(":")
        try:
            clocks[name] = float(time)
        except ValueError:
            clocks[name] = math.nan
        if not name or not math.isfinite(clocks[name]):
            raise ConfigError(f"ttfs_window replay: the graph's metadata 'clock_inputs' item {item!r} is not "
                              "'<Input node>:<spike time>'")
    return clocks


def _tensor(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


class _Node(nn.Module):
    """One linear NIR node as a function of ``[1, *shape]`` tensors."""

    def __init__(self, node) -> None:
        super().__init__()
        self.node = node
        self.kind = type(node).__name__

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.node
        if self.kind == "Conv2d":
            return F.conv2d(x, _tensor(n.weight), None, pair(n.stride), pair(n.padding), pair(n.dilation),
                            int(n.groups))
        if self.kind == "Linear":
            return x @ _tensor(n.weight).T
        if self.kind == "AvgPool2d":
            return F.avg_pool2d(x, tuple(int(v) for v in n.kernel_size), tuple(int(v) for v in n.stride),
                                tuple(int(v) for v in n.padding), count_include_pad=True)
        if self.kind == "Flatten":
            return x.flatten(*(d + 1 if d >= 0 else d for d in (int(n.start_dim), int(n.end_dim))))
        if self.kind == "Scale":
            return x * _tensor(n.scale)
        if self.kind == "Delay":
            return x
        raise ConfigError(f"ttfs_window replay: node {self.kind} is not a linear node")


class _Replay:
    def __init__(self, graph) -> None:
        self.graph = graph
        self.meta = _meta(graph)
        if self.meta.get("format") != "ttfs_window":
            raise ConfigError("ttfs_window replay: the graph's metadata format is not 'ttfs_window'")
        self.incoming: dict[str, list[str]] = {}
        for src, dst in graph.edges:
            self.incoming.setdefault(dst, []).append(src)
        self.clocks = _clocks(_field(self.meta, "clock_inputs", "the graph's"))
        self.inputs = _field(self.meta, "inputs", "the graph's").split(",")
        bad = next((n for n in [*self.inputs, *self.clocks] if type(graph.nodes.get(n)).__name__ != "Input"), None)
        if bad is not None:
            raise ConfigError(f"ttfs_window replay: the graph's metadata names {bad!r} as an input, but the graph "
                              "has no Input node of that name")
        self.index = {name: i for i, name in enumerate(self.inputs)}
        self.shapes = {name: self.graph_shape(name) for name in self.inputs}
        self.stages: list[NeuronStage | RelayStage] = []

    def is_population(self, name: str) -> bool:
        return name in self.index or name in self.clocks

    def paths(self, name: str) -> list[tuple[str, list[_Node], float]]:
        """Every path into node ``name``: ``(population or clock, linear nodes in forward order, delay)``."""
        out = []
        for src in self.incoming.get(name, []):
            if self.is_population(src):
                out.append((src, [], 0.0))
                continue
            for origin, chain, delay in self.paths(src):
                node = self.graph.nodes[src]
                extra = float(np.max(node.delay)) if type(node).__name__ == "Delay" else 0.0
                out.append((origin, [*chain, _Node(node)], delay + extra))
        return out

    def neurons(self, name: str, node) -> None:
        meta = _meta(node)
        shape = tuple(np.shape(node.v_threshold))
        synapses, bias, alpha = [], torch.zeros(math.prod(shape), dtype=torch.float64), None
        for origin, chain, delay in self.paths(name):
            if origin in self.clocks:
                weights = affine_map(chain, self.graph_shape(origin))[0].sum(dim=1)  # every clock input spikes
                if origin.startswith("bias"):
                    bias = bias + weights * (_field(meta, "window_start", f"node {name}'s", True) - self.clocks[origin])
                else:
                    alpha = weights
                continue
            synapses.append(Synapses(self.index[origin], affine_map(chain, self.shapes[origin])[0], delay))
        if alpha is None or not torch.allclose(alpha, alpha[0].expand_as(alpha)):
            raise ConfigError(f"ttfs_window replay: node {name} has no ramp input of one slope")
        fires = meta.get("role") != "output"
        window = _field(meta, "window", f"node {name}'s", True)
        self.stages.append(NeuronStage(synapses, bias, window, float(alpha[0]), fires))
        self.add_population(name, shape)

    def relay(self, name: str) -> None:
        pool_name = self.only_input(name, "an earliest_spike_pool IF node")
        pool = self.graph.nodes[pool_name]
        source = self.only_input(pool_name, "the SumPool2d before an earliest_spike_pool IF node")
        if type(pool).__name__ != "SumPool2d" or source not in self.index:
            raise ConfigError(f"ttfs_window replay: node {name} (role earliest_spike_pool) needs a SumPool2d of one "
                              f"population before it, got {type(pool).__name__} {pool_name} of {source}")
        shape = self.shapes[source]
        k, s, p = (tuple(int(v) for v in a) for a in (pool.kernel_size, pool.stride, pool.padding))

        def earliest(times: torch.Tensor) -> torch.Tensor:
            t = times.reshape(times.shape[0], *shape)
            return -F.max_pool2d(-t, k, s, p).reshape(times.shape[0], -1)

        self.stages.append(RelayStage(self.index[source], earliest))
        self.add_population(name, tuple(np.shape(self.graph.nodes[name].v_threshold)))

    def only_input(self, name: str, what: str) -> str:
        """The one node an edge leads from into ``name``; ``ConfigError`` naming ``what`` it is for none or several."""
        sources = self.incoming.get(name, [])
        if len(sources) != 1:
            raise ConfigError(f"ttfs_window replay: node {name} ({what}) needs exactly one incoming edge, got "
                              f"{len(sources)}")
        return sources[0]

    def add_population(self, name: str, shape: tuple[int, ...]) -> None:
        self.index[name] = len(self.stages) + 1
        self.shapes[name] = shape

    def graph_shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(s) for s in self.graph.nodes[name].input_type["input"])

    def build(self) -> list[NeuronStage | RelayStage]:
        for name in topological_order(self.graph):
            node = self.graph.nodes[name]
            kind, role = type(node).__name__, _meta(node).get("role")
            if kind == "CubaLIF":
                self.neurons(name, node)
            elif kind == "IF" and role == "earliest_spike_pool":
                self.relay(name)
        return self.stages


def _input_values(x, shape: tuple[int, ...]) -> torch.Tensor:
    """``x`` as float64, or a one-line ``ConfigError`` unless it is a real tensor ``[B, *shape]`` without NaN (a numpy
    array ended in an AttributeError, a complex tensor lost its imaginary part with a warning, and a NaN value was
    read as no spike; 10 values of a sample ran as the first 10 of its 128 inputs, the others silent)."""
    if not isinstance(x, torch.Tensor) or x.is_complex() or x.dim() < 1 or tuple(x.shape[1:]) != tuple(shape):
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"ttfs_window replay: x must be a real tensor [B, {', '.join(map(str, shape))}] of input "
                          f"values, got {got}")
    x = x.to(torch.float64)
    if bool(torch.isnan(x).any()):
        raise ConfigError("ttfs_window replay: x holds NaN, which codes no input spike time")
    return x


def replay_window_graph(graph, x: torch.Tensor) -> tuple[SimResult, list[str]]:
    """Simulate the ``ttfs_window`` graph on input values ``x`` ``[B, *input_shape]`` (coded as the metadata's
    ``input_code`` says); returns the spike times of every population with the output potentials, and the
    populations' node names (``result.times[i]`` is population ``names[i]``)."""
    replay = _Replay(graph)
    stages = replay.build()
    window = _field(replay.meta, "input_window", "the graph's", True)
    x = _input_values(x, replay.shapes[replay.inputs[0]]).reshape(x.shape[0], -1)
    halves = torch.stack([x.clamp(min=0), (-x).clamp(min=0)])  # [2, B, N]
    times = torch.where(halves > 0, window - halves.clamp(max=window), torch.full_like(halves, math.inf))
    names = sorted(replay.index, key=replay.index.get)
    return simulate(stages, times, window), names
