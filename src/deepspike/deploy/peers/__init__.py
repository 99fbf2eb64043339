"""Third-party NIR tools as consumers and producers of graphs (the conformance checks, ``export --check``).

Each tool is one module with ``NAME``, ``MODULE`` (the package to import), ``load(graph, dt, steps, batch)``
-> a callable ``run(x [T, B, *input_shape]) -> [T, B, *output_shape]`` (the tool's own simulation of the
graph, output spikes per step) and, where the tool writes NIR, ``produce(family)`` -> ``(graph, run)``: a net
built with the tool's own layers, exported by the tool, and the tool's own forward pass. The tools are never
dependencies of deepspike: :func:`installed` lists those importable here (``make test-nir`` installs all).
``onnxruntime`` is the one consumer that is not a NIR tool: it runs deepspike's own ONNX export of the graph
"""

from __future__ import annotations

import importlib.util

from deepspike.deploy.peers import (
    norse_tool,
    onnxruntime_tool,
    rockpool_tool,
    sinabs_tool,
    snntorch_tool,
    spikingjelly_tool,
    spyx_tool,
)

TOOLS = {m.NAME: m for m in (snntorch_tool, norse_tool, sinabs_tool, rockpool_tool, spikingjelly_tool, spyx_tool,
                             onnxruntime_tool)}


def installed() -> list[str]:
    """Names of the tools whose package can be imported in this environment (without importing them)."""
    return [name for name, tool in TOOLS.items() if importlib.util.find_spec(tool.MODULE) is not None]


def not_installed(present: list[str]) -> list[str]:
    """The tools of ``TOOLS`` (in its order) that are not in ``present`` (``installed()``): those a report has no
    rows for, named so that 'not tested' reads apart from 'left out'."""
    return [name for name in TOOLS if name not in present]


def version(name: str) -> str:
    """The installed version of tool ``name`` (its distribution's metadata), or ``"unknown"`` for a package that
    imports without any (a source checkout on PYTHONPATH: ``export --check`` and the conformance matrix stopped on
    ``PackageNotFoundError`` with a traceback)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(TOOLS[name].DIST)
    except PackageNotFoundError:
        return "unknown"


__all__ = ["TOOLS", "installed", "version"]
