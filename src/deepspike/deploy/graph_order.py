"""The order in which a NIR graph's nodes can run: every edge forward (``topological_order``), the edges that close
cycles read as one step of delay (``feedback_edges``).

A recurrent layer in NIR is a cycle, e.g. ``lif -> w_rec -> lif`` (deepspike's ``to_nir``, snnTorch's ``RLeaky``).
In discrete time such an edge carries the value its source had one step before: ``I_t = W x_t + V s_{t-1}``.
``feedback_edges`` finds the edges that close cycles by a depth-first walk from the Input nodes (then from any node
not reached), visiting successors in edge order: an edge into a node still on the walk's stack closes a cycle. Every
other edge then goes forward in ``topological_order(graph, skip=feedback)``.
"""

from __future__ import annotations

from collections.abc import Collection

from deepspike.core.errors import ConfigError

Edge = tuple[str, str]


def _successors(graph) -> dict[str, list[str]]:
    """``{node: [successors in edge order]}``; ``ConfigError`` for an edge that names a missing node."""
    succs: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for src, dst in graph.edges:
        if src not in succs or dst not in succs:
            raise ConfigError(f"NIR graph: edge {src!r} -> {dst!r} names a missing node")
        succs[src].append(dst)
    return succs


def feedback_edges(graph) -> list[Edge]:
    """The edges that close a cycle (module docstring), in the order the walk meets them; ``[]`` for a DAG."""
    succs = _successors(graph)
    inputs = [k for k, v in graph.nodes.items() if type(v).__name__ == "Input"]
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    found: list[Edge] = []
    for root in [*inputs, *graph.nodes]:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succs[root]))]
        while stack:
            node, rest = stack[-1]
            nxt = next(rest, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                found.append((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succs[nxt])))
    return found


def predecessors(graph, skip: Collection[Edge] = ()) -> dict[str, list[str]]:
    """``{node: [the sources of its edges, in edge order]}``, the edges in ``skip`` (e.g. ``feedback_edges``) left
    out; ``ConfigError`` for an edge that names a missing node."""
    _successors(graph)
    skipped = set(skip)
    preds: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for src, dst in graph.edges:
        if (src, dst) not in skipped:
            preds[dst].append(src)
    return preds


def topological_order(graph, skip: Collection[Edge] = ()) -> list[str]:
    """Node names so that every edge but those in ``skip`` goes forward; ``ConfigError`` on a cycle left (a graph
    with feedback: pass ``skip=feedback_edges(graph)``) or an unknown node."""
    preds = predecessors(graph, skip)
    order: list[str] = []
    done: set[str] = set()
    pending = list(graph.nodes)
    while pending:
        ready = [n for n in pending if all(p in done for p in preds[n])]
        if not ready:
            raise ConfigError("NIR graph: it has a cycle, which this reader does not take (from_nir and "
                              "GraphSimulator read recurrent graphs)")
        order += ready
        done.update(ready)
        pending = [n for n in pending if n not in done]
    return order
