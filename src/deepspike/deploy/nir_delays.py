"""Learnable synaptic delays (``layers.delays.DelayedLinear``) in NIR: written as delay branches, simulated and read
back.

NIR's ``Delay`` node delays each element of its input, ``y(t) = x(t - tau)`` (one ``tau`` per element, seconds), and
a node sums the edges that enter it. A delayed layer whose delays are whole steps (``round_delays_``)::

    y[t, b, m] = bias[m] + sum_n w[m, n] x[t - d[m, n], b, n]          (x before step 0 is 0)

is exactly the sum over the distinct delays ``k`` of ``d [M, N]`` of one branch each (``delay_branches``)::

    source -> Delay(tau = k dt for every input element [N]) -> Linear(W * (d == k))   -> next node
    source ----------------------------------------------------> Linear(W * (d == 0))   -> next node   (k = 0)

the smallest delay's branch an ``Affine`` that carries the bias (a constant current: it acts from step 0 whatever
its branch's delay). ``DelayLine`` simulates a ``Delay`` node in discrete time (a buffer of the last ``K`` steps
per element); ``delay_steps`` reads a node's delays as whole steps of ``dt``, refusing others in one line;
``fold_delays`` finds the branch pattern in a graph for ``from_nir`` and gives the delayed layer back.
"""

from __future__ import annotations

import numpy as np
import torch

from deepspike.core.errors import ConfigError
from deepspike.deploy.model_walk import to_numpy
from deepspike.layers.delays import MAX_DELAY, DelayedLinear

STEP_TOLERANCE = 1e-3
"""How far (in steps) ``tau / dt`` may be from a whole number: float32 ``k dt`` is ``k`` steps to ~1e-7 relative."""


def delay_branches(nir, layer: DelayedLinear, dt: float) -> list[tuple[object | None, object]]:
    """``[(Delay node or None, Linear/Affine node)]``, one branch per distinct rounded delay ``k`` of ``layer``
    (ascending; module docstring): the Delay holds ``k dt`` seconds for each of the ``N`` inputs (none for ``k =
    0``), the weight node ``W * (d == k)`` ``[M, N]``; the first branch is an ``Affine`` with the bias, if any.
    Each node's metadata says ``delay_steps: k``, ``dt`` and ``delays_rounded: True``."""
    w, d = to_numpy(layer.weight), layer.discrete_delays().cpu().numpy()
    bias = to_numpy(layer.bias)
    branches = []
    for i, k in enumerate(int(k) for k in np.unique(d)):
        meta = {"delay_steps": k, "dt": float(dt), "delays_rounded": True}
        weight = np.where(d == k, w, 0.0).astype(np.float32)
        node = (nir.Affine(weight=weight, bias=bias, metadata=dict(meta)) if i == 0 and bias is not None
                else nir.Linear(weight=weight, metadata=dict(meta)))
        delay = (nir.Delay(delay=np.full(layer.in_features, k * dt, dtype=np.float32), metadata=dict(meta))
                 if k else None)
        branches.append((delay, node))
    return branches


def delay_steps(delay, dt: float, where: str) -> np.ndarray:
    """A ``Delay`` node's ``delay`` (seconds, any shape) as whole steps of ``dt`` (int64, same shape); a one-line
    ``ConfigError`` (``where``: the reader and node) for a negative or non-finite delay, one of ``MAX_DELAY`` steps or
    more, or one that is not a whole multiple of ``dt`` (within :data:`STEP_TOLERANCE` steps)."""
    steps = np.asarray(delay, dtype=np.float64) / dt
    if not np.isfinite(steps).all() or (steps < -STEP_TOLERANCE).any():
        raise ConfigError(f"{where}: delays must be finite and >= 0 seconds")
    if steps.size and steps.max() >= MAX_DELAY - 0.5:  # a buffer of that many steps per value would be allocated
        raise ConfigError(f"{where}: a delay of {float(steps.max()):.4g} steps of dt = {dt:g} s; this reader runs "
                          f"delays of at most {MAX_DELAY - 1} steps")
    whole = np.round(steps)
    if (np.abs(steps - whole) > STEP_TOLERANCE).any():
        bad = float(np.asarray(delay, dtype=np.float64).ravel()[np.argmax(np.abs(steps - whole).ravel())])
        raise ConfigError(f"{where}: a delay of {bad:g} s is not a whole number of steps of dt = {dt:g} s; this "
                          "reader runs delays of whole steps only")
    return np.maximum(whole, 0).astype(np.int64)


class DelayLine:
    """A ``Delay`` node in discrete time: ``y[t, b, e] = x[t - k_e, b, e]`` with ``k [*shape]`` whole steps (zeros
    before the first step); keeps the last ``K = max k`` steps between ``run`` calls (chunks)."""

    def __init__(self, steps: np.ndarray) -> None:
        self.steps = torch.as_tensor(steps)
        self.depth = int(self.steps.max()) if self.steps.numel() else 0
        self.history: torch.Tensor | None = None  # [K, B, *shape]: the last K inputs

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """``x [Tc, B, *shape]`` -> the delayed ``[Tc, B, *shape]`` (continuing the buffer)."""
        if self.depth == 0:
            return x
        if self.history is None:
            self.history = x.new_zeros(self.depth, *x.shape[1:])
        full = torch.cat([self.history, x])  # [K + Tc, B, *shape]
        t = torch.arange(x.shape[0]).reshape(-1, *[1] * (x.dim() - 1))
        index = (self.depth + t - torch.broadcast_to(self.steps, x.shape[2:])).expand(x.shape)
        self.history = full[-self.depth:]
        return full.gather(0, index)


def _branch(nir, graph, name: str, ins: dict, outs: dict) -> tuple[str, str, str, int | None] | None:
    """``(source, weight node, target, Delay node or None)`` when ``name`` is the weight node of a delay branch
    (fed by one edge, from a Delay fed by one edge, or from the source itself; feeding one node), else None."""
    if not isinstance(graph.nodes[name], nir.Linear | nir.Affine) or len(ins[name]) != 1 or len(outs[name]) != 1:
        return None
    before = ins[name][0]
    if isinstance(graph.nodes[before], nir.Delay):
        if len(ins[before]) != 1 or len(outs[before]) != 1:
            return None
        return ins[before][0], name, outs[name][0], before
    return before, name, outs[name][0], None


def fold_delays(nir, graph, dt: float, where: str):
    """``(graph with each delayed layer as one Linear/Affine node, {that node: delays [M, N] in steps})``.

    A delayed layer is the branches of ``delay_branches``: ``Linear``/``Affine`` nodes that share their source and
    target, at least one behind a ``Delay`` node (uniform over its inputs, or one per input; ``delay_steps``). Their
    weights are summed into the node named after the first branch, each synapse with its branch's delay; a synapse
    with weight on two delays, a ``Delay`` node outside this pattern or delays beyond ``MAX_DELAY - 1`` steps are
    one-line ``ConfigError``s."""
    ins: dict[str, list[str]] = {k: [] for k in graph.nodes}  # one pass over the edges (not one per node)
    outs: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for src, dst in graph.edges:
        outs[src].append(dst)
        ins[dst].append(src)
    branches = [b for b in (_branch(nir, graph, k, ins, outs) for k in graph.nodes) if b is not None]
    layers: dict[tuple[str, str], list] = {}
    for source, name, target, delay in branches:
        layers.setdefault((source, target), []).append((name, delay))
    layers = {key: group for key, group in layers.items() if any(delay for _, delay in group)}
    used = {delay for group in layers.values() for _, delay in group if delay}
    stray = [k for k, v in graph.nodes.items() if isinstance(v, nir.Delay) and k not in used]
    if stray:
        raise ConfigError(f"{where}: Delay node {stray[0]!r} is not a branch of a delayed layer (source -> Delay -> "
                          "Linear/Affine -> target, beside the layer's other branches); from_nir reads delays "
                          "only there (GraphSimulator runs any Delay node)")
    nodes, edges, delays = dict(graph.nodes), list(graph.edges), {}
    for (source, target), group in layers.items():
        name, node, steps = _merge(nir, graph, group, dt, where)
        gone = {n for pair in group for n in pair if n}
        nodes = {k: v for k, v in nodes.items() if k not in gone or k == name}
        nodes[name] = node
        edges = [e for e in edges if e[0] not in gone and e[1] not in gone] + [(source, name), (name, target)]
        delays[name] = steps
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph.metadata, type_check=False), delays


def _merge(nir, graph, group: list, dt: float, where: str):
    """``(name, summed Linear/Affine node, delays [M, N])`` of one delayed layer's branches ``[(weight, Delay)]``."""
    weight, steps, taken, bias = None, None, None, None
    for name, delay in group:
        node = graph.nodes[name]
        w = np.asarray(node.weight, dtype=np.float32)
        k = np.zeros(w.shape[1], np.int64) if delay is None else delay_steps(graph.nodes[delay].delay, dt,
                                                                             f"{where}: node {delay!r}")
        k = np.broadcast_to(k.reshape(-1) if k.size > 1 else k.reshape(()), w.shape)
        if weight is None:
            weight, steps, taken = np.zeros_like(w), np.zeros(w.shape, np.int64), np.zeros(w.shape, bool)
        clash = taken & (w != 0) & (steps != k)
        if clash.any():
            raise ConfigError(f"{where}: a synapse of the delayed layer at node {group[0][0]!r} has weight on two "
                              "delays; a DelayedLinear holds one delay per synapse (parallel layers into one neuron, "
                              "e.g. a residual block with a delayed shortcut, are not read back)")
        steps = np.where(w != 0, k, steps)
        weight, taken = weight + w, taken | (w != 0)
        if isinstance(node, nir.Affine):
            bias = np.asarray(node.bias, dtype=np.float32) + (0 if bias is None else bias)
    node = nir.Linear(weight=weight) if bias is None else nir.Affine(weight=weight, bias=bias)
    return group[0][0], node, steps


def delayed_layer(node, steps: np.ndarray) -> DelayedLinear:
    """The rounded ``DelayedLinear`` of a folded node (``fold_delays``): its weight, bias and delays ``steps``
    ``[M, N]`` (``round_delays_``: each synapse delivers once, ``steps`` late)."""
    w = np.asarray(node.weight, dtype=np.float32)
    bias = getattr(node, "bias", None)
    layer = DelayedLinear(w.shape[1], w.shape[0], int(steps.max()) + 1, bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(w))
        layer.position.copy_(torch.as_tensor(steps, dtype=torch.float32))
        if bias is not None:
            layer.bias.copy_(torch.as_tensor(np.asarray(bias, dtype=np.float32)))
    return layer.round_delays_().eval()
