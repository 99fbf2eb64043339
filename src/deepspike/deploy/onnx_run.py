"""Running an ONNX model written by :func:`~deepspike.deploy.onnx_export.nir_to_onnx` in onnxruntime.

``onnx_session(model)`` opens a model (a ``ModelProto``, its bytes or a file) on the CPU; ``run_onnx(session, x)``
runs it on ``x [T, B, *shape]`` and returns the first output ``[T, B, *out_shape]``: a "sequence" model (its
input's first axis named "steps") in one call, a "step" model one step at a time, every state starting at zeros and
each step fed the ``next.*`` states of the step before. Needs onnxruntime (``deepspike[onnx]``).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from deepspike.core.errors import ConfigError
from deepspike.core.optional import require_package

STATE_IN, STATE_OUT = "state.", "next."


def onnx_session(model):
    """An onnxruntime CPU session of ``model`` (``ModelProto``, bytes, or a path); a file that is not an ONNX
    model is a one-line ``ConfigError``."""
    ort = require_package("onnxruntime", "running ONNX models needs onnxruntime: pip install 'deepspike[onnx]'")
    source = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    if isinstance(source, str | os.PathLike):
        source = os.fspath(source)
    try:
        return ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for unreadable models
        raise ConfigError(f"onnxruntime cannot open the model: {str(e).splitlines()[0][:200]}") from None


def run_onnx(session, x: torch.Tensor) -> torch.Tensor:
    """The model's first output for ``x [T, B, *shape]`` (module docstring), as a torch tensor."""
    inputs = session.get_inputs()
    dtype = np.float64 if inputs[0].type == "tensor(double)" else np.float32
    data = x.detach().cpu().numpy().astype(dtype)
    if inputs[0].shape[0] == "steps":  # a sequence model
        return torch.from_numpy(session.run(None, {inputs[0].name: data})[0])
    batch = data.shape[1]
    feeds = {i.name: np.zeros((batch, *i.shape[1:]), dtype=dtype) for i in inputs[1:]}
    names = [o.name for o in session.get_outputs()]
    outs = []
    for t in range(data.shape[0]):
        feeds[inputs[0].name] = data[t]
        result = dict(zip(names, session.run(None, feeds)))
        outs.append(result[names[0]])
        feeds.update({STATE_IN + k[len(STATE_OUT):]: v for k, v in result.items() if k.startswith(STATE_OUT)})
    return torch.from_numpy(np.stack(outs))
