"""Export: NIR (Neuromorphic Intermediate Representation) export and import (extra ``deepspike[nir]``).

``to_nir(model, input_shape, dt, fold_thresholds)`` -> ``nir.NIRGraph`` of a rate-coded net (or of a net read by
``from_nir`` and maybe trained since: its own input shape and dt by default);
``to_nir_ttfs(model, input_shape, large, t_window)`` -> the continuous-time graph of a TTFS net (``ttfs``,
``stdbp``); ``write_nir(graph, path)``; ``export_run(run_dir, path)`` (the ``deepspike export`` command);
``from_nir(path | graph)`` -> :class:`NirNetwork` running rate-coded ``[T, B, ...]`` inputs with deepspike's
own neurons; ``GraphSimulator(graph, dt, integration, signals)`` (a float64 time-stepped simulator of feed-forward
NIR graphs; its default, exact integration of Dirac-area inputs, is NIR's continuous-time reading and not
``from_nir``'s: ``GraphSimulator.rate_coded(graph)``, forward Euler on currents held over each step, gives
``from_nir``'s spikes on deepspike's rate-coded files) and ``ttfs_graph_times`` (first output spike times of an
exported TTFS graph). ``nir_to_onnx(graph, form="step" | "sequence")`` -> an ONNX model of the simulator's step
(extra ``deepspike[onnx]``), ``write_onnx(model, path)``, ``onnx_session`` / ``run_onnx`` to run one in onnxruntime.
The nir and onnx packages are imported only inside these functions, so ``import deepspike.deploy`` works without
them.
"""

from deepspike.deploy.nir_export import DEFAULT_DT, check_finite, export_run, to_nir, write_nir
from deepspike.deploy.nir_import import from_nir, read_nir
from deepspike.deploy.nir_init import start_from_nir
from deepspike.deploy.nir_modules import NirNetwork
from deepspike.deploy.nir_sim import GraphSimulator
from deepspike.deploy.nir_ttfs import is_ttfs_model, to_nir_ttfs
from deepspike.deploy.onnx_export import nir_to_onnx, write_onnx
from deepspike.deploy.onnx_run import onnx_session, run_onnx
from deepspike.deploy.ttfs_replay import ttfs_graph_times
from deepspike.training.init_files import register_init_file

register_init_file(".nir", start_from_nir)  # method.init_from: FILE.nir (deploy.nir_init)

__all__ = ["DEFAULT_DT", "GraphSimulator", "NirNetwork", "check_finite", "export_run", "from_nir",
           "is_ttfs_model", "nir_to_onnx", "onnx_session", "read_nir", "run_onnx", "to_nir", "to_nir_ttfs",
           "ttfs_graph_times", "write_nir", "write_onnx"]
