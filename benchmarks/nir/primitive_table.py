"""Which NIR primitives each tool (and deepspike) imports and exports, found by running code.

Import (run): for every NIR primitive, a one-node graph ``Input -> node -> Output`` is loaded by the tool's
importer (``deepspike.deploy.peers``) and run for 3 steps on a sample input; "yes" when that works and the
output has the node's output shape, "dropped" when it runs but the output has another shape (the node was
left out), "no-op" when the output equals the input (left out, or read as doing nothing), else
"no". deepspike: ``from_nir`` (rate-coded networks) and ``GraphSimulator`` (any feed-forward graph).
Export: deepspike's by running its exporters (``to_nir`` on the conformance families with every readout,
``to_nir_ttfs`` on a conv TTFS net) and collecting the node types written; a peer's by scanning its exporter's
source for the node types it constructs (``nir.X(``), since building every layer of every tool is not done here.

    make .nir-venv/.ok && OMP_NUM_THREADS=1 .nir-venv/bin/python benchmarks/nir/primitive_table.py
writes benchmarks/results/nir/primitive_table.md and primitive_table.json (atomically); the JSON names the tools of
``deepspike.deploy.peers.TOOLS`` not installed here (``missing``), which have no column.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepspike.coding.ttfs_input import TTFSInput
from deepspike.core.atomic import strict_json
from deepspike.deploy import GraphSimulator, from_nir, to_nir, to_nir_ttfs
from deepspike.deploy.families import FAMILIES, build, input_shape
from deepspike.deploy.peers import TOOLS, installed, not_installed, version
from deepspike.layers.readout import MembraneReadout
from deepspike.methods.ttfs_network import TTFSNetwork
from deepspike.ttfs.layers import TTFSAvgPool2d, TTFSConv2d, TTFSLinear, TTFSMaxPool2d

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cli_checks import write_result  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "results" / "nir"
PRIMITIVES = ["Affine", "Linear", "Conv1d", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Scale", "Threshold",
              "Delay", "I", "LI", "IF", "LIF", "CubaLI", "CubaLIF"]
EXPORTERS = {"snntorch": ["snntorch.export_nir"], "norse": ["norse.torch.utils.export_nir"],
             "sinabs": ["sinabs.nir"], "rockpool": ["rockpool.nn.modules.torch.nir"],
             "spikingjelly": ["spikingjelly.activation_based.nir_exchange.to_nir"], "spyx": ["spyx.nir"]}


def _node(nir, name: str):
    """``(node, input_shape, output_shape)`` of a small instance of primitive ``name``."""
    f = np.float32
    v, ones = (6,), np.ones(6, dtype=f)
    neuron = dict(v_threshold=ones, v_reset=0 * ones)
    specs = {
        "Affine": (lambda: nir.Affine(weight=np.full((4, 6), 0.5, f), bias=np.ones(4, f)), v, (4,)),
        "Linear": (lambda: nir.Linear(weight=np.full((4, 6), 0.5, f)), v, (4,)),
        "Conv1d": (lambda: nir.Conv1d(input_shape=10, weight=np.ones((3, 2, 3), f), stride=1, padding=1, dilation=1,
                                      groups=1, bias=np.zeros(3, f)), (2, 10), (3, 10)),
        "Conv2d": (lambda: nir.Conv2d(input_shape=(6, 6), weight=np.ones((3, 2, 3, 3), f), stride=1, padding=1,
                                      dilation=1, groups=1, bias=np.zeros(3, f)), (2, 6, 6), (3, 6, 6)),
        "AvgPool2d": (lambda: nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                            padding=np.array([0, 0])), (2, 6, 6), (2, 3, 3)),
        "SumPool2d": (lambda: nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                            padding=np.array([0, 0])), (2, 6, 6), (2, 3, 3)),
        "Flatten": (lambda: nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0, end_dim=-1),
                    (2, 3, 3), (18,)),
        "Scale": (lambda: nir.Scale(scale=np.full(6, 2.0, f)), v, v),
        "Threshold": (lambda: nir.Threshold(threshold=0.5 * ones), v, v),
        "Delay": (lambda: nir.Delay(delay=np.full(6, 1e-4, f)), v, v),
        "I": (lambda: nir.I(r=ones), v, v),
        "LI": (lambda: nir.LI(tau=ones * 1e-3, r=ones, v_leak=0 * ones), v, v),
        "IF": (lambda: nir.IF(r=ones, **neuron), v, v),
        "LIF": (lambda: nir.LIF(tau=ones * 1e-3, r=ones, v_leak=0 * ones, **neuron), v, v),
        "CubaLI": (lambda: nir.CubaLI(tau_syn=ones * 1e-3, tau_mem=ones * 2e-3, r=ones, v_leak=0 * ones,
                                      w_in=ones), v, v),
        "CubaLIF": (lambda: nir.CubaLIF(tau_syn=ones * 1e-3, tau_mem=ones * 2e-3, r=ones, v_leak=0 * ones,
                                        w_in=ones, **neuron), v, v),
    }
    make, shape_in, shape_out = specs[name]
    return make(), shape_in, shape_out


def _graph(nir, node, shape_in, shape_out):
    nodes = {"input": nir.Input(input_type={"input": np.array(shape_in)}), "node": node,
             "output": nir.Output(output_type={"output": np.array(shape_out)})}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "node"), ("node", "output")], type_check=False)


def _try_import(load, nir, name: str) -> str:
    node, shape_in, shape_out = _node(nir, name)
    x = torch.rand(3, 1, *shape_in)
    try:
        out = load(_graph(nir, node, shape_in, shape_out), x)
    except Exception:  # noqa: BLE001 - the tool refusing the node is the answer
        return "no"
    out = out[0] if isinstance(out, tuple) else out
    if shape_in == shape_out and out.numel() == x.numel() and torch.equal(out.reshape(x.shape).float(), x):
        return "no-op"  # runs, but the output is the input: the node was left out or read as doing nothing
    return "yes" if tuple(out.shape[2:]) == shape_out else "dropped"


def import_table(nir) -> dict[str, dict[str, str]]:
    loaders = {t: (lambda g, x, t=t: TOOLS[t].load(g, 1e-4, x.shape[0], x.shape[1])(x)) for t in installed()}
    loaders["deepspike from_nir"] = lambda g, x: from_nir(g)(x)
    loaders["deepspike GraphSimulator"] = lambda g, x: GraphSimulator(g, 1e-4).run({"input": x.double()})["output"]
    return {tool: {p: _try_import(load, nir, p) for p in PRIMITIVES} for tool, load in loaders.items()}


def our_exports(nir) -> set[str]:
    """Node types deepspike writes, by running ``to_nir`` / ``to_nir_ttfs`` on nets of every kind."""

    graphs = []
    for fam in FAMILIES:
        for neuron in ("IF", "LIF"):
            model = build(fam, neuron)
            graphs.append(to_nir(model, input_shape(fam), round_delays=True))  # delayed: Delay -> Linear branches
            for decay in (1.0, 0.5):  # membrane readouts: I and LI
                model.readout = MembraneReadout(decay=decay)
                graphs.append(to_nir(model, input_shape(fam), round_delays=True))
    lin = build("dense", "LIF")
    lin.body[0].module = nn.Linear(64, 32, bias=False)
    graphs.append(to_nir(lin, (64,)))
    body = nn.Sequential(TTFSConv2d(1, 3, 3, padding=1), TTFSMaxPool2d(2), TTFSConv2d(3, 4, 3), TTFSAvgPool2d(2),
                         nn.Flatten(), TTFSLinear(4, 3))
    graphs.append(to_nir_ttfs(TTFSNetwork(TTFSInput(), body.double()).eval(), (1, 8, 8)))
    return {type(n).__name__ for g in graphs for n in g.nodes.values()}


def peer_exports(tool: str) -> set[str]:
    """Node types a tool's exporter source constructs (``nir.X(``)."""
    names: set[str] = set()
    for mod in EXPORTERS[tool]:
        names |= set(re.findall(r"nir\.([A-Z][A-Za-z0-9]*)\(", inspect.getsource(importlib.import_module(mod))))
    return names & set(PRIMITIVES)


def main() -> None:
    import nir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    imports = import_table(nir)
    exports = {"deepspike": sorted(our_exports(nir) & set(PRIMITIVES))}
    exports.update({t: sorted(peer_exports(t)) for t in installed()})
    tools = ["deepspike", *installed()]
    head = ["primitive", "deepspike export", "deepspike import (from_nir / GraphSimulator)",
            *[f"{t} {version(t)} export / import" for t in installed()]]
    rows = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for p in PRIMITIVES:
        cells = [p, "yes" if p in exports["deepspike"] else "no",
                 f"{imports['deepspike from_nir'][p]} / {imports['deepspike GraphSimulator'][p]}"]
        cells += [f"{'yes' if p in exports[t] else 'no'} / {imports[t][p]}" for t in installed()]
        rows.append("| " + " | ".join(cells) + " |")
    counts = {t: (len(exports[t]), sum(v == "yes" for v in imports.get(t, {}).values())) for t in installed()}
    ours_import = sum("yes" in (imports["deepspike from_nir"][p], imports["deepspike GraphSimulator"][p])
                      for p in PRIMITIVES)
    counts["deepspike"] = (len(exports["deepspike"]), ours_import)
    rows.append("| **count (export, import)** | " + " | ".join(
        [str(counts["deepspike"][0]), str(counts["deepspike"][1])] + [f"{counts[t][0]}, {counts[t][1]}"
                                                                       for t in installed()]) + " |")
    saved = {"import": imports, "export": exports, "counts": counts, "tools": tools, "missing": not_installed(tools)}
    write_result(parser, OUT / "primitive_table.json", strict_json(saved, indent=1) + "\n")
    write_result(parser, OUT / "primitive_table.md", "\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
