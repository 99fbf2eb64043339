"""Small NIR graphs and files for the import tests, and ways to break them.

``tiny_graph()``: input [1, 8, 8] -> conv (2 channels, 3x3, padding 1) -> lif (IF) -> flat -> fc (Affine 128 -> 3)
-> spk (IF) -> output, built with the nir package itself. ``write(graph, path)`` writes it with ``nir.write``
(no finiteness check, so hostile values reach the file); ``replace(path, key, value)`` swaps (or, with
``value=None``, deletes) one HDF5 object under the file's ``node`` group, e.g. ``"nodes/fc/weight"``.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import nir
import numpy as np

DT = 1e-4
CHAIN = ["input", "conv", "lif", "flat", "fc", "spk", "output"]


def _if(shape: tuple[int, ...]):
    ones = np.ones(shape, dtype=np.float32)
    return nir.IF(r=ones / DT, v_threshold=ones, v_reset=0 * ones)


def tiny_graph() -> nir.NIRGraph:
    """The sound chain of the module docstring (fixed random weights, dt in the metadata)."""
    rng = np.random.default_rng(0)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 8, 8])}),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(size=(2, 1, 3, 3)).astype(np.float32), stride=1,
                           padding=1, dilation=1, groups=1, bias=np.zeros(2, dtype=np.float32)),
        "lif": _if((2, 8, 8)),
        "flat": nir.Flatten(input_type={"input": np.array([2, 8, 8])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(size=(3, 128)).astype(np.float32), bias=np.zeros(3, dtype=np.float32)),
        "spk": _if((3,)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    return nir.NIRGraph(nodes=nodes, edges=list(zip(CHAIN, CHAIN[1:])), metadata={"dt": DT}, type_check=False)


def write(graph: nir.NIRGraph, path: Path) -> Path:
    """``graph`` written to ``path`` by the nir package; returns ``path``."""
    nir.write(str(path), graph)
    return path


def replace(path: Path, key: str, value) -> Path:
    """File ``path`` with ``node/<key>`` replaced by ``value`` (an array, or an ``h5py`` link), deleted if None."""
    with h5py.File(path, "r+") as f:
        del f[f"node/{key}"]
        if value is not None:
            f[f"node/{key}"] = value
    return path


def word_padded_conv(padding: str, kernel=(3, 5), dilation=(1, 1), stride=(1, 1), seed: int = 0):
    """``(graph, weight, bias)``: input [1, 6, 7] -> Conv2d (2 channels, ``kernel``, padding the word ``padding``)
    -> output, the output's shape as torch's ``F.conv2d(padding=padding)`` gives it (odd spans, stride 1)."""
    rng = np.random.default_rng(seed)
    weight, bias = rng.normal(size=(2, 1, *kernel)), rng.normal(size=2)
    size = [6, 7] if padding == "same" else [6 - dilation[0] * (kernel[0] - 1), 7 - dilation[1] * (kernel[1] - 1)]
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 6, 7])}),
             "conv": nir.Conv2d(input_shape=(6, 7), weight=weight, bias=bias, stride=stride, padding=padding,
                                dilation=dilation, groups=1),
             "output": nir.Output(output_type={"output": np.array([2, *size])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "conv"), ("conv", "output")], metadata={"dt": DT},
                         type_check=False)
    return graph, weight, bias
