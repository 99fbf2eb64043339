"""TTFS networks (methods ``ttfs``, ``stdbp``) -> NIR graphs (``to_nir_ttfs``), in continuous time.

The body of a :class:`~deepspike.methods.ttfs_network.TTFSNetwork` becomes a chain from the ``input`` node
(one Dirac spike per input at its coded time ``t = encode(x)``, silent inputs never spike) to ``output``:

* ``TTFSLinear`` -> ``Linear`` -> ``CubaLIF``; ``TTFSConv2d`` -> ``Conv2d`` (zero bias) -> ``CubaLIF``
  (:mod:`ttfs_nodes`: fire-once IF neurons with the exp or ReL-PSP kernel; zero padding = no spike);
* the bias spike (one input spike at t = 0 per neuron with a trainable weight per output neuron/channel):
  NIR has no initial state and an ``Affine`` bias is a constant current, not a spike, so each layer with a
  bias gets its own graph ``Input`` ``bias_<n>`` that must spike once at t = 0 (shape ``[1]`` for dense
  layers -> ``Linear`` of the bias column; ``[1, H', W']`` for conv layers -> 1x1 ``Conv2d`` of the bias
  weights), summed into that layer's ``CubaLIF`` (NIR sums the edges into a node);
* ``TTFSMaxPool2d`` (earliest spike) -> ``SumPool2d`` -> fire-once ``IF`` with threshold 0.5 (exact);
* ``TTFSAvgPool2d`` (zhou2021: a neuron with weights ``theta/(N-1)``) -> ``Conv2d`` (each channel from its own,
  ``groups=1``: NIR's type inference misreads grouped convs) -> ``CubaLIF``;
* ``Flatten`` -> ``Flatten``; dropout and identities are left out (inference).

Time-domain batch-norm is refused with a ``ConfigError``: its folded form (``TTFSDelayBias``) needs negative
delays, inhibitory bias spikes or a clamp for general statistics, which NIR ``Delay`` cannot say.
``Concat`` (inception) branches are refused too (NIR has no concatenation node).

Graph metadata: ``format: ttfs``, ``fire_once: true``, ``decode: first_spike`` (the class of the earliest
output spike), ``kernel``, ``tau``, ``theta``, the input ``coding`` and ``alpha``, ``bias_inputs`` (comma
list of the bias Input nodes), ``bias_spike_time: 0``, ``spike: dirac`` (a spike is a Dirac of area 1),
``time_unit``, ``large``, ``t_window`` (fire-once guarantee) and ``v_reset`` (its rule).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.deploy.deps import require_nir
from deepspike.deploy.model_walk import checked_input_shape, leaf_modules, to_numpy
from deepspike.deploy.ttfs_nodes import DEFAULT_LARGE, DEFAULT_T_WINDOW, earliest_spike_node, ttfs_neuron_node
from deepspike.layers.containers import ConcatBranches
from deepspike.ttfs.backend_torch import out_size
from deepspike.ttfs.batchnorm import TTFSBatchNorm, TTFSDelayBias
from deepspike.ttfs.layers import TTFSAvgPool2d, TTFSConv2d, TTFSDropout, TTFSLinear, TTFSMaxPool2d

SPIKE_INPUT = "input"


def is_ttfs_model(model: nn.Module) -> bool:
    """True if ``model`` is a module holding closed-form TTFS neuron layers (``TTFSLinear``/``TTFSConv2d``); False for
    anything else (a path or None given to ``to_nir_ttfs`` ended in "'str' object has no attribute 'modules'")."""
    return isinstance(model, nn.Module) and any(isinstance(m, TTFSLinear | TTFSConv2d) for m in model.modules())


def _drive(weight: torch.Tensor, bias: torch.Tensor | None) -> float:
    """Largest ``sum_i |w_ji|`` over the layer's neurons (channels), the bias spike included."""
    per = weight.detach().abs().reshape(weight.shape[0], -1).sum(1).double()  # [M, fan_in] -> [M]
    if bias is not None:
        per = per + bias.detach().abs().double()
    return float(per.max())


class _Builder:
    """Accumulates nodes and edges of the chain plus the side inputs of bias spikes."""

    def __init__(self, nir, shape: tuple[int, ...], large: float, t_window: float) -> None:
        self.nir, self.shape, self.large, self.t_window = nir, shape, large, t_window
        self.input_shape = shape
        self.nodes: dict = {SPIKE_INPUT: nir.Input(input_type={"input": np.array(shape)})}
        self.edges: list[tuple[str, str]] = []
        self.last = SPIKE_INPUT
        self.bias_inputs: list[str] = []
        self.neurons: list[tuple[str, float, float]] = []  # (kernel, theta, tau) of every CubaLIF

    def add(self, kind: str, node, after: str | None = None) -> str:
        name = f"{len(self.nodes)}_{kind}"
        self.nodes[name] = node
        self.edges.append((self.last if after is None else after, name))
        return name

    def chain(self, kind: str, node) -> str:
        self.last = self.add(kind, node)
        return self.last

    def bias_input(self, shape: tuple[int, ...]) -> str:
        name = f"bias_{len(self.bias_inputs) + 1}"
        self.nodes[name] = self.nir.Input(input_type={"input": np.array(shape)})
        self.bias_inputs.append(name)
        return name

    def takes(self, m: nn.Module, fits: bool, what: str) -> None:
        """A one-line ``ConfigError`` unless the layer ``m`` takes its input (``fits``; ``what`` it takes)."""
        if not fits:
            raise ConfigError(f"NIR TTFS export: input_shape {list(self.input_shape)} does not fit the net: "
                              f"{type(m).__name__} takes {what}, got {list(self.shape)}")

    def neuron(self, layer, shape: tuple[int, ...], drive: float, role: str = "neurons") -> None:
        node = ttfs_neuron_node(layer.kernel, layer.theta, layer.tau, shape, drive, self.large, self.t_window, role)
        self.neurons.append((layer.kernel, layer.theta, layer.tau))
        self.chain("cubalif", node)


def _add_linear(b: _Builder, m: TTFSLinear) -> None:
    nir = b.nir
    if len(b.shape) != 1:
        raise ConfigError(f"NIR TTFS export: TTFSLinear needs a flat input, got shape {b.shape}")
    b.takes(m, b.shape[0] == m.weight.shape[1], f"{m.weight.shape[1]} values")
    b.chain("linear", nir.Linear(weight=to_numpy(m.weight)))
    b.shape = (int(m.weight.shape[0]),)
    bias_edge = None
    if m.bias is not None:
        src = b.bias_input((1,))
        bias_edge = b.add("bias_linear", nir.Linear(weight=to_numpy(m.bias).reshape(-1, 1)), after=src)  # [M, 1]
    b.neuron(m, b.shape, _drive(m.weight, m.bias))
    if bias_edge is not None:
        b.edges.append((bias_edge, b.last))


def _add_conv(b: _Builder, m: TTFSConv2d) -> None:
    nir = b.nir
    o, c_in, kh, kw = m.weight.shape
    b.takes(m, len(b.shape) == 3 and b.shape[0] == c_in, f"[C, H, W] maps of C = {c_in} channels")
    c, h, w = b.shape
    ho, wo = out_size(h, kh, m.stride, m.padding), out_size(w, kw, m.stride, m.padding)
    b.takes(m, min(ho, wo) >= 1, f"maps of at least {kh} x {kw} (padding {m.padding})")
    zeros = np.zeros(o, dtype=np.float32)
    b.chain("conv", nir.Conv2d(input_shape=(h, w), weight=to_numpy(m.weight), stride=m.stride, padding=m.padding,
                               dilation=1, groups=1, bias=zeros))
    b.shape = (int(o), ho, wo)
    bias_edge = None
    if m.bias is not None:
        src = b.bias_input((1, ho, wo))
        weight = to_numpy(m.bias).reshape(o, 1, 1, 1)  # [O] -> [O, 1, 1, 1]: 1x1 conv of the bias spike
        bias_edge = b.add("bias_conv", nir.Conv2d(input_shape=(ho, wo), weight=weight, stride=1, padding=0,
                                                  dilation=1, groups=1, bias=zeros), after=src)
    b.neuron(m, b.shape, _drive(m.weight, m.bias))
    if bias_edge is not None:
        b.edges.append((bias_edge, b.last))


def _add_pool(b: _Builder, m: TTFSMaxPool2d | TTFSAvgPool2d) -> None:
    """Pools; their zero padding (``padding`` p, if the layer has one) is "no spike", as NIR's zeros are."""
    nir = b.nir
    k, s, p = int(m.kernel_size), int(m.stride), int(getattr(m, "padding", 0))
    b.takes(m, len(b.shape) == 3, "[C, H, W] maps")
    c, h, w = b.shape
    out = (c, out_size(h, k, s, p), out_size(w, k, s, p))
    b.takes(m, min(out) >= 1, f"maps of at least {k} x {k} (padding {p})")
    if isinstance(m, TTFSMaxPool2d):
        b.chain("sumpool", nir.SumPool2d(kernel_size=np.array([k, k]), stride=np.array([s, s]),
                                         padding=np.array([p, p])))
        b.shape = out
        b.chain("if", earliest_spike_node(out, k * k))
        return
    n = k * k
    # channels pool alone: weight[i, j] = theta/(N-1) for j = i, else 0. Not a depthwise conv (groups = C, weight
    # [C, 1, k, k]): NIR 1.0.8 infers a Conv2d's input channels as weight.shape[1], ignoring groups, so nir.read
    # refused our own file ("type mismatch: 14_cubalif.output: [[32 4 4]] -> 15_avgconv.input: [[1 4 4]]")
    weight = np.zeros((c, c, k, k), dtype=np.float32)
    weight[np.arange(c), np.arange(c)] = m.theta / (n - 1)
    b.chain("avgconv", nir.Conv2d(input_shape=(h, w), weight=weight, stride=s, padding=p, dilation=1, groups=1,
                                  bias=np.zeros(c, dtype=np.float32)))
    b.shape = out
    b.neuron(m, out, n * m.theta / (n - 1), role="avg_pool")


def _add_flatten(b: _Builder, m: nn.Flatten) -> None:
    if m.start_dim != 1 or m.end_dim != -1:
        raise ConfigError("NIR TTFS export: only Flatten(start_dim=1) of the whole sample is supported")
    b.chain("flatten", b.nir.Flatten(input_type={"input": np.array(b.shape)}, start_dim=0, end_dim=-1))
    b.shape = (int(np.prod(b.shape)),)


def _add_module(b: _Builder, m: nn.Module) -> None:
    if isinstance(m, nn.Identity | nn.Dropout | TTFSDropout):
        return
    if isinstance(m, TTFSLinear):
        _add_linear(b, m)
    elif isinstance(m, TTFSConv2d):
        _add_conv(b, m)
    elif isinstance(m, TTFSMaxPool2d | TTFSAvgPool2d):
        _add_pool(b, m)
    elif isinstance(m, nn.Flatten):
        _add_flatten(b, m)
    elif isinstance(m, TTFSBatchNorm | TTFSDelayBias):
        raise ConfigError(
            f"NIR TTFS export: {type(m).__name__} (time-domain batch-norm) has no exact NIR form: its folded "
            "form needs negative delays, inhibitory bias spikes and a clamp; train with method.batchnorm=false"
        )
    elif isinstance(m, ConcatBranches):
        raise ConfigError("NIR TTFS export: Concat (inception) branches are not supported; NIR has no concatenation")
    else:
        raise ConfigError(f"NIR TTFS export: layer {type(m).__name__} has no NIR mapping (supported: TTFSLinear, "
                          "TTFSConv2d, TTFSMaxPool2d, TTFSAvgPool2d, Flatten, dropout)")


def _joined(values) -> str | float:
    distinct = sorted(set(values))
    if len(distinct) == 1:
        return distinct[0]
    return ",".join(str(v) for v in distinct)


def to_nir_ttfs(model: nn.Module, input_shape: tuple[int, ...], large: float = DEFAULT_LARGE,
                t_window: float = DEFAULT_T_WINDOW, metadata: dict | None = None):
    """The ``nir.NIRGraph`` of a TTFS network (module docstring): spike times in, first spike times out.

    model: a ``TTFSNetwork`` (its ``body`` is exported, its ``encoder`` described in metadata) or an
    ``nn.Sequential`` of TTFS layers. input_shape: one sample's input times without batch, e.g. ``(C, H, W)``.
    large: ``tau_mem`` (and ReL-PSP's ``tau_syn``) = ``large * tau``. t_window: time (model units) within
    which every neuron provably fires at most once (:func:`ttfs_nodes.reset_potential`).
    """
    nir = require_nir()
    if not is_ttfs_model(model):
        raise ConfigError(f"NIR TTFS export needs TTFSLinear/TTFSConv2d layers; got {type(model).__name__}")
    body = getattr(model, "body", model)
    b = _Builder(nir, checked_input_shape(input_shape, "to_nir_ttfs"), float(large), float(t_window))
    with torch.no_grad():
        for m in leaf_modules(body):
            _add_module(b, m)
    b.nodes["output"] = nir.Output(output_type={"output": np.array(b.shape)})
    b.edges.append((b.last, "output"))
    enc = getattr(model, "encoder", None)
    kernels, thetas, taus = zip(*b.neurons)
    meta = {"producer": "deepspike", "format": "ttfs", "fire_once": True, "decode": "first_spike",
            "kernel": _joined(kernels), "theta": _joined(thetas), "tau": _joined(taus),
            "coding": str(getattr(enc, "coding", "unknown")), "alpha": float(getattr(enc, "alpha", 1.0)),
            "spike_input": SPIKE_INPUT, "bias_inputs": ",".join(b.bias_inputs), "bias_spike_time": 0.0,
            "spike": "dirac", "time_unit": "model time (input spike at t = coding(x); tau in the same unit)",
            "large": float(large), "t_window": float(t_window),
            "v_reset": "-2 (theta + G) exp(t_window/tau_mem): no second spike before t_window",
            "fires": "v > threshold (first crossing)"}
    meta.update(metadata or {})
    return nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=meta, type_check=False)
