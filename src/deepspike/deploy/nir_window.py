"""Windowed ReL-PSP TTFS networks (method ``ttfs_window``) -> NIR graphs (``to_nir_window``), in continuous time.

Each population of spikes is a node: the two input halves (``input`` = positive values, ``input_negative``,
one Dirac each at offset ``T_0 - |x|``), every neuron layer (a ``CubaLIF``) and every max-pool relay (a
``SumPool2d`` -> fire-once ``IF`` with threshold 0.5: the earliest spike of each region passes). Between
populations the synapses are the ANN's linear layers as NIR nodes: ``Conv2d``/``Linear`` (batch-norms folded,
their bias moved to a bias input; a grouped conv as its block-diagonal plain conv), ``AvgPool2d``, ``Flatten``; a
residual shortcut reaches its junction through a ``Delay`` of the body's windows (identity shortcuts as a ``Scale``
of 1).

Neurons (``ttfs.window``): ReL-PSP ``CubaLIF`` (``tau_syn = tau_mem = large``, ``w_in = tau_syn``, ``r = tau_mem``:
an input spike of weight w adds the current w), threshold ``alpha T_n``, fire once (``v_reset`` very negative).
Per layer two extra ``Input`` nodes: ``bias_<n>`` spikes once at the start of the preceding window with weights
``b / T_{n-1}``, and ``ramp_<n>`` spikes once at ``t_min(n)`` with weight ``alpha`` (the ramp current). NIR has
no way to say that the input currents switch off at ``t_min(n)``; the neuron node's metadata says it
(``input_currents_until``) with its window, and a consumer must gate them (our replay,
``deploy.nir_window_replay``, does). Graph metadata: ``format: ttfs_window``, the windows, the input window, the
extra inputs' names and spike times, ``decode: first_spike`` (or the output potentials at ``t_min(out)``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import shown_value
from deepspike.deploy.deps import require_nir
from deepspike.deploy.model_walk import (
    checked_input_shape,
    first_layer_takes,
    flatten_sample_dims,
    to_numpy,
    ungrouped_conv_weight,
)
from deepspike.deploy.ttfs_nodes import DEFAULT_LARGE, earliest_spike_node, ttfs_neuron_node
from deepspike.layers.batchnorm_fold import BATCH_NORMS, folded_affine
from deepspike.methods.window_graph import Source, WindowWalk, shape_after
from deepspike.methods.window_network import WindowNetwork
from deepspike.ttfs.window_layers import RampedLayer

INPUTS = ("input", "input_negative")


class _NirWalk(WindowWalk):
    """Populations as NIR nodes (module docstring); ``nodes``, ``edges`` and the clock inputs' spike times."""

    def __init__(self, nir, input_shape: tuple[int, ...], large: float) -> None:
        self.nir, self.large = nir, large
        self.nodes: dict = {name: nir.Input(input_type={"input": np.array(input_shape)}) for name in INPUTS}
        self.edges: list[tuple[str, str]] = []
        self.clocks: dict[str, float] = {}  # bias_<n> / ramp_<n> Input -> the time it spikes
        self.windows: dict[str, tuple[float, float]] = {name: (0.0, 0.0) for name in INPUTS}

    def add(self, kind: str, node, sources: list[str]) -> str:
        name = f"{len(self.nodes)}_{kind}"
        self.nodes[name] = node
        self.edges += [(s, name) for s in sources]
        return name

    def neurons(self, layer: RampedLayer, sources: list[Source], shape: tuple[int, ...], fires: bool) -> str:
        window, t_min = float(layer.window), max(src.t_max + src.delay for src in sources)
        ends, bias, drive = [], torch.zeros(shape[0], dtype=torch.float64), float(layer.alpha)
        for src in sources:
            for population, sign in ((INPUTS[0], 1.0), (INPUTS[1], -1.0)) if src.population == INPUTS[0] else \
                    ((src.population, 1.0),):
                end, b, weight_sum = self.synapses(population, sign, src, shape)
                ends.append(end)
                bias, drive = bias + b, drive + weight_sum
        previous = t_min - max(self.windows[s.population][0] + s.delay for s in sources)  # preceding window
        ends.append(self.clock("bias", shape, t_min - previous, bias / previous))
        ends.append(self.clock("ramp", shape, t_min, torch.full((shape[0],), layer.alpha, dtype=torch.float64)))
        drive += float(bias.abs().max()) / previous
        node = ttfs_neuron_node("relpsp", layer.alpha * window, 1.0, shape, drive, self.large, t_min + window)
        node.metadata.update(window_start=t_min, window=window, alpha=float(layer.alpha), input_currents_until=t_min,
                             role="neurons" if fires else "output")
        name = self.add("neurons" if fires else "output_neurons", node, ends)
        self.windows[name] = (t_min, t_min + window)
        return name

    def synapses(self, population: str, sign: float, src: Source, shape) -> tuple[str, torch.Tensor, float]:
        """NIR nodes of ``src.chain`` from ``population`` (weights times ``sign``, biases left out, batch-norms
        folded); returns the last node, the chain's bias per output channel and its largest row sum of |w|."""
        last, cur_shape, modules = population, src.shape, list(src.chain)
        if sign < 0:
            last = self.add("negate", self.nir.Scale(scale=-np.ones(cur_shape, dtype=np.float32)), [last])
        offset = _chain_offset(src.chain, src.shape)
        weight_sum = 0.0
        while modules:
            m = modules.pop(0)
            norm = modules.pop(0) if modules and isinstance(modules[0], BATCH_NORMS) else None
            last, cur_shape, rows = self.layer(m, norm, last, cur_shape)
            weight_sum = max(weight_sum, rows)
        if src.delay:
            last = self.add("delay", self.nir.Delay(delay=np.full(cur_shape, src.delay, dtype=np.float32)), [last])
        elif last == population:  # an identity path: NIR needs a node between two populations
            last = self.add("identity", self.nir.Scale(scale=np.ones(cur_shape, dtype=np.float32)), [last])
        bias = _channel_bias(offset, shape) if sign > 0 else torch.zeros(shape[0], dtype=torch.float64)
        return last, bias, weight_sum

    def layer(self, m: nn.Module, norm, last: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...], float]:
        """The NIR node of one linear module (its batch-norm ``norm`` folded in, its bias left out)."""
        nir = self.nir
        out_shape = shape_after([m], shape)
        if isinstance(m, nn.Conv2d) and (m.padding_mode != "zeros" or isinstance(m.padding, str)):
            raise ConfigError("NIR export: only zero padding given as integers is supported")
        if isinstance(m, nn.Conv2d | nn.Linear):
            weight, _ = folded_affine(m.weight.detach(), m.bias, norm) if norm is not None else (m.weight, m.bias)
            rows = float(weight.detach().abs().reshape(weight.shape[0], -1).sum(1).max())
            if isinstance(m, nn.Linear):
                return self.add("linear", nir.Linear(weight=to_numpy(weight)), [last]), out_shape, rows
            node = nir.Conv2d(input_shape=shape[1:], weight=ungrouped_conv_weight(to_numpy(weight), m.groups),
                              stride=m.stride, padding=m.padding, dilation=m.dilation, groups=1,
                              bias=np.zeros(weight.shape[0], dtype=np.float32))  # nir.read misreads grouped convs
            return self.add("conv", node, [last]), out_shape, rows
        if norm is not None or isinstance(m, BATCH_NORMS):
            raise ConfigError("NIR export: a batch-norm must follow a conv or linear layer to fold into it")
        if isinstance(m, nn.AvgPool2d):
            if m.ceil_mode or m.divisor_override or (not m.count_include_pad and any(_pair(m.padding))):
                raise ConfigError("NIR export: AvgPool2d must use floor mode and the plain k x k divisor (NIR's "
                                  "AvgPool2d has no ceil_mode, divisor_override or count_include_pad=False)")
            node = nir.AvgPool2d(kernel_size=np.array(_pair(m.kernel_size)), stride=np.array(_pair(m.stride)),
                                 padding=np.array(_pair(m.padding)))
            return self.add("avgpool", node, [last]), out_shape, 1.0
        if isinstance(m, nn.Flatten):
            start, end = flatten_sample_dims(m, len(shape))
            node = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start, end_dim=end)
            return self.add("flatten", node, [last]), out_shape, 1.0
        return last, shape, 1.0  # dropout: the identity at inference

    def relay(self, pool: nn.MaxPool2d, source: Source, shape: tuple[int, ...]) -> str:
        if _pair(pool.dilation) != (1, 1) or pool.ceil_mode:
            raise ConfigError("NIR export (ttfs_window): a max pooling with dilation or ceil_mode has no NIR relay "
                              "(NIR's SumPool2d has neither); use dilation 1 in floor mode")
        k, s, p = (np.array(_pair(v)) for v in (pool.kernel_size, pool.stride, pool.padding))
        summed = self.add("sumpool", self.nir.SumPool2d(kernel_size=k, stride=s, padding=p), [source.population])
        name = self.add("earliest", earliest_spike_node(shape, int(np.prod(k))), [summed])
        self.windows[name] = self.windows[source.population]
        return name

    def clock(self, kind: str, shape: tuple[int, ...], time: float, weight: torch.Tensor) -> str:
        """An ``Input`` that spikes once at ``time`` into a ``Linear`` (flat ``shape``) or 1x1 ``Conv2d`` of
        ``weight`` ``[M]`` (one spike per map position)."""
        nir = self.nir
        src = f"{kind}_{sum(k.startswith(kind) for k in self.clocks) + 1}"
        self.clocks[src] = time
        w = weight.to(torch.float32).numpy()
        if len(shape) == 1:
            self.nodes[src] = nir.Input(input_type={"input": np.array([1])})
            return self.add(f"{kind}_linear", nir.Linear(weight=w.reshape(-1, 1)), [src])
        self.nodes[src] = nir.Input(input_type={"input": np.array([1, *shape[1:]])})
        node = nir.Conv2d(input_shape=shape[1:], weight=w.reshape(-1, 1, 1, 1), stride=1, padding=0, dilation=1,
                          groups=1, bias=np.zeros(len(w), dtype=np.float32))
        return self.add(f"{kind}_conv", node, [src])


def _chain_offset(chain: list[nn.Module], shape: tuple[int, ...]) -> torch.Tensor:
    """The bias ``b [M]`` of the affine map ``chain`` (``W x + b`` on flattened inputs of per-sample ``shape``): its
    output for a zero input, in its parameters' dtype. ``methods.window_graph.affine_map`` gives it too, with the
    dense Jacobian ``W [M, N]`` the exporter never reads (one backward pass per output: a 3 x 24 x 24 input into
    8 channels took 14 s to export, a CIFAR-sized 64-channel first conv's ``W`` alone is 1.6 GB)."""
    dtype = next((p.dtype for m in chain for p in m.parameters()), torch.float64)
    x = torch.zeros(1, *shape, dtype=dtype)
    for m in chain:
        x = m(x)
    return x.reshape(-1)


def _channel_bias(offset: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The chain's bias ``offset`` (flat, of a population of per-sample ``shape``) as one value per channel ``[M]``,
    what the ``bias_<n>`` clock's ``Linear`` / 1x1 ``Conv2d`` can give; a ``ConfigError`` for another ``shape`` than
    ``[N]`` or ``[C, H, W]`` or a bias that differs within a channel's map (a padded conv after a conv)."""
    if len(shape) not in (1, 3):
        raise ConfigError(f"NIR export (ttfs_window): a neuron layer on {list(shape)} populations has no NIR form "
                          "here; its input must be flat [N] or maps [C, H, W] (flatten the whole sample)")
    per_channel = offset.reshape(shape[0], -1).double()
    if not torch.allclose(per_channel, per_channel[:, :1].expand_as(per_channel), rtol=1e-6, atol=1e-12):
        raise ConfigError("NIR export (ttfs_window): the bias reaching a neuron layer differs within a channel's "
                          "map; the exporter gives one bias per channel (put a neuron layer between two convs)")
    return per_channel[:, 0]


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def is_window_model(model: nn.Module) -> bool:
    """True for a windowed ReL-PSP TTFS network (method ``ttfs_window``)."""
    return isinstance(model, WindowNetwork)


def to_nir_window(model: WindowNetwork, input_shape: tuple[int, ...], large: float = DEFAULT_LARGE,
                  metadata: dict | None = None):
    """The ``nir.NIRGraph`` of a windowed TTFS network (module docstring); ``input_shape`` without batch. An
    ``input_shape`` the net does not take is a one-line ``ConfigError`` naming it and what the first layer takes."""
    nir = require_nir()
    if not is_window_model(model):  # another net ended in "'Linear' object has no attribute 'encoder'"
        raise ConfigError(f"to_nir_window takes a windowed TTFS network (method ttfs_window), got "
                          f"{shown_value(model) if not isinstance(model, nn.Module) else type(model).__name__}")
    shape = checked_input_shape(input_shape, "to_nir_window")
    if not model.encoder.calibrated:
        raise ConfigError("NIR export: the network's windows are not calibrated")
    model.eval()
    walk = _NirWalk(nir, shape, float(large))
    walk.windows.update({name: (0.0, float(model.encoder.window)) for name in INPUTS})
    with torch.no_grad():
        try:
            out = walk.run(model, INPUTS[0], shape)
        except (RuntimeError, IndexError) as e:  # torch's "mat1 and mat2 shapes cannot be multiplied", ...
            raise ConfigError(f"NIR export: input_shape {list(shape)} does not fit the net, whose first layer takes "
                              f"{first_layer_takes(model)} ({str(e).splitlines()[0]})") from None
    walk.nodes["output"] = nir.Output(output_type={"output": np.array(out.shape)})
    walk.edges.append((out.population, "output"))
    meta = {"producer": "deepspike", "format": "ttfs_window", "fire_once": True, "spike": "dirac",
            "decode": "first_spike (or the output neurons' potentials at their window start)",
            "inputs": ",".join(INPUTS), "input_window": float(model.encoder.window),
            "input_code": "x > 0: one spike on 'input' at T_0 - x; x < 0: on 'input_negative' at T_0 + x; 0: none",
            "clock_inputs": ",".join(f"{k}:{v:.9g}" for k, v in walk.clocks.items()),
            "neuron": "ReL-PSP IF, fires once inside [window_start, window_start + window]; the input currents "
                      "stop at window_start (node metadata input_currents_until), the ramp input drives V after",
            "windows": ",".join(f"{w:.9g}" for w in model.windows()), "large": float(large)}
    meta.update(metadata or {})
    return nir.NIRGraph(nodes=walk.nodes, edges=walk.edges, metadata=meta, type_check=False)
