"""Do a NIR graph's nodes fit together? (``check_shapes``): the shape each node gives, walked from the Input.

The walk starts at the Input node's shape and computes, node by node in topological order, the per-sample
shape that deepspike's importer (:mod:`nir_import`) produces, checking that each node takes what the nodes
before it give: a Linear/Affine weight ``[out, in]`` takes ``in`` features, a Conv2d takes ``[C, H, W]`` with
``C`` its weight's input channels and a kernel that fits, a pool's window fits, a Flatten's dims exist, a Scale
broadcasts, a neuron layer (or a Delay) has one parameter or one per value, a node fed by several sums shapes
that broadcast, and the Output declares as many values as reach it; every edge joins two nodes of the graph, every
node but the Input is fed by an edge, no edge enters an Input node and none leaves an Output node, and every node
that feeds none is an Output node (NIR's graph outputs are its Output nodes; the graph has at least one). A
feedback edge (one that closes a cycle, ``graph_order.feedback_edges``) is left out of the walk, then its source's
shape must equal what its target receives (a recurrent layer feeds back one value per neuron). Node types the
importer does not map give an unknown shape, and nothing after them is checked (the importer refuses them by name).
Field-level soundness (ranks, NaN) is :mod:`nir_fields`' job and runs first.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from deepspike.core.errors import DataCorruptError
from deepspike.deploy.graph_order import feedback_edges, predecessors, topological_order
from deepspike.deploy.nir_fields import node_padding, pair, shown, whole_numbers

Shape = tuple[int, ...]
NEURONS = ("IF", "LIF", "CubaLIF", "LI", "I")
NEURON_FIELDS = ("r", "tau", "tau_syn", "tau_mem", "w_in", "v_threshold", "v_leak", "v_reset")


def _dims(shape: Shape) -> str:
    return f"[{', '.join(map(str, shape))}]"


def _fail(where: str, name: str, what: str) -> DataCorruptError:
    return DataCorruptError(f"{where}: node {name!r}: {what}")


def _input_shape(where: str, name: str, node) -> Shape:
    """The Input node's shape: whole numbers of at least 1."""
    raw = (node.input_type or {}).get("input")
    sizes = whole_numbers(raw) if np.ndim(raw) <= 1 else None
    if sizes is None or any(s < 1 for s in sizes):
        raise _fail(where, name, f"shape {shown(raw)} is not a list of sizes of at least 1")
    return sizes


def _joined(where: str, name: str, preds: list[str], shapes: dict[str, Shape | None]) -> Shape | None:
    """The shape a node receives: its predecessor's, or the broadcast sum of several (None when unknown)."""
    given = [shapes.get(p) for p in preds]
    if any(s is None for s in given):
        return None
    try:
        if len({len(s) for s in given}) > 1:
            raise ValueError
        return tuple(int(s) for s in np.broadcast_shapes(*given))
    except ValueError:
        sums = " and ".join(f"{_dims(s)} from {p!r}" for p, s in zip(preds, given))
        raise _fail(where, name, f"its inputs {sums} cannot be summed") from None


def _linear(where: str, name: str, node, given: Shape, src: str) -> Shape:
    out, feat = np.shape(node.weight)
    if not given or given[-1] != feat:
        what = f"{given[-1]} features" if len(given) == 1 else f"{_dims(given)} values"
        raise _fail(where, name, f"weight [{out}, {feat}] does not take the {what} {src} gives")
    return (*given[:-1], out)


def _window(where: str, name: str, given: Shape, src: str, kind: str, channels: int | None,
            kernel: tuple[int, int], stride, padding, dilation=(1, 1)) -> tuple[int, int]:
    """The output ``(H, W)`` of a 2d window (conv or pool) on ``given`` ``[C, H, W]``."""
    if len(given) != 3:
        raise _fail(where, name, f"a {kind} takes [channels, height, width], {src} gives {_dims(given)}")
    if channels is not None and given[0] != channels:
        raise _fail(where, name, f"weight takes [{channels}, H, W] inputs, {src} gives {_dims(given)}")
    size = [(given[1 + i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in (0, 1)]
    if min(size) < 1:
        raise _fail(where, name, f"the {kernel[0]}x{kernel[1]} window does not fit the {_dims(given)} input "
                                 f"{src} gives")
    return size[0], size[1]


def _conv(where: str, name: str, node, given: Shape, src: str) -> Shape | None:
    w = np.shape(node.weight)
    hw = _window(where, name, given, src, "Conv2d", w[1] * int(node.groups), (w[2], w[3]), pair(node.stride),
                 node_padding(node, where, name), pair(node.dilation))
    return (w[0], *hw)


def _flatten(where: str, name: str, node, given: Shape, src: str) -> Shape:
    start, end = int(node.start_dim), int(node.end_dim)
    lo, hi = (d if d >= 0 else len(given) + d for d in (start, end))
    if not 0 <= lo <= hi < len(given):
        raise _fail(where, name, f"start_dim {start} / end_dim {end} do not fit the {_dims(given)} values {src} "
                                 "gives")
    return (*given[:lo], math.prod(given[lo:hi + 1]), *given[hi + 1:])


def _same(where: str, name: str, node, given: Shape, src: str, keys: tuple[str, ...]) -> Shape:
    """A node that keeps its input's shape: each parameter in ``keys`` broadcasts to it (Scale) or has one
    value or one per value (neurons, which deepspike runs with one value per layer)."""
    for key in keys:
        shape = np.shape(getattr(node, key))
        fits = math.prod(shape) in (1, math.prod(given)) if key != "scale" else (
            len(shape) <= len(given) and all(a in (1, b) for a, b in zip(shape[::-1], given[::-1])))
        if not fits:
            raise _fail(where, name, f"{key} has shape {shape}, {src} gives {_dims(given)} values")
    return given


def _declared(where: str, name: str, node, given: Shape, src: str) -> Shape:
    """An Output node that declares its shape (whole numbers) declares as many values as reach it."""
    declared = whole_numbers((node.output_type or {}).get("output"))
    if declared and math.prod(declared) != math.prod(given):
        raise _fail(where, name, f"shape {list(declared)} does not hold the {_dims(given)} values {src} gives")
    return given


def _output(nir, where: str, name: str, node, given: Shape, src: str) -> Shape | None:
    """The shape node ``name`` gives when it takes ``given`` from ``src``; None for types the importer lacks."""
    if isinstance(node, nir.Affine | nir.Linear):
        return _linear(where, name, node, given, src)
    if isinstance(node, nir.Conv2d):
        return _conv(where, name, node, given, src)
    if isinstance(node, nir.AvgPool2d | nir.SumPool2d):
        hw = _window(where, name, given, src, type(node).__name__, None, pair(node.kernel_size), pair(node.stride),
                     pair(node.padding))
        return (given[0], *hw)
    if isinstance(node, nir.Flatten):
        return _flatten(where, name, node, given, src)
    if isinstance(node, nir.Scale):
        return _same(where, name, node, given, src, ("scale",))
    if isinstance(node, nir.Delay):
        return _same(where, name, node, given, src, ("delay",))
    if isinstance(node, nir.Threshold):  # GraphSimulator's and the ONNX export's, not the importer's
        return _same(where, name, node, given, src, ("threshold",))
    if type(node).__name__ in NEURONS:
        keys = [k for k in NEURON_FIELDS if getattr(node, k, None) is not None]
        return _same(where, name, node, given, src, tuple(keys))
    if isinstance(node, nir.Output):
        return _declared(where, name, node, given, src)
    return None


def _check_ends(nir, graph, where: str) -> None:
    """No edge leaves an Output node (what reaches it is the graph's output; a node after it made from_nir return
    that node's values, or fail with a KeyError), none enters an Input node (the caller feeds it), and every node
    that feeds no other is an Output node: NIR's graph outputs are its Output nodes (the nir package, type-checking,
    appends one to each such leaf); before, a chain without one imported as if its last node were the output and
    simulated to no output at all."""
    for src, dst in graph.edges:
        if isinstance(graph.nodes[src], nir.Output):
            raise _fail(where, src, f"an Output node ends the graph, but it feeds {dst!r}")
        if isinstance(graph.nodes[dst], nir.Input):
            raise _fail(where, dst, f"an Input node is fed by the caller, but {src!r} feeds it")
    sources = {src for src, _ in graph.edges}
    leaf = next((k for k, v in graph.nodes.items() if k not in sources and not isinstance(v, nir.Output)), None)
    if leaf is not None:
        raise _fail(where, leaf, "it feeds no node and is not an Output node (a graph's outputs are its Output "
                                 "nodes)")
    if not any(isinstance(v, nir.Output) for v in graph.nodes.values()):
        raise DataCorruptError(f"{where}: the graph has no Output node (a graph's outputs are its Output nodes)")


def check_shapes(nir, graph, where: str) -> dict[str, Shape | None]:
    """``DataCorruptError`` ``"<where>: node '<name>': <what does not fit>"`` at the first node (in topological
    order) that does not take the shape the nodes before it give; see the module docstring for what is checked.
    Returns the per-sample shape each node gives (None after a node type the importer does not map)."""
    missing = next(((src, dst) for src, dst in graph.edges if src not in graph.nodes or dst not in graph.nodes), None)
    if missing is not None:  # graph_order's refusal did not name the file
        raise DataCorruptError(f"{where}: edge {missing[0]!r} -> {missing[1]!r} names a missing node")
    feedback = feedback_edges(graph)
    _check_ends(nir, graph, where)
    order = topological_order(graph, skip=feedback)
    preds = predecessors(graph, skip=feedback)
    shapes: dict[str, Shape | None] = {}
    for name in order:
        node = graph.nodes[name]
        if isinstance(node, nir.Input):
            shapes[name] = _input_shape(where, name, node)
            continue
        if not preds[name]:
            back = next((src for src, dst in feedback if dst == name), None)
            raise _fail(where, name, "no edge leads to it (only Input nodes may lack one)" if back is None else
                        f"only the cycle closed by {back!r} -> {name!r} leads to it; no path from an Input node does")
        given = _joined(where, name, preds[name], shapes)
        src = f"node {preds[name][0]!r}" if len(preds[name]) == 1 else f"the sum of {preds[name]}"
        shapes[name] = None if given is None else _output(nir, where, name, node, given, src)
    for src, dst in feedback:  # a fed-back value joins what its target receives: the same shape, not a broadcast
        back, received = shapes.get(src), _joined(where, dst, preds[dst], shapes)
        if back is not None and received is not None and back != received:
            raise _fail(where, dst, f"the {_dims(back)} values fed back from {src!r} do not match the "
                                    f"{_dims(received)} it receives")
    return shapes


def _shaped_node(node, shape: tuple[int, ...] | None):
    """``node``, or a shallow copy whose per-element parameters (a neuron's, a Delay's ``delay``, a Threshold's
    ``threshold``) that hold one value per element of ``shape`` in another layout (a flat ``[C*H*W]`` for ``[C, H,
    W]`` values, ``[N, 1]`` for ``[N]``) are reshaped to ``shape``: ``nir_shapes`` accepts any layout of
    ``prod(shape)`` values, which broadcast against the ``[B, *shape]`` state to a RuntimeError."""
    if shape is None or type(node).__name__ not in (*NEURONS, "Delay", "Threshold"):
        return node
    fields = {k: getattr(node, k, None) for k in (*NEURON_FIELDS, "delay", "threshold")}
    fix = {k: np.reshape(v, shape) for k, v in fields.items()
           if v is not None and np.size(v) == math.prod(shape) > 1 and np.shape(v) != tuple(shape)}
    if not fix:
        return node
    node = copy.copy(node)
    for k, v in fix.items():
        setattr(node, k, v)
    return node


def shaped_graph(nir, graph, shapes: dict[str, Shape | None]):
    """``graph`` with every node's per-element parameters laid out as its shape (``check_shapes``' ``shapes``;
    ``_shaped_node``), so that GraphSimulator and ``from_nir`` read a ``[C*H*W]`` or ``[N, 1]`` layout as the same
    neurons."""
    return nir.NIRGraph(nodes={k: _shaped_node(v, shapes.get(k)) for k, v in graph.nodes.items()}, edges=graph.edges,
                        metadata=graph.metadata, type_check=False)
