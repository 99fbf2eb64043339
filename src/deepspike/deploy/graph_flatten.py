"""Nested NIR graphs made flat (``inline_subgraphs``): a node that is itself a ``NIRGraph`` replaced by its nodes.

Tools write some layers as a subgraph node: snnTorch's ``RLeaky`` and Spyx's recurrent layers are a ``NIRGraph`` of
``input -> lif <-> w_rec``, ``lif -> output``. Inlined, subgraph ``k``'s inner node ``n`` becomes ``k.n``; an edge into
``k`` (or into ``k.<its Input>``) goes to every node its inner Input feeds, an edge out of ``k`` (or out of
``k.<its Output>``) leaves from every node feeding its inner Output (and, where the inner Input feeds the inner
Output directly, from every node feeding ``k``); the inner Input and Output nodes disappear.
Subgraphs nested in subgraphs are inlined first; an inlined name ``k.n`` that already names a node of the
graph is a one-line ``ConfigError``. The graph's own metadata is kept; a subgraph's is dropped (its
nodes keep theirs).
"""

from __future__ import annotations

from deepspike.core.errors import ConfigError

Edge = tuple[str, str]


def inline_subgraphs(nir, graph):
    """``graph`` with every ``NIRGraph`` node inlined (module docstring); ``graph`` itself when it has none."""
    if not any(isinstance(node, nir.NIRGraph) for node in graph.nodes.values()):
        return graph
    nodes, edges = dict(graph.nodes), list(graph.edges)
    for key in [k for k, v in graph.nodes.items() if isinstance(v, nir.NIRGraph)]:
        nodes, edges = _inline(nir, key, inline_subgraphs(nir, nodes[key]), nodes, edges)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph.metadata, type_check=False)


def _inline(nir, key: str, sub, nodes: dict, edges: list[Edge]) -> tuple[dict, list[Edge]]:
    """``nodes`` and ``edges`` with subgraph ``key`` (flat: ``sub``) replaced by its inner nodes."""
    ins = [k for k, v in sub.nodes.items() if isinstance(v, nir.Input)]
    outs = [k for k, v in sub.nodes.items() if isinstance(v, nir.Output)]
    if len(ins) != 1 or len(outs) != 1:
        raise ConfigError(f"NIR import: subgraph {key!r} needs one Input and one Output node to be inlined, found "
                          f"{len(ins)} and {len(outs)}")
    entry = [f"{key}.{d}" for s, d in sub.edges if s == ins[0] and d != outs[0]]  # what the subgraph's input feeds
    exit_ = [f"{key}.{s}" for s, d in sub.edges if d == outs[0] and s != ins[0]]  # what feeds the subgraph's output
    inner = [(f"{key}.{s}", f"{key}.{d}") for s, d in sub.edges if s != ins[0] and d != outs[0]]
    if (ins[0], outs[0]) in sub.edges:  # the input passed straight on: what feeds the subgraph feeds its output too
        exit_ += [src for src, dst in edges if dst in (key, f"{key}.{ins[0]}")]
    outer: list[Edge] = []
    for src, dst in edges:
        sources = exit_ if src in (key, f"{key}.{outs[0]}") else [src]
        targets = entry if dst in (key, f"{key}.{ins[0]}") else [dst]
        outer += [(s, d) for s in sources for d in targets]
    kept = {k: v for k, v in nodes.items() if k != key}
    taken = sorted(set(kept) & {f"{key}.{k}" for k in sub.nodes if k not in (ins[0], outs[0])})
    if taken:  # the outer node was silently replaced by the inner one, its edges turned into a loop
        raise ConfigError(f"NIR import: subgraph {key!r}'s node {taken[0].split('.', 1)[1]!r} would be inlined as "
                          f"{taken[0]!r}, which already names a node of the graph")
    kept.update({f"{key}.{k}": v for k, v in sub.nodes.items() if k not in (ins[0], outs[0])})
    return kept, outer + inner
