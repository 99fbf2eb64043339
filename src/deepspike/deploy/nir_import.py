"""NIR graphs -> deepspike modules (``from_nir``): a :class:`NirNetwork` that runs ``[T, B, ...]`` inputs.

Supported nodes (a chain from ``Input`` to ``Output``): ``Affine``, ``Linear``, ``Conv2d``, ``AvgPool2d``,
``SumPool2d``, ``Flatten``, ``Scale``, ``IF``, ``LIF``, ``CubaLIF`` (read under forward Euler: -> our neurons,
:mod:`neurons`; constants that differ from neuron to neuron -> ``HeterogeneousLIF``, :mod:`nir_per_neuron`),
``LI``/``I`` (a non-spiking output integrator whose membrane trace is the output). Stateless layers run on
``[T*B, ...]`` (``TimeDistributed``), neurons over T. A recurrent layer, a neuron node and a ``Linear``/``Affine``
node on a cycle (``neuron -> rec -> neuron``, read as one step of delay: ``graph_order.feedback_edges``), becomes
:class:`~deepspike.layers.recurrent.RecurrentSpiking`; a layer written as a nested subgraph (snnTorch's ``RLeaky``,
Spyx's recurrent layers) is inlined first (``graph_flatten``). A layer with synaptic delays, written as branches
``source -> Delay(k dt) -> Linear -> target`` (one per delay, the ``k = 0`` one without a ``Delay``; ``to_nir(...,
round_delays=True)``), becomes the rounded :class:`~deepspike.layers.delays.DelayedLinear` (``nir_delays.fold_delays``;
delays that are not whole steps of ``dt`` and ``Delay`` nodes elsewhere are one-line errors). ``dt`` is the argument,
else the graph's metadata (``graph_dt``).
Our own mapping is used for every node (nirtorch's default Affine mapping drops the bias). Nothing is built
before the graph passes the checks of :mod:`nir_read` (the file), :mod:`nir_fields` (each node's fields) and
:mod:`nir_shapes` (the nodes fit together): a broken graph is a one-line error, not a net that fails later.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import FLOAT32_MAX, FLOAT32_TINY, shown_value
from deepspike.deploy.deps import require_nir
from deepspike.deploy.graph_flatten import inline_subgraphs
from deepspike.deploy.graph_order import feedback_edges, predecessors, topological_order
from deepspike.deploy.neurons import low_latency_rules, node_params, same_for_every_neuron, synaptic_params
from deepspike.deploy.nir_delays import delayed_layer, fold_delays
from deepspike.deploy.nir_export import DEFAULT_DT, is_normal_dt
from deepspike.deploy.nir_fields import check_nodes, node_padding
from deepspike.deploy.nir_fields import pair as _pair
from deepspike.deploy.nir_fields import plain_metadata as _plain
from deepspike.deploy.nir_modules import GraphBody, Integrator, NirNetwork, PerNeuronIntegrator, Scale
from deepspike.deploy.nir_per_neuron import _field, needs_per_neuron, per_neuron_layer
from deepspike.deploy.nir_read import read_nir
from deepspike.deploy.nir_shapes import check_shapes, shaped_graph
from deepspike.layers.recurrent import RecurrentSpiking
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons.modules import SpikingNeuron
from deepspike.neurons.synaptic import SynapticLIF


def _fold_recurrences(nir, graph):
    """``(graph without its recurrent weights, {neuron node: recurrent weight node})``: each feedback edge
    (``graph_order.feedback_edges``) must close a recurrent layer, a ``Linear``/``Affine`` node fed only by a neuron
    node (IF, LIF, CubaLIF) and feeding only it back; anything else is a one-line ``ConfigError``."""
    feedback = feedback_edges(graph)
    if not feedback:
        return graph, {}
    recurrent, removed = {}, set()
    for src, dst in feedback:
        ins = [e for e in graph.edges if e[1] == src]
        outs = [e for e in graph.edges if e[0] == src]
        weight, neuron = graph.nodes[src], graph.nodes[dst]
        if not (isinstance(weight, nir.Linear | nir.Affine) and isinstance(neuron, nir.IF | nir.LIF | nir.CubaLIF)
                and ins == [(dst, src)] and outs == [(src, dst)] and dst not in recurrent):
            raise ConfigError(f"NIR import: the cycle closed by the edge {src!r} -> {dst!r} is not a recurrent layer "
                              "(a neuron node and a Linear/Affine node that only feed each other)")
        recurrent[dst] = weight
        removed.add(src)
    nodes = {k: v for k, v in graph.nodes.items() if k not in removed}
    edges = [e for e in graph.edges if e[0] not in removed and e[1] not in removed]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph.metadata, type_check=False), recurrent


def _recurrent_layer(nir, node, weight, dt: float) -> RecurrentSpiking:
    """A neuron node with its recurrent weight node: ``s_t = neuron(scale (x_t + V s_{t-1} + b))``; the neuron's
    input scale (``r``, ``w_in``) also scales what is fed back, so it is folded into ``V`` and ``b``: row ``i`` of
    ``V`` and ``b_i`` times neuron ``i``'s scale (one per layer, or one per neuron: ``nir_per_neuron``)."""
    *scales, neuron = _module(nir, node, dt)
    scale = scales[0].scale.reshape(-1) if scales else torch.ones(1)  # [1] or [M]
    w = _t(weight.weight)
    layer = RecurrentSpiking(nn.Sequential(*scales), neuron, w.shape[0], bias=isinstance(weight, nir.Affine))
    with torch.no_grad():
        layer.recurrent.module.weight.copy_(w * scale.unsqueeze(1))
        if isinstance(weight, nir.Affine):
            layer.recurrent.module.bias.copy_(_t(weight.bias) * scale)
    return layer


def refuse_low_latency(nir, node, name: str) -> None:
    """A one-line ``ConfigError`` for a spiking node with deepspike's low-latency metadata (``initial``, ``weighted``,
    ``signed``: ``to_nir(..., low_latency=True)``, ``neurons.low_latency_rules``), whose start membrane and
    threshold-valued or signed spikes the modules built here do not run: it imported as a plain IF neuron, whose
    0/1 spikes from ``v_0 = 0`` are not the file's."""
    if isinstance(node, nir.IF | nir.LIF | nir.CubaLIF) and any(low_latency_rules(node)):
        raise ConfigError(f"NIR import: node {name!r} is a low-latency converted neuron (metadata initial, weighted, "
                          "signed: to_nir(..., low_latency=True)), which from_nir does not run; GraphSimulator."
                          "rate_coded runs it, and `deepspike export FILE --onnx` writes it as ONNX")


def _node_modules(nir, graph, name: str, dt: float, recurrent: dict, delays: dict) -> list[nn.Module]:
    """The modules of node ``name``: a recurrent layer when it has a recurrent weight, a ``DelayedLinear`` when it
    is a folded delayed layer (``delays``: its delays in steps), else ``_module``. A low-latency converted neuron
    (``refuse_low_latency``) is a one-line ``ConfigError``."""
    refuse_low_latency(nir, graph.nodes[name], name)
    if name in recurrent:
        return [_recurrent_layer(nir, graph.nodes[name], recurrent[name], dt)]
    if name in delays:
        return [delayed_layer(graph.nodes[name], delays[name])]
    return _module(nir, graph.nodes[name], dt, name)


def _graph_body(nir, graph, dt: float, recurrent: dict, delays: dict) -> tuple[GraphBody, str]:
    """The :class:`GraphBody` of a branching graph with one Input and one Output; returns it and the Input."""
    order = topological_order(graph)
    inputs = [k for k in order if isinstance(graph.nodes[k], nir.Input)]
    outputs = [k for k in order if isinstance(graph.nodes[k], nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ConfigError(f"NIR import needs one Input and one Output node, found {len(inputs)} and {len(outputs)}")
    preds = predecessors(graph)
    order = [inputs[0], *(k for k in order if k not in (inputs[0], outputs[0])), outputs[0]]
    stages = {k: nn.Sequential(*_node_modules(nir, graph, k, dt, recurrent, delays)) for k in order[1:-1]}
    return GraphBody(stages, order, preds), inputs[0]


def _chain(graph) -> list[str] | None:
    """Node names from the Input to the Output; None when the graph branches (``_graph_body`` takes it)."""
    nir = require_nir()
    inputs = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    nxt: dict[str, str] = {}
    for src, dst in graph.edges:
        if src in nxt:
            return None
        nxt[src] = dst
    if len(inputs) != 1:
        raise ConfigError(f"NIR import needs exactly one Input node, found {len(inputs)}")
    order = [inputs[0]]
    while order[-1] in nxt:  # no cycle is left here: from_nir folded every recurrent layer or refused the graph
        order.append(nxt[order[-1]])
    if len(order) != len(graph.nodes):
        raise ConfigError(f"NIR import: {len(graph.nodes) - len(order)} node(s) are not on the input-output chain")
    return order


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def _gained(scale: torch.Tensor, module: nn.Module) -> list[nn.Module]:
    """``[module]`` when every input gain in ``scale`` (a scalar or one per neuron) is 1 (relative 1e-5), else
    ``[Scale(scale), module]``: ``module(c x_t)``, for a neuron or an output integrator. The gain is one product per
    neuron and step, priced with the module's update (``module.input_gain_ops = (1, 0)``,
    ``neurons.update_cost.neuron_update_ops``) as PLIF's ``h_t = k v_{t-1} + c x_t`` prices it (2 MACs, 1 AC): its
    import is not one MAC cheaper than the net."""
    if np.allclose(scale.numpy(), 1.0, rtol=1e-5):
        return [module]
    module.input_gain_ops = (1, 0)
    return [Scale(scale, priced=False), module]


def _module(nir, node, dt: float, name: str = "") -> list[nn.Module]:
    """The modules for one node (empty for Input/Output)."""
    if isinstance(node, nir.Input | nir.Output):
        return []
    if isinstance(node, nir.Affine | nir.Linear):
        w = _t(node.weight)
        lin = nn.Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine))
        lin.weight.data.copy_(w)
        if isinstance(node, nir.Affine):
            lin.bias.data.copy_(_t(node.bias))
        return [TimeDistributed(lin)]
    if isinstance(node, nir.Conv2d):
        w = _t(node.weight)
        conv = nn.Conv2d(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]), _pair(node.stride),
                         node_padding(node, "NIR import", name), _pair(node.dilation), int(node.groups), bias=True)
        conv.weight.data.copy_(w)
        conv.bias.data.copy_(_t(node.bias))
        return [TimeDistributed(conv)]
    if isinstance(node, nir.AvgPool2d | nir.SumPool2d):
        divisor = 1 if isinstance(node, nir.SumPool2d) else None
        return [TimeDistributed(nn.AvgPool2d(_pair(node.kernel_size), _pair(node.stride), _pair(node.padding),
                                             divisor_override=divisor))]
    if isinstance(node, nir.Flatten):
        start = int(node.start_dim)
        end = int(node.end_dim)
        return [TimeDistributed(nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end))]
    if isinstance(node, nir.Scale):
        return [Scale(_t(node.scale))]
    if isinstance(node, nir.IF | nir.LIF | nir.CubaLIF) and needs_per_neuron(node):
        neuron, per_neuron_scale = per_neuron_layer(node, dt)
        return _gained(torch.as_tensor(per_neuron_scale), neuron)
    if isinstance(node, nir.IF | nir.LIF):
        params, scale = node_params(node, dt)
        return _gained(torch.tensor(scale), SpikingNeuron(params))
    if isinstance(node, nir.CubaLIF):
        params, syn_decay, scale = synaptic_params(node, dt)
        return _gained(torch.tensor(scale), SynapticLIF(params, syn_decay))
    if isinstance(node, nir.I | nir.LI):
        return _readout(nir, node, dt)
    raise ConfigError(f"NIR import: node type {type(node).__name__} is not supported (supported: Affine, Linear, "
                      "Conv2d, AvgPool2d, SumPool2d, Flatten, Scale, IF, LIF, CubaLIF, LI, I)")


def _readout(nir, node, dt: float) -> list[nn.Module]:
    """An ``I`` / ``LI`` node (forward Euler): ``v_t = k v_{t-1} + g x_t`` with ``k = 1``, ``g = r dt`` (I) or ``k = 1 -
    dt/tau``, ``g = r dt / tau`` (LI), ``r`` and ``tau`` one value per layer or per neuron (``PerNeuronIntegrator``,
    as ``GraphSimulator`` runs them); ``v_leak`` must be 0 and every ``tau`` at least ``dt``."""
    r = _field(node, "r")
    if isinstance(node, nir.I):
        return _gained(_gain(r * dt), Integrator(1.0))
    if not np.allclose(np.asarray(node.v_leak), 0.0):  # tau dv/dt = v_leak - v + R I: a drift we do not run
        raise ConfigError("NIR import: only v_leak = 0 is supported (an LI node)")
    tau = _field(node, "tau")
    if not (tau >= dt).all():  # forward Euler's 1 - dt/tau: < 0 (an alternating trace) or, at tau = 0, a division by 0
        raise ConfigError(f"NIR import: an LI node's tau = {tau.min():g} must be at least dt = {dt} (decay 1 - dt/tau "
                          "in [0, 1))")
    gain, decay = _gain(r * dt / tau), 1.0 - dt / tau
    if same_for_every_neuron(decay.ravel()):
        return _gained(gain, Integrator(float(decay.ravel()[0])))
    decay = np.broadcast_to(decay, np.broadcast_shapes(decay.shape, tuple(gain.shape)))
    return _gained(gain, PerNeuronIntegrator(torch.as_tensor(np.array(decay, dtype=np.float32))))


def _gain(values: np.ndarray) -> torch.Tensor:
    """An input gain (float32) as one number when every neuron has the same, else one per neuron."""
    flat = values.ravel()
    return torch.tensor(float(flat[0])) if same_for_every_neuron(flat) else torch.from_numpy(values.astype(np.float32))


TTFS_REPLAYS = {"ttfs": "deepspike.deploy.ttfs_graph_times",
                "ttfs_window": "deepspike.deploy.nir_window_replay.replay_window_graph"}


def check_not_ttfs(meta: dict, where: str, tool: str = "from_nir") -> None:
    """A one-line ``ConfigError`` for a TTFS graph (metadata ``format`` ``ttfs`` or ``ttfs_window``: ``to_nir_ttfs``,
    ``to_nir_window``), whose continuous-time fire-once neurons and bias/ramp spike inputs ``tool`` does not run
    (``from_nir`` refused it later as "needs exactly one Input node, found 12"); it names the replay that does."""
    fmt = str(meta.get("format"))
    if fmt in TTFS_REPLAYS:
        raise ConfigError(f"{where}: a TTFS graph (metadata format {fmt!r}), which {tool} does not run (it runs "
                          f"rate-coded graphs): replay it with {TTFS_REPLAYS[fmt]}")


def graph_dt(graph, meta: dict, where: str = "NIR import") -> float:
    """The step of a graph (seconds): the graph's ``metadata["dt"]``, else the first node's ``metadata["dt"]``
    (Input first, then the neurons), else :data:`DEFAULT_DT` = 1e-4 (snnTorch's and SpikingJelly's default); a
    boolean there is a one-line ``ConfigError`` (``True`` was read as 1 s), as the ``dt`` argument's is."""
    if "dt" in meta:
        return _metadata_dt(meta["dt"], "the graph's metadata", where)
    for name, node in sorted(graph.nodes.items(), key=lambda kv: type(kv[1]).__name__ != "Input"):
        node_meta = _plain(getattr(node, "metadata", None))
        if "dt" in node_meta:
            return _metadata_dt(node_meta["dt"], f"the metadata of node {name!r}", where)
    return DEFAULT_DT


DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")  # "0.001", "1e-4", ".5"; not "1_0", "nan", "0x1p-10"


def _metadata_dt(value, origin: str, where: str) -> float:
    """A file's ``dt`` (from ``origin``) in seconds: one real number, or a text (HDF5 may store an attribute as text,
    str or bytes) that is one decimal number (:data:`DECIMAL`, spaces around it allowed); anything else, and a value
    not finite and > 0, is a one-line ``ConfigError`` showing the value as stored (a boolean was read as 1 s, "1_0e-3"
    as 0.01 s, and a text that was no number, or a node's, was reported as "dt = nan" in the graph's metadata)."""
    arr, step = np.asarray(value), math.nan
    if arr.ndim == 0 and arr.dtype.kind in "SU":
        text = arr.item().decode("utf-8", "replace") if arr.dtype.kind == "S" else arr.item()
        step = float(text) if DECIMAL.fullmatch(text.strip()) else math.nan
    elif arr.ndim == 0 and arr.dtype.kind in "iuf":
        step = float(arr)
    if not (math.isfinite(step) and step > 0):
        raise ConfigError(f"{where}: dt = {shown_value(value)} is not a positive number of seconds ({origin})")
    return step


def _step(dt: float | None, graph, meta: dict, where: str) -> float:
    """The step in seconds: ``dt``, else :func:`graph_dt`; ``ConfigError`` unless a positive finite number (an
    argument that is a bool or text is not one: ``dt=True`` ran with 1 s, ``dt="0.1"`` with 0.1 s)."""
    try:
        if isinstance(dt, bool | str | bytes):
            raise TypeError
        step = float(dt if dt is not None else graph_dt(graph, meta, where))
    except ConfigError:  # a boolean in the metadata, said as such
        raise
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float range
        step = math.nan
    origin = "the dt argument" if dt is not None else "the graph's metadata"
    if not (math.isfinite(step) and step > 0):
        raise ConfigError(f"{where}: dt = {shown_value(dt) if dt is not None else step} is not a positive number of "
                          f"seconds ({origin})")
    if not is_normal_dt(step):  # 1e-300 ran: every leak factor 1 and every input scaled to 0, chance accuracy
        raise ConfigError(f"{where}: dt = {step:g} s is beyond float32's normal numbers ({FLOAT32_TINY:.4g} to "
                          f"{FLOAT32_MAX:.4g}), in which the net's time constants are computed ({origin})")
    return step


def readout_decode(nir, graph, meta: dict) -> dict:
    """``meta`` with ``decode: membrane`` added when it has no ``decode`` and every node feeding the Output is an
    ``LI`` / ``I`` (another tool's non-spiking readout: its membrane ``v_T`` is the only reading, where a count of
    "spikes" summed the trace over the steps); a file's own ``decode`` wins."""
    outputs = {k for k, v in graph.nodes.items() if isinstance(v, nir.Output)}
    feeding = [graph.nodes[src] for src, dst in graph.edges if dst in outputs]
    if "decode" in meta or not feeding or not all(isinstance(n, nir.LI | nir.I) for n in feeding):
        return meta
    return {**meta, "decode": "membrane"}


def from_nir(source, dt: float | None = None) -> NirNetwork:
    """Build a :class:`NirNetwork` from a NIR file path or a ``nir.NIRGraph``.

    dt: seconds per step; default :func:`graph_dt` (graph metadata, node metadata, else 1e-4). The reset mode
    of each neuron is its node's ``metadata["reset"]``, else ``zero`` (NIR's reset to ``v_reset``). ``metadata``
    is the graph's, with ``dt`` and, for an ``LI`` / ``I`` readout that says no ``decode``, ``decode: membrane``
    (:func:`readout_decode`).
    A file that is missing, not NIR or damaged, a node with broken fields (a weight of the wrong rank, NaN) and
    nodes that do not fit together are each a one-line :class:`~deepspike.core.errors.UserError` naming the file
    (``"NIR import"`` for a graph object) and the node.
    """
    nir = require_nir()
    from_file = isinstance(source, str | os.PathLike)
    if not (from_file or isinstance(source, nir.NIRGraph)):  # a list or None ended in "has no attribute 'metadata'"
        raise ConfigError(f"from_nir takes a NIR file path or a nir.NIRGraph, got {shown_value(source)}")
    graph = read_nir(source) if from_file else source
    where = os.fspath(source) if from_file else "NIR import"
    meta = _plain(graph.metadata)
    check_not_ttfs(meta, where)
    graph = inline_subgraphs(nir, graph)
    check_nodes(graph, where)
    graph = shaped_graph(nir, graph, check_shapes(nir, graph, where))  # [N, 1] / [C*H*W] constants as [N] / [C, H, W]
    step = _step(dt, graph, meta, where)
    graph, recurrent = _fold_recurrences(nir, graph)
    graph, delays = fold_delays(nir, graph, step, where)
    order = _chain(graph)
    if order is None:
        body, input_name = _graph_body(nir, graph, step, recurrent, delays)
    else:
        mods = [m for name in order for m in _node_modules(nir, graph, name, step, recurrent, delays)]
        body, input_name = nn.Sequential(*mods), order[0]
    shape = tuple(int(s) for s in np.asarray(graph.nodes[input_name].input_type["input"]).ravel())
    return NirNetwork(body, {**readout_decode(nir, graph, meta), "dt": step}, shape)
