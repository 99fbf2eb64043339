"""Building ONNX graphs from NIR nodes: a small graph builder and the stateless nodes of one time step.

Every value of the step graph is ``[B, *shape]`` (the batch first, free; NIR's shapes are batch-free). The
stateless NIR nodes map onto ONNX operators of opset ``OPSET`` as :class:`~deepspike.deploy.nir_sim.GraphSimulator`
computes them on one step (``bias_scale``: 1 for "currents", ``dt`` for "areas")::

    Linear     x @ W^T                  MatMul (W^T a constant [N, M])
    Affine     x @ W^T + b bias_scale   MatMul, Add
    Conv2d     conv(x, W) + b bias_scale   Conv (pads, strides, dilations, group)
    SumPool2d  sum over each window     Conv with a ones kernel per channel (group = C): exact sums
    AvgPool2d  mean over each window, zero padding counted   AveragePool(count_include_pad=1)
    Flatten    [B, *shape] -> [B, *flattened shape]   Reshape (the batch kept: 0)
    Scale      x * s                    Mul
    Threshold  1 where x > threshold, else 0   Greater, Cast

Constants are initializers of the builder's dtype (float32, or float64 for a bit-exact comparison with the
float64 simulator).
"""

from __future__ import annotations

import numpy as np
import torch

from deepspike.core.errors import ConfigError
from deepspike.core.optional import require_package
from deepspike.deploy.nir_fields import node_padding, pair

OPSET = 17
"""ONNX operator set of the graphs written (ONNX 1.12, 2022): every operator used here exists there, and every
current runtime (onnxruntime, TensorRT, OpenVINO, TVM) reads it."""
IR_VERSION = 8
"""The ONNX IR version that goes with opset 17."""


def require_onnx():
    """``import onnx`` or a one-line ``ConfigError`` naming the extra to install."""
    return require_package("onnx", "ONNX export needs the onnx package: pip install 'deepspike[onnx]'")


class GraphBuilder:
    """Collects ONNX nodes and initializers under unique names.

    ``const(hint, array)`` -> the name of an initializer holding ``array`` in the builder's dtype;
    ``op(op_type, inputs, **attributes)`` -> the name of the operator's (single) output.
    """

    def __init__(self, dtype: np.dtype) -> None:
        self.onnx = require_onnx()
        self.dtype = np.dtype(dtype)
        self.nodes: list = []
        self.initializers: list = []
        self.constant_bytes = 0  # the initializers' data, counted before protobuf has to hold it
        self._used: set[str] = set()

    def name(self, hint: str) -> str:
        """A fresh value name starting with ``hint``."""
        name, k = hint, 1
        while name in self._used:
            name, k = f"{hint}_{k}", k + 1
        self._used.add(name)
        return name

    def free(self, *names: str) -> bool:
        """Whether none of ``names`` is taken yet."""
        return not any(n in self._used for n in names)

    def reserve(self, other: GraphBuilder) -> None:
        """Keep the names ``other`` gave out of this builder's (a loop body and the graph around it)."""
        self._used.update(other._used)

    def const(self, hint: str, array, dtype: np.dtype | None = None) -> str:
        """An initializer ``array`` (the builder's dtype unless ``dtype``) named after ``hint``."""
        name = self.name(hint)
        value = np.asarray(array, dtype=self.dtype if dtype is None else dtype)
        self.constant_bytes += value.nbytes
        self.initializers.append(self.onnx.numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attributes) -> str:
        """Append ``op_type(*inputs)`` with ``attributes``; returns its output's name."""
        out = self.name(hint or op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], **attributes))
        return out

    def scaled(self, x: str, factor, hint: str) -> str:
        """``x * factor`` (a number or an array broadcasting from the right)."""
        return self.op("Mul", [x, self.const(f"{hint}.factor", factor)], hint)

    def as_float(self, flags: str, hint: str) -> str:
        """A boolean tensor as 0/1 numbers of the builder's dtype."""
        return self.op("Cast", [flags], hint, to=self.onnx.helper.np_dtype_to_tensor_dtype(self.dtype))


def per_value(value) -> np.ndarray:
    """A node parameter of ``GraphSimulator`` (a number, or values that broadcast on the layer's shape: the
    simulator has already laid one value per element out in that shape, ``nir_shapes.shaped_graph``) as an array, a
    single value as a scalar."""
    a = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value, dtype=np.float64)
    return a.reshape(()) if a.size == 1 else a


def _linear(b: GraphBuilder, name: str, node, x: str, bias_scale: float) -> str:
    y = b.op("MatMul", [x, b.const(f"{name}.weight_t", np.asarray(node.weight, dtype=np.float64).T)], name)
    if hasattr(node, "bias"):
        y = b.op("Add", [y, b.const(f"{name}.bias", np.asarray(node.bias, dtype=np.float64) * bias_scale)], name)
    return y


def _conv(b: GraphBuilder, name: str, node, x: str, bias_scale: float) -> str:
    weight = np.asarray(node.weight, dtype=np.float64)
    bias = np.asarray(node.bias, dtype=np.float64) * bias_scale * np.ones(weight.shape[0])
    p = node_padding(node, "ONNX export", name)
    return b.op("Conv", [x, b.const(f"{name}.weight", weight), b.const(f"{name}.bias", bias)], name,
                pads=[p[0], p[1], p[0], p[1]], strides=list(pair(node.stride)), dilations=list(pair(node.dilation)),
                group=int(node.groups), kernel_shape=list(weight.shape[2:]))


def _pool(b: GraphBuilder, name: str, node, x: str, channels: int) -> str:
    k, s, p = pair(node.kernel_size), pair(node.stride), pair(node.padding)
    window = {"pads": [p[0], p[1], p[0], p[1]], "strides": list(s), "kernel_shape": list(k)}
    if type(node).__name__ == "AvgPool2d":
        return b.op("AveragePool", [x], name, count_include_pad=1, **window)
    ones = b.const(f"{name}.ones", np.ones((channels, 1, *k)))
    return b.op("Conv", [x, ones], name, group=channels, dilations=[1, 1], **window)


def stateless(b: GraphBuilder, name: str, node, x: str, shape: tuple[int, ...], out_shape: tuple[int, ...],
              bias_scale: float) -> str:
    """The ONNX value of the stateless NIR node ``name`` on ``x [B, *shape]`` -> ``[B, *out_shape]`` (module
    docstring); another node type is a one-line ``ConfigError`` naming it."""
    kind = type(node).__name__
    if kind in ("Linear", "Affine"):
        return _linear(b, name, node, x, bias_scale)
    if kind == "Conv2d":
        return _conv(b, name, node, x, bias_scale)
    if kind in ("SumPool2d", "AvgPool2d"):
        return _pool(b, name, node, x, shape[0])
    if kind == "Flatten":
        return b.op("Reshape", [x, b.const(f"{name}.shape", [0, *out_shape], np.int64)], name)
    if kind == "Scale":
        return b.scaled(x, np.asarray(node.scale, dtype=np.float64), name)
    if kind == "Threshold":
        over = b.op("Greater", [x, b.const(f"{name}.threshold", per_value(node.threshold))])
        return b.as_float(over, name)
    check_supported(name, node)
    raise ConfigError(f"ONNX export: node {name!r} of type {kind} has state")  # the caller writes those


SUPPORTED = ("Input", "Output", "Linear", "Affine", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Scale", "Threshold",
             "Delay", "IF", "LIF", "I", "LI", "CubaLIF")


def check_supported(name: str, node) -> None:
    """A one-line ``ConfigError`` for a node type the exporter does not write, or a one-line ``DataCorruptError`` for
    a ``Conv2d`` whose padding word ("same", "valid") gives no whole, symmetric padding (``nir_fields.conv_padding``;
    checked here, before the node's shape is needed: the error said only that the shape of the node was not
    known)."""
    kind = type(node).__name__
    if kind not in SUPPORTED:
        raise ConfigError(f"ONNX export: node {name!r} of type {kind} is not supported (supported: "
                          f"{', '.join(SUPPORTED)})")
    if kind == "Conv2d":
        node_padding(node, "ONNX export", name)


def value_info(b: GraphBuilder, name: str, shape: tuple[int | str, ...]):
    """A graph input/output declaration of the builder's dtype: ``[batch, *shape]`` with the batch free."""
    elem = b.onnx.helper.np_dtype_to_tensor_dtype(b.dtype)
    return b.onnx.helper.make_tensor_value_info(name, elem, list(shape))
