"""``deepspike export MODEL.nir --onnx PATH``: any NIR file (deepspike's or another tool's) as an ONNX model.

``export_nir_file_onnx`` reads the file as a possibly hostile one (``nir_read.read_nir``), writes it with
:func:`~deepspike.deploy.onnx_export.nir_to_onnx` under one of two readings (``READINGS``) and, where onnxruntime is
installed, runs the written file on ``VERIFY_STEPS`` steps of sample input spikes (two samples) against
:class:`~deepspike.deploy.nir_sim.GraphSimulator` reading the same graph the same way (float64):

* ``"rate"`` (default): forward Euler, each input entry a current held over one step (``GraphSimulator.rate_coded``,
  ``from_nir``'s reading): the discrete-time nets of deepspike, snnTorch and Norse;
* ``"exact"``: each entry an area delivered at the step, the neuron equations solved exactly over ``dt`` (NIR's
  continuous-time reading).

``dt`` (seconds per step) defaults to the file's metadata, else 1e-4 s, as ``from_nir`` reads it.
"""

from __future__ import annotations

import importlib.util
import math
import os

import torch

from deepspike.core.errors import ConfigError
from deepspike.deploy.conformance import sample_spikes
from deepspike.deploy.nir_import import _plain, _step, check_not_ttfs
from deepspike.deploy.nir_read import read_nir
from deepspike.deploy.nir_sim import GraphSimulator
from deepspike.deploy.onnx_export import nir_to_onnx, write_onnx
from deepspike.deploy.onnx_files import VERIFY_STEPS, agreement, check_replaces_only_an_onnx_file, model_summary
from deepspike.deploy.onnx_run import onnx_session, run_onnx

READINGS = {"rate": ("euler", "currents"), "exact": ("exact", "areas")}
MAX_VERIFY_BYTES = 2**32
"""The most memory the check may take: GraphSimulator's float64 values of every node over the ``VERIFY_STEPS``
steps of its two samples (a file of a few KB whose Input declares [1, 40000, 40000] asked for 1.28 TB, a
RuntimeError traceback after the ONNX file was written); a graph past it is written unchecked, and says so."""


def export_nir_file_onnx(nir_path: str | os.PathLike, path: str | os.PathLike, form: str = "step",
                         dt: float | None = None, reading: str = "rate") -> dict:
    """Write the graph of NIR file ``nir_path`` as an ONNX model at ``path`` (module docstring); returns the
    summary of ``export_run_onnx`` plus the reading and, with onnxruntime, ``verified`` against GraphSimulator."""
    if reading not in READINGS:
        raise ConfigError(f"--onnx-reading must be one of {', '.join(READINGS)}, got {reading!r}")
    target = check_replaces_only_an_onnx_file(path)
    graph = read_nir(nir_path)
    check_not_ttfs(_plain(graph.metadata), os.fspath(nir_path), "--onnx")  # fire-once neurons fed bias spikes
    integration, signals = READINGS[reading]
    dt = _step(dt, graph, _plain(graph.metadata), "ONNX export")  # the file's, else 1e-4 s
    model = nir_to_onnx(graph, dt=dt, integration=integration, signals=signals, form=form)
    write_onnx(model, target)
    summary = {**model_summary(model, target, form), "reading": reading}
    if importlib.util.find_spec("onnxruntime") is not None:
        summary["verified"] = _verify(graph, target, dt, integration, signals)
    return summary


def _verify(graph, path, dt: float, integration: str, signals: str) -> dict:
    """The written file in onnxruntime against GraphSimulator on sample spikes, for a graph with one Input node
    (its first Output compared: spikes entry by entry, a non-spiking I/LI output by its largest difference, as
    :func:`spiking_output` reads the graph)."""
    sim = GraphSimulator(graph, dt, integration, signals)
    if len(sim.inputs) > 1:
        return {"skipped": f"the graph has {len(sim.inputs)} Input nodes; the check feeds one"}
    needed = 8 * 2 * VERIFY_STEPS * sum(math.prod(shape) for shape in sim.shapes.values() if shape is not None)
    if needed > MAX_VERIFY_BYTES:
        return {"skipped": f"the check would take {needed / 2**30:,.1f} GiB (its nodes' values over {VERIFY_STEPS} "
                           f"steps of two samples), more than {MAX_VERIFY_BYTES / 2**30:g} GiB"}
    x = sample_spikes(tuple(sim.shapes[sim.inputs[0]]), VERIFY_STEPS)
    ours = sim.run({sim.inputs[0]: x.to(torch.float64)})[sim.outputs[0]].float()
    return {"steps": VERIFY_STEPS, **agreement(ours, run_onnx(onnx_session(path), x), spiking_output(sim))}


def spiking_output(sim: GraphSimulator) -> bool:
    """Whether the simulator's first Output carries spikes, read from the graph: every node feeding it (through
    ``Delay`` lines) an IF, LIF, CubaLIF or Threshold node. An LI / I trace or a weighted sum is a value, compared
    by its largest difference, even where it happens to be all 0 and 1 (that was read as spikes and compared by
    exact equality)."""
    nir = sim.nir
    spiking, delay = nir.IF | nir.LIF | nir.CubaLIF | nir.Threshold, nir.Delay
    fed, seen = [src for src, dst in sim.graph.edges if dst == sim.outputs[0]], set()
    while fed:
        name = fed.pop()
        if name in seen:
            continue
        node = sim.graph.nodes[name]
        if not isinstance(node, spiking | delay):
            return False
        seen.add(name)
        fed += [src for src, dst in sim.graph.edges if dst == name] if isinstance(node, delay) else []
    return bool(seen)
