"""The order in which a NIR graph's nodes can run: every edge forward (``topological_order``)."""

from __future__ import annotations

from deepspike.core.errors import ConfigError


def topological_order(graph) -> list[str]:
    """Node names so that every edge goes forward; ``ConfigError`` on a cycle or an unknown node."""
    preds: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for src, dst in graph.edges:
        if src not in preds or dst not in preds:
            raise ConfigError(f"NIR graph: edge {src!r} -> {dst!r} names a missing node")
        preds[dst].append(src)
    order: list[str] = []
    done: set[str] = set()
    pending = list(graph.nodes)
    while pending:
        ready = [n for n in pending if all(p in done for p in preds[n])]
        if not ready:
            raise ConfigError("NIR simulation: the graph has a cycle (recurrent graphs are not supported)")
        order += ready
        done.update(ready)
        pending = [n for n in pending if n not in done]
    return order
