"""Running ONNX models in onnxruntime (``deploy.onnx_run.run_onnx``): what it feeds and what it refuses.

* A step model's states are the inputs ``state.X`` with an output ``next.X``, not every input after the first: an
  Output node named ``next.lif.v`` (its state then ``state.lif.v_1``) runs with GraphSimulator's spikes.
* Refused in one line: a model with two data inputs (the second was fed zeros as if it were a state), input of
  another shape than the model's, no time step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError

nir = pytest.importorskip("nir")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from deepspike.deploy import GraphSimulator  # noqa: E402
from deepspike.deploy.onnx_export import nir_to_onnx  # noqa: E402
from deepspike.deploy.onnx_run import onnx_session, run_onnx  # noqa: E402

DT = 1e-3


def _lif(n: int):
    return nir.LIF(tau=np.full(n, 2e-3), r=np.full(n, 2.0), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5),
                   v_reset=np.zeros(n))


def _graph(output: str = "output", second_input: bool = False, source: str = "input") -> nir.NIRGraph:
    """``source`` [4] -> linear [3] -> lif -> ``output``; with ``second_input`` an Input ``b`` [2] -> linear joins."""
    rng = np.random.default_rng(2)
    nodes = {source: nir.Input(input_type={"input": np.array([4])}),
             "w": nir.Linear(weight=rng.normal(size=(3, 4)).astype(np.float32)), "lif": _lif(3),
             output: nir.Output(output_type={"output": np.array([3])})}
    edges = [(source, "w"), ("w", "lif"), ("lif", output)]
    if second_input:
        nodes |= {"b": nir.Input(input_type={"input": np.array([2])}),
                  "wb": nir.Linear(weight=rng.normal(size=(3, 2)).astype(np.float32))}
        edges += [("b", "wb"), ("wb", "lif")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT}, type_check=False)


def _spikes(seed: int, *shape: int) -> torch.Tensor:
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.5).float()


def test_an_output_named_like_a_state_is_not_fed_back_as_one():
    graph = _graph(output="next.lif.v")
    x = _spikes(0, 30, 2, 4)
    expected = GraphSimulator.rate_coded(graph).run({"input": x})["next.lif.v"].float()
    step = onnx_session(nir_to_onnx(graph))
    assert [o.name for o in step.get_outputs()] == ["next.lif.v", "next.lif.v_1"]
    assert 0 < expected.sum() < expected.numel()
    assert torch.equal(run_onnx(step, x), expected)


@pytest.mark.parametrize("form", ["step", "sequence"])
def test_an_input_and_output_named_like_a_state_pair_are_data_not_a_state(form):
    """An Input ``state.x`` with an Output ``next.x`` was taken for a state by its names: run_onnx refused the model
    as having no data input (and ``export FILE.nir --onnx`` exited 2 after writing it). The model's metadata now
    says which inputs are states."""
    graph = _graph(output="next.x", source="state.x")
    x = _spikes(3, 30, 2, 4)
    expected = GraphSimulator.rate_coded(graph).run({"state.x": x})["next.x"].float()
    model = nir_to_onnx(graph, form=form)
    states = {"step": '{"state.lif.v": "next.lif.v"}', "sequence": "{}"}[form]
    assert {p.key: p.value for p in model.metadata_props}["deepspike.states"] == states
    assert 0 < expected.sum() < expected.numel()
    assert torch.equal(run_onnx(onnx_session(model), x), expected)


@pytest.mark.parametrize("states", ["[1]", '{"state.lif.v": "nowhere"}', "not json"])
def test_a_states_key_not_naming_the_models_inputs_and_outputs_is_refused(states):
    model = nir_to_onnx(_graph())
    next(p for p in model.metadata_props if p.key == "deepspike.states").value = states
    assert "the model's metadata 'deepspike.states' is not an object of its input and output names" in _refused(
        onnx_session(model), _spikes(4, 5, 2, 4))


def test_a_model_without_the_states_key_takes_its_states_by_name():
    """Files written before the key: the inputs ``state.X`` with an output ``next.X`` are its states."""
    graph = _graph()
    model = nir_to_onnx(graph)
    del model.metadata_props[:]
    x = _spikes(5, 20, 2, 4)
    assert torch.equal(run_onnx(onnx_session(model), x), GraphSimulator.rate_coded(graph).run({"input": x})["output"])


def _refused(session, x: torch.Tensor) -> str:
    with pytest.raises(ConfigError) as e:
        run_onnx(session, x)
    assert "\n" not in str(e.value)
    return str(e.value)


@pytest.mark.parametrize("form", ["step", "sequence"])
def test_a_model_with_two_data_inputs_is_refused(form):
    """Before, the step model's second data input ``b`` was fed zeros as a state and the output returned as if that
    were the model's answer; the sequence model failed in onnxruntime with a traceback."""
    session = onnx_session(nir_to_onnx(_graph(second_input=True), form=form))
    assert "this model has 2: ['input', 'b']" in _refused(session, _spikes(1, 10, 2, 4))


@pytest.mark.parametrize("form", ["step", "sequence"])
def test_input_of_another_shape_or_without_steps_is_refused(form):
    session = onnx_session(nir_to_onnx(_graph(), form=form))
    assert "x must be [T, B, 4] with T and B at least 1" in _refused(session, torch.zeros(10, 2, 5))
    assert "got [10, 4]" in _refused(session, torch.zeros(10, 4))
    assert "got [0, 2, 4]" in _refused(session, torch.zeros(0, 2, 4))
    assert run_onnx(session, torch.zeros(1, 1, 4)).shape == (1, 1, 3)  # one step of one sample runs


@pytest.mark.parametrize("form", ["step", "sequence"])
def test_input_of_another_real_dtype_runs_and_no_real_tensor_is_refused(form):
    """bfloat16 ended in numpy's TypeError "Got unsupported ScalarType BFloat16" (float16, float64, bool ran); a numpy
    array in an AttributeError on ``.dim``; a complex tensor ran on its real part with a ComplexWarning."""
    session = onnx_session(nir_to_onnx(_graph(), form=form))
    x = _spikes(3, 12, 2, 4)
    expected = run_onnx(session, x)
    assert 0 < expected.sum() < expected.numel()
    for kind in (torch.bfloat16, torch.float16, torch.float64, torch.bool):
        assert torch.equal(run_onnx(session, x.to(kind)), expected), kind
    assert _refused(session, x.numpy()) == "run_onnx: x must be a real torch tensor [T, B, ...], got ndarray"
    assert _refused(session, x.to(torch.complex64)) == ("run_onnx: x must be a real torch tensor [T, B, ...], got a "
                                                        "torch.complex64 tensor")
