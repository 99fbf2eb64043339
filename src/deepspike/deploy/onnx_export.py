"""A NIR graph as an ONNX model: the spiking net run by any ONNX runtime (onnxruntime, TensorRT, OpenVINO, TVM).

``nir_to_onnx(graph)`` writes the time step of :class:`~deepspike.deploy.nir_sim.GraphSimulator` (same nodes,
same arithmetic, same reading of the graph: ``integration`` "euler" or "exact", ``signals`` "currents" or "areas";
the defaults read deepspike's rate-coded files as ``from_nir`` does, ``dt`` from the graph's metadata) in ONNX
operators of opset 17 (:mod:`onnx_ops` for the stateless nodes, :mod:`onnx_state` for neurons and delays):

* ``form="step"``: one time step. Inputs: each NIR Input node's ``[B, *shape]`` (its name) and every state
  ``state.<node>.<var>`` ``[B, *shape]``; outputs: each NIR Output node's ``[B, *shape]`` and the states after the
  step, ``next.<node>.<var>`` (both ``..._k`` where an Input or Output node is named so). Start every state at
  zeros and feed each step the ``next.*`` values of the step before: the loop of an embedded runtime or a live
  event camera.
* ``form="sequence"``: a whole sequence in one call: the step inside an ONNX ``Scan`` over the first axis. Inputs
  ``[T, B, *shape]``, outputs ``[T, B, *shape]``; every state starts at zeros.

A recurrent layer's feedback edge (``graph_order.feedback_edges``; its source a Linear/Affine node) carries the
source's input of the step before as a state (``state.<source>.input``), and the source is applied to it at the
start of the step: before the first step that is the source's output for a zero input, as the simulator has it.

The graph is float32 unless ``dtype="float64"``, which reproduces the float64 simulator's spikes (tested; a
convolution or sum pool sums in another order, so real values after one differ by about 1e-15);
a float32 model differs from deepspike's float32 net only where a membrane lies within float rounding of a
threshold (``deploy.conformance`` counts such spikes). The model's ``metadata_props`` carry the graph's metadata
(``metadata_props``: the input coding, ``timesteps``, ``decode``, ``input_mean``/``input_std``), the ``dt`` it
was written with and which inputs are states (``onnx_run.STATES_KEY``: an Input node may be named ``state.X``).
Unsupported nodes and graphs are one-line errors, and so is a net whose constants do not fit the 2 GiB of one ONNX
file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from deepspike.core.atomic import atomic_write, strict_json
from deepspike.core.errors import ConfigError
from deepspike.deploy.deps import check_graph, require_nir
from deepspike.deploy.graph_flatten import inline_subgraphs
from deepspike.deploy.nir_delays import DelayLine
from deepspike.deploy.nir_import import _plain, _step, readout_decode
from deepspike.deploy.nir_sim import GraphSimulator, _Cuba, _CubaEuler, _Leaky
from deepspike.deploy.onnx_ops import IR_VERSION, OPSET, GraphBuilder, check_supported, stateless, value_info
from deepspike.deploy.onnx_run import STATES_KEY
from deepspike.deploy.onnx_state import StepStates, cuba_step, delay_step, leaky_step

FORMS = ("step", "sequence")
DTYPES = ("float32", "float64")
MAX_PROTOBUF_BYTES = 2**31 - 1
"""A single ONNX file (protobuf) holds at most 2 GiB; a larger net is a one-line error."""
GRAPH_BYTES = 2**20
"""Room left in those 2 GiB for the graph around its constants (names, nodes, shapes: kilobytes)."""


def _check_size(nbytes: int) -> None:
    """A one-line ``ConfigError`` for a model of ``nbytes`` past protobuf's 2 GiB (``MAX_PROTOBUF_BYTES``)."""
    if nbytes > MAX_PROTOBUF_BYTES:
        raise ConfigError(f"ONNX export: the model takes {nbytes / 2**30:.2f} GiB, past the 2 GiB an ONNX file holds")


def _choice(name: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ConfigError(f"ONNX export: {name} must be {' or '.join(map(repr, valid))}, got {value!r}")
    return value


def _joined(b: GraphBuilder, values: list[str], hint: str) -> str:
    x = values[0]
    for other in values[1:]:
        x = b.op("Add", [x, other], hint)
    return x


class _StepGraph:
    """The nodes of one time step of ``sim``'s graph (module docstring), written into builder ``b``; ``inputs`` maps
    each NIR Input node to the value name that feeds it, ``outputs`` each Output node to its value's name."""

    def __init__(self, sim: GraphSimulator, b: GraphBuilder, inputs: dict[str, str], outputs: dict[str, str]) -> None:
        self.sim, self.b, self.states = sim, b, StepStates(b)
        self.values = dict(inputs)
        self.output_names = outputs
        self.fed_back: dict[str, str] = {}  # a feedback source -> its state (its input of the step before)
        for name in sim.order:
            if name not in sim.inputs:
                self._node(name)

    def _shape(self, name: str) -> tuple[int, ...]:
        shape = self.sim.shapes.get(name)
        if shape is None:
            raise ConfigError(f"ONNX export: the shape of node {name!r} is not known")
        return tuple(shape)

    def _received(self, name: str) -> tuple[str, tuple[int, ...]]:
        """What node ``name`` receives (the sum of its inputs) and its per-sample shape."""
        preds = self.sim.preds[name]
        if not preds:
            raise ConfigError(f"ONNX export: node {name!r} has no incoming edge")
        return _joined(self.b, [self.values[p] for p in preds], f"{name}.in"), self._received_shape(name)

    def _node(self, name: str) -> None:
        sim, b = self.sim, self.b
        node = sim.graph.nodes[name]
        check_supported(name, node)
        x, shape = self._received(name)
        for src in sim.fed_by[name]:  # a recurrent weight on last step's input of its source
            if src not in self.fed_back:
                self.fed_back[src] = self.states.declare(src, "input", self._received_shape(src))
            x = b.op("Add", [x, stateless(b, src, sim.graph.nodes[src], self.fed_back[src],
                                          self._received_shape(src), self._shape(src), sim.bias_scale)], f"{name}.in")
        if name in self.fed_back:
            self.states.close(self.fed_back[name], x)
        if name in sim.outputs:
            b.nodes.append(b.onnx.helper.make_node("Identity", [x], [self.output_names[name]]))
            self.values[name] = self.output_names[name]
            return
        self.values[name] = self._apply(name, node, x, shape)

    def _received_shape(self, name: str) -> tuple[int, ...]:
        """The per-sample shape of the sum of node ``name``'s inputs."""
        return tuple(int(s) for s in np.broadcast_shapes(*(self._shape(p) for p in self.sim.preds[name])))

    def _apply(self, name: str, node, x: str, shape: tuple[int, ...]) -> str:
        stepper = self.sim.neurons.get(name)
        if isinstance(stepper, _Leaky):
            return leaky_step(self.b, self.states, stepper, name, x, shape)
        if isinstance(stepper, _Cuba | _CubaEuler):
            return cuba_step(self.b, self.states, stepper, name, x, shape)
        if isinstance(stepper, DelayLine):
            return delay_step(self.b, self.states, stepper, name, x, shape)
        return stateless(self.b, name, node, x, shape, self._shape(name), self.sim.bias_scale)


def _simulator(graph, dt: float | None, integration: str, signals: str) -> GraphSimulator:
    """The simulator whose step is written (its checks of the graph run first); ``dt`` from the graph's metadata
    when not given."""
    return GraphSimulator(graph, _step(dt, graph, _plain(graph.metadata), "ONNX export"), integration, signals)


def _step_model(sim: GraphSimulator, b: GraphBuilder, prefix: str = "", states_first: bool = False) -> tuple:
    """The step graph of ``sim`` (module docstring) as an ONNX GraphProto, with its states. ``prefix`` names the
    Input and Output nodes' values; ``states_first``: the states before the data in the inputs and outputs (a
    ``Scan`` body's order)."""
    ins = {k: b.name(prefix + k) for k in sim.inputs}
    outs = {k: b.name(prefix + k) for k in sim.outputs}
    states = _StepGraph(sim, b, ins, outs).states.states
    data_in = [value_info(b, ins[k], ("batch", *sim.shapes[k])) for k in sim.inputs]
    state_in = [value_info(b, s.source, ("batch", *s.shape)) for s in states]
    data_out = [value_info(b, outs[k], ("batch", *sim.shapes[k])) for k in sim.outputs]
    state_out = [value_info(b, s.target, ("batch", *s.shape)) for s in states]
    inputs, outputs = (state_in + data_in, state_out + data_out) if states_first else (data_in + state_in,
                                                                                       data_out + state_out)
    _check_size(b.constant_bytes + GRAPH_BYTES)  # before protobuf holds them: past 2 GiB it fails (EncodeError)
    graph = b.onnx.helper.make_graph(b.nodes, "deepspike_step", inputs, outputs, b.initializers)
    return graph, states


def _sequence_model(sim: GraphSimulator, dtype: str):
    """The step graph inside a ``Scan`` over ``[T, B, *shape]`` inputs, every state starting at zeros."""
    b = GraphBuilder(np.dtype(dtype))
    for k in (*sim.inputs, *sim.outputs):
        b.name(k)  # the outer graph's names, kept out of the loop body's
    body_builder = GraphBuilder(np.dtype(dtype))
    body_builder.reserve(b)
    body, states = _step_model(sim, body_builder, prefix="step.", states_first=True)
    b.reserve(body_builder)
    first = sim.inputs[0]
    batch = b.op("Shape", [first], "batch_size", start=1, end=2)
    zeros = [b.op("ConstantOfShape", [b.op("Concat", [batch, b.const(f"{s.source}.shape", s.shape, np.int64)],
                                           f"{s.source}.full_shape", axis=0)], f"zeros.{s.source}",
                  value=b.onnx.numpy_helper.from_array(np.zeros(1, dtype=dtype)))
             for s in states]
    finals = [b.name(f"final.{s.source}") for s in states]
    b.nodes.append(b.onnx.helper.make_node("Scan", [*zeros, *sim.inputs], [*finals, *sim.outputs], body=body,
                                           num_scan_inputs=len(sim.inputs)))
    inputs = [value_info(b, k, ("steps", "batch", *sim.shapes[k])) for k in sim.inputs]
    outputs = [value_info(b, k, ("steps", "batch", *sim.shapes[k])) for k in sim.outputs]
    return b.onnx.helper.make_graph(b.nodes, "deepspike_sequence", inputs, outputs, b.initializers)


def metadata_props(graph, dt: float) -> dict[str, str]:
    """The graph's metadata as the ONNX model's ``metadata_props`` (text only): a text value as it is, any other as
    JSON (arrays as lists), and ``dt`` the step the model was written with; so the file says, as the NIR file does,
    how its input is coded (``encoder`` and its options), over how many ``timesteps``, how the output is decoded
    (``decode``: for another tool's ``LI`` / ``I`` readout that says none, ``membrane``, as ``from_nir`` infers it:
    ``nir_import.readout_decode``) and how images are standardised first (``input_mean``, ``input_std``)."""
    nir = require_nir()
    meta = readout_decode(nir, inline_subgraphs(nir, graph), _plain(graph.metadata))
    meta = {str(k): v.tolist() if isinstance(v, np.ndarray) else v for k, v in meta.items()}
    meta["dt"] = float(dt)
    return {k: v if isinstance(v, str) else strict_json(v, default=str) for k, v in meta.items()}


def nir_to_onnx(graph, dt: float | None = None, integration: str = "euler", signals: str = "currents",
                form: str = "step", dtype: str = "float32"):
    """The ONNX model (``onnx.ModelProto``, checked) of NIR ``graph`` (module docstring). ``dt``: seconds per
    step (default: the graph's metadata, as deepspike's files carry it, else 1e-4 s as ``from_nir`` reads
    it); ``integration``, ``signals``: how
    ``GraphSimulator`` reads the graph; ``form``: "step" or "sequence"; ``dtype``: "float32" or "float64"."""
    nir = require_nir()
    _choice("form", form, FORMS)
    _choice("dtype", dtype, DTYPES)
    if isinstance(graph, nir.NIRNode) and not isinstance(graph, nir.NIRGraph):
        raise ConfigError(f"ONNX export: expected a NIR graph, got a single {type(graph).__name__} node")
    check_graph(nir, graph, "nir_to_onnx")
    sim = _simulator(graph, dt, integration, signals)
    states = []
    if form == "step":
        onnx_graph, states = _step_model(sim, GraphBuilder(np.dtype(dtype)))
    else:
        onnx_graph = _sequence_model(sim, dtype)
    b_onnx = GraphBuilder(np.dtype(dtype)).onnx
    model = b_onnx.helper.make_model(onnx_graph, opset_imports=[b_onnx.helper.make_opsetid("", OPSET)],
                                     producer_name="deepspike", ir_version=IR_VERSION)
    model.doc_string = (f"deepspike: NIR graph as ONNX, form={form}, dt={sim.dt:g} s, integration={integration}, "
                        f"signals={signals}; states start at zeros")
    pairs = strict_json({s.source: s.target for s in states})  # which inputs are states: not read from their names
    b_onnx.helper.set_model_props(model, {**metadata_props(graph, sim.dt), STATES_KEY: pairs})
    b_onnx.checker.check_model(model)
    return model


def write_onnx(model, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` atomically (``core.atomic``); a model past protobuf's 2 GiB is a one-line
    ``ConfigError``."""
    _check_size(model.ByteSize())
    path = Path(path)
    encoded = io.BytesIO(model.SerializeToString())
    atomic_write(path, lambda f: f.write(encoded.getvalue()))
    return path
