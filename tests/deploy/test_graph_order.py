"""``topological_order``: every edge forward, nodes by level then by their place in the graph, in time linear in
the graph's size."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from deepspike.core.errors import ConfigError
from deepspike.deploy.graph_order import topological_order


def _graph(names: list[str], edges: list[tuple[str, str]]) -> SimpleNamespace:
    """A stand-in for a ``nir.NIRGraph``: what ``topological_order`` reads (node names, edges)."""
    return SimpleNamespace(nodes={name: object() for name in names}, edges=edges)


def test_nodes_come_by_level_then_by_their_place_in_the_graph():
    """By hand: a (level 0) -> c, d (level 1); c -> b (level 2); b, d -> e (level 3); f has no edge (level 0)."""
    graph = _graph(["e", "b", "d", "c", "a", "f"], [("a", "c"), ("a", "d"), ("c", "b"), ("b", "e"), ("d", "e")])
    assert topological_order(graph) == ["a", "f", "d", "c", "b", "e"]


def test_a_cycle_is_refused_unless_its_edge_is_skipped():
    graph = _graph(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "b")])
    with pytest.raises(ConfigError, match="NIR graph: it has a cycle"):
        topological_order(graph)
    assert topological_order(graph, skip=[("c", "b")]) == ["a", "b", "c"]


def test_a_long_chain_is_ordered_in_linear_time():
    """20,000 chained nodes: the ready nodes taken in rounds rescanned every waiting node each round (4,000 nodes
    took 8 s, 20,000 would take minutes: a hostile NIR file of many small nodes stalled the reader)."""
    names = [f"n{i}" for i in range(20_000)]
    graph = _graph(names[::-1], list(zip(names, names[1:])))  # listed last to first: the worst case for rounds
    start = time.process_time()  # CPU time: a busy machine must not fail it
    order = topological_order(graph)
    assert order == names and time.process_time() - start < 10.0
