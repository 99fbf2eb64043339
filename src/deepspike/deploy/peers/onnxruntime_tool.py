"""onnxruntime running deepspike's ONNX export of the graph (``deploy.onnx_export.nir_to_onnx``).

Not a NIR importer of its own: the graph is written as ONNX by deepspike (its rate-coded reading: forward Euler,
currents held over each step, the ``dt`` given) and the runtime every ONNX deployment uses runs it, so the check
covers the whole way from a trained net to a file any ONNX runtime executes.
"""

from __future__ import annotations

from deepspike.deploy.onnx_export import nir_to_onnx
from deepspike.deploy.onnx_run import onnx_session, run_onnx

NAME, MODULE, DIST = "onnxruntime", "onnxruntime", "onnxruntime"


def load(graph, dt: float, steps: int, batch: int):
    """The float32 sequence model (a ``Scan`` over the steps) in an onnxruntime session on the CPU."""
    session = onnx_session(nir_to_onnx(graph, dt=dt, form="sequence"))
    return lambda x: run_onnx(session, x)
