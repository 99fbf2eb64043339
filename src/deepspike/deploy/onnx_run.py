"""Running an ONNX model written by :func:`~deepspike.deploy.onnx_export.nir_to_onnx` in onnxruntime.

``onnx_session(model)`` opens a model (a ``ModelProto``, its bytes or a file) on the CPU; ``run_onnx(session, x)``
runs it on ``x [T, B, *shape]`` and returns the first output ``[T, B, *out_shape]``: a "sequence" model (its
input's first axis named "steps") in one call, a "step" model one step at a time, every state starting at zeros and
each step fed the ``next.*`` states of the step before (the states: the inputs ``state.X`` with an output
``next.X``; the one other input takes ``x``). Needs onnxruntime (``deepspike[onnx]``).
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


def _data_and_states(session) -> tuple:
    """``(data input, data output name, state input names)`` of a model: a state is an input ``state.X`` with an
    output ``next.X``; a model with other than one data input is a one-line ``ConfigError``."""
    outputs = [o.name for o in session.get_outputs()]
    states = [i.name for i in session.get_inputs()
              if i.name.startswith(STATE_IN) and STATE_OUT + i.name[len(STATE_IN):] in outputs]
    data = [i for i in session.get_inputs() if i.name not in states]
    if len(data) != 1:
        raise ConfigError(f"run_onnx feeds x to a model's one data input; this model has {len(data)}: "
                          f"{[i.name for i in data]} (run it with onnxruntime's session.run)")
    nexts = {STATE_OUT + k[len(STATE_IN):] for k in states}
    return data[0], next(o for o in outputs if o not in nexts), states


def run_onnx(session, x: torch.Tensor) -> torch.Tensor:
    """The model's first output for ``x [T, B, *shape]`` (module docstring), as a torch tensor; ``x`` of another
    shape than the model's input (or with no step or no sample), or a model with several data inputs, is a one-line
    ``ConfigError``."""
    first, out, states = _data_and_states(session)
    sequence = first.shape[0] == "steps"
    shape = first.shape[2:] if sequence else first.shape[1:]
    if x.dim() != 2 + len(shape) or min(x.shape[:2]) < 1 or any(
            isinstance(d, int) and d != n for d, n in zip(shape, x.shape[2:])):
        raise ConfigError(f"run_onnx: x must be [T, B, {', '.join(map(str, shape))}] with T and B at least 1 (input "
                          f"{first.name!r}), got {list(x.shape)}")
    dtype = np.float64 if first.type == "tensor(double)" else np.float32
    data = x.detach().cpu().numpy().astype(dtype)
    if sequence:
        return torch.from_numpy(session.run([out], {first.name: data})[0])
    shapes = {i.name: i.shape[1:] for i in session.get_inputs()}
    feeds = {k: np.zeros((data.shape[1], *shapes[k]), dtype=dtype) for k in states}
    names = [out, *(STATE_OUT + k[len(STATE_IN):] for k in states)]
    outs = []
    for t in range(data.shape[0]):
        result = session.run(names, {**feeds, first.name: data[t]})
        outs.append(result[0])
        feeds = dict(zip(states, result[1:]))
    return torch.from_numpy(np.stack(outs))
