"""``deepspike export RUN --onnx PATH``: a trained rate-coded run as an ONNX file, checked by running it.

``export_run_onnx`` writes the run's graph (:func:`~deepspike.deploy.nir_export.run_graph`, the same graph
``--nir`` writes, with ``dt``, ``fold_thresholds`` and ``round_delays``) as ONNX (:func:`nir_to_onnx`, ``form``
"step" or "sequence"), atomically. Where onnxruntime is installed it then reads the written file back and runs it
on ``VERIFY_STEPS`` steps of sample input spikes (two samples), and compares its output with the run's own net
(``nir_export.graph_outputs``; ``result["verified"]``): spikes entry by entry (``conformance.compare``), a membrane
readout's trajectory by its largest difference. TTFS runs (continuous time, one spike per neuron) are
refused in one line. ``export_pretrained_onnx`` does the same for a shipped pretrained entry (``deepspike zoo NAME
--onnx PATH``). ``check_replaces_only_an_onnx_file``: ``PATH`` may replace an earlier ONNX model, never another
file.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from deepspike.core.atomic import check_output_file
from deepspike.core.errors import ConfigError
from deepspike.deploy.conformance import compare, sample_spikes
from deepspike.deploy.nir_export import encoder_options, graph_outputs, run_graph, to_nir
from deepspike.deploy.nir_ttfs import is_ttfs_model
from deepspike.deploy.nir_window import is_window_model
from deepspike.deploy.onnx_export import nir_to_onnx, write_onnx
from deepspike.deploy.onnx_ops import OPSET, require_onnx
from deepspike.deploy.onnx_run import onnx_session, run_onnx, state_pairs
from deepspike.layers.delays import round_all_delays_
from deepspike.layers.wta_stdp import CompetitiveStdpLayer
from deepspike.training.pretrained import load_pretrained, zoo_card
from deepspike.training.reload import load_run
from deepspike.training.runs import check_not_run_file

VERIFY_STEPS = 100
CODING_KEYS = ("encoder", "timesteps", "decode", "num_classes")
"""What a zoo entry's summary carries from its graph's metadata (``nir_export.chain_modules``): how to feed and read
the model."""


def check_replaces_only_an_onnx_file(path: str | os.PathLike) -> Path:
    """A one-line ``ConfigError`` when ``--onnx PATH`` would write over an existing non-empty file that is not an
    ONNX model (one with at least one node); a run's own files, folders and devices are refused first."""
    target = check_output_file(path, "--onnx")
    check_not_run_file(target, "--onnx")
    if target.is_file() and target.stat().st_size > 0:
        onnx = require_onnx()
        try:
            is_model = len(onnx.load_model_from_string(target.read_bytes()).graph.node) > 0
        except Exception:  # noqa: BLE001 - protobuf's decode errors: not a model
            is_model = False
        if not is_model:
            raise ConfigError(f"--onnx {path} exists and is not an ONNX model; writing there would replace it: "
                              "choose another path")
    return target


def model_summary(model, path: Path, form: str) -> dict:
    """The file, its form, opset and size, and its inputs, outputs (and, step form, states) with their shapes."""
    def shapes(values) -> dict:
        return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}

    graph = model.graph
    summary = {"onnx": str(path), "form": form, "opset": OPSET, "bytes": path.stat().st_size}
    if form == "sequence":
        return {**summary, "inputs": shapes(graph.input), "outputs": shapes(graph.output)}
    states = state_pairs({p.key: p.value for p in model.metadata_props}, [v.name for v in graph.input],
                         [v.name for v in graph.output])
    return {**summary, "inputs": shapes([v for v in graph.input if v.name not in states]),
            "outputs": shapes([v for v in graph.output if v.name not in states.values()]),
            "states": shapes([v for v in graph.input if v.name in states])}


def export_run_onnx(run_dir: str | os.PathLike, path: str | os.PathLike, form: str = "step",
                    dt: float | None = None, fold_thresholds: bool = False, round_delays: bool = False) -> dict:
    """Write the rate-coded run ``run_dir`` as an ONNX model at ``path`` (module docstring); returns the summary:
    the file, its form, opset and size, its inputs, outputs and states with their shapes, and ``verified``."""
    target = check_replaces_only_an_onnx_file(path)
    config, parts, _ = load_run(run_dir, device="cpu")  # read once: the graph and the check use the same net
    try:
        graph, kind = run_graph(run_dir, dt, fold_thresholds, round_delays=round_delays, low_latency=True,
                                loaded=(config, parts))
    except ConfigError as e:  # said "NIR export: ..." to an --onnx export, which asked for no NIR file
        text = str(e)
        if not text.startswith("NIR export"):
            raise
        raise ConfigError(f"--onnx (the model is written from the run's NIR graph): "
                          f"{text.removeprefix('NIR export: ')}") from None
    if kind != "rate-coded":
        raise ConfigError(f"--onnx writes rate-coded nets stepped in discrete time; {run_dir} is a {kind} net "
                          "(export it with --nir)")
    model = nir_to_onnx(graph, form=form)
    write_onnx(model, target)
    summary = model_summary(model, target, form)
    if importlib.util.find_spec("onnxruntime") is not None:
        if round_delays:  # to_nir rounded a copy
            round_all_delays_(parts.model)
        summary["verified"] = verify_against(parts.model, tuple(parts.arch.input_shape), target)
    return summary


def export_pretrained_onnx(name: str, path: str | os.PathLike, form: str = "step") -> dict:
    """The shipped pretrained entry ``name`` (``deepspike zoo``; a rate-coded one) as an ONNX model at ``path``,
    verified like a run's. The model takes the net's encoder's output ``[B, *input_shape]`` per step, so the summary
    also gives the card's ``input`` as ``preprocess`` (how images are standardised before the encoder) and
    ``encoding``: the ``encoder`` (``direct``: the image itself at every step; ``bipolar``, ``poisson``: spikes drawn
    from it), its options, the ``timesteps`` T and how the output is decoded (``decode``)."""
    target = check_replaces_only_an_onnx_file(path)
    card = zoo_card(name)
    if card["method"] == "ann":
        raise ConfigError(f"--onnx writes spiking nets stepped in discrete time; the zoo entry {name} is an ANN (no "
                          "spikes, no time steps): export a spiking entry, e.g. one converted from it (deepspike zoo)")
    _, _, net = load_pretrained(name)
    if isinstance(net, CompetitiveStdpLayer) or is_ttfs_model(net) or is_window_model(net):
        raise ConfigError(f"--onnx writes rate-coded nets stepped in discrete time; the zoo entry {name} is a "
                          f"{card['method']} net")
    graph = to_nir(net, tuple(card["input_shape"]), low_latency=True, metadata={"zoo": name})
    model = nir_to_onnx(graph, form=form)
    write_onnx(model, target)
    coding = {key: graph.metadata[key] for key in CODING_KEYS if key in graph.metadata}
    summary = {**model_summary(model, target, form), "zoo": name, "preprocess": card["input"],
               "encoding": {**coding, **encoder_options(net)}}
    if importlib.util.find_spec("onnxruntime") is not None:
        summary["verified"] = verify_against(net, tuple(card["input_shape"]), target)
    return summary


def verify_against(net, input_shape: tuple[int, ...], path: Path) -> dict:
    """The written file run by onnxruntime against ``net`` itself on sample spikes (``VERIFY_STEPS`` steps, two
    samples): what the graph's Output carries (``nir_export.graph_outputs``), compared by :func:`agreement`."""
    x = sample_spikes(input_shape, VERIFY_STEPS)
    ours, spiking = graph_outputs(net, x)
    return {"steps": VERIFY_STEPS, **agreement(ours, run_onnx(onnx_session(path), x), spiking)}


def agreement(ours: torch.Tensor, theirs: torch.Tensor, spiking: bool) -> dict:
    """Spikes compared entry by entry (``conformance.compare``); a membrane by its largest difference."""
    if spiking:
        return compare(ours, theirs)
    return {"membrane": True, "max_abs_difference": float((ours.float() - theirs.float()).abs().max()),
            "max_abs_value": float(ours.abs().max())}
