"""Running an ONNX model written by :func:`~deepspike.deploy.onnx_export.nir_to_onnx` in onnxruntime.

``onnx_session(model)`` opens a model (a ``ModelProto``, its bytes or a file) on the CPU; ``run_onnx(session, x)``
runs it on ``x [T, B, *shape]`` and returns the first output ``[T, B, *out_shape]``: a "sequence" model (its
input's first axis named "steps") in one call, a "step" model one step at a time, every state starting at zeros and
each step fed the ``next.*`` states of the step before (the states: those the model's ``metadata_props`` key
``STATES_KEY`` lists, as ``nir_to_onnx`` writes it, so that a data input named ``state.X`` is not taken for one;
in a model without that key, the inputs ``state.X`` with an output ``next.X``; the one other input takes ``x``).
Needs onnxruntime (``deepspike[onnx]``).
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from deepspike.core.errors import ConfigError
from deepspike.core.optional import require_package

STATE_IN, STATE_OUT = "state.", "next."
STATES_KEY = "deepspike.states"
"""The ``metadata_props`` key of a model's states: a JSON object of each state input's name and its output's (``{}``
for a sequence model, whose states stay inside its loop)."""


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


def state_pairs(meta: dict[str, str], inputs: list[str], outputs: list[str]) -> dict[str, str]:
    """``{state input: its output}`` of a model with ``metadata_props`` ``meta`` and these input and output names: as
    its ``STATES_KEY`` lists them, or (a model without the key) each input ``state.X`` with an output ``next.X``. A
    key that is not such an object of the model's names is a one-line ``ConfigError``."""
    text = meta.get(STATES_KEY)
    if text is None:
        return {i: STATE_OUT + i[len(STATE_IN):] for i in inputs
                if i.startswith(STATE_IN) and STATE_OUT + i[len(STATE_IN):] in outputs}
    try:
        pairs = json.loads(text)
    except ValueError:
        pairs = None
    if not isinstance(pairs, dict) or not all(k in inputs and v in outputs for k, v in pairs.items()):
        raise ConfigError(f"the model's metadata {STATES_KEY!r} is not an object of its input and output names: "
                          f"{text[:200]!r}")
    return pairs


def _data_and_states(session) -> tuple:
    """``(data input, data output name, {state input: state output})`` of a model (``state_pairs``); a model with
    other than one data input is a one-line ``ConfigError``."""
    outputs = [o.name for o in session.get_outputs()]
    meta = session.get_modelmeta().custom_metadata_map
    states = state_pairs(meta, [i.name for i in session.get_inputs()], outputs)
    data = [i for i in session.get_inputs() if i.name not in states]
    if len(data) != 1:
        raise ConfigError(f"run_onnx feeds x to a model's one data input; this model has {len(data)}: "
                          f"{[i.name for i in data]} (run it with onnxruntime's session.run)")
    nexts = set(states.values())
    return data[0], next(o for o in outputs if o not in nexts), states


def run_onnx(session, x: torch.Tensor) -> torch.Tensor:
    """The model's first output for ``x [T, B, *shape]`` (module docstring), as a torch tensor; ``x`` of any real
    dtype is cast to the model's input type (float32, or float64), bfloat16 included (it ended in numpy's "Got
    unsupported ScalarType BFloat16"). ``x`` that is no real tensor (a numpy array, complex), of another shape than
    the model's input (or with no step or no sample), or a model with several data inputs, is a one-line
    ``ConfigError``."""
    if not isinstance(x, torch.Tensor) or x.is_complex():  # numpy: AttributeError; complex: imaginary part dropped
        got = f"a {x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"run_onnx: x must be a real torch tensor [T, B, ...], got {got}")
    first, out, states = _data_and_states(session)
    sequence = first.shape[0] == "steps"
    shape = first.shape[2:] if sequence else first.shape[1:]
    if x.dim() != 2 + len(shape) or min(x.shape[:2]) < 1 or any(
            isinstance(d, int) and d != n for d, n in zip(shape, x.shape[2:])):
        raise ConfigError(f"run_onnx: x must be [T, B, {', '.join(map(str, shape))}] with T and B at least 1 (input "
                          f"{first.name!r}), got {list(x.shape)}")
    dtype = np.float64 if first.type == "tensor(double)" else np.float32
    data = x.detach().cpu().to(torch.float64 if dtype is np.float64 else torch.float32).numpy()  # bfloat16: no numpy
    if sequence:
        return torch.from_numpy(session.run([out], {first.name: data})[0])
    shapes = {i.name: i.shape[1:] for i in session.get_inputs()}
    feeds = {k: np.zeros((data.shape[1], *shapes[k]), dtype=dtype) for k in states}
    names = [out, *states.values()]
    outs = []
    for t in range(data.shape[0]):
        result = session.run(names, {**feeds, first.name: data[t]})
        outs.append(result[0])
        feeds = dict(zip(states, result[1:]))
    return torch.from_numpy(np.stack(outs))
