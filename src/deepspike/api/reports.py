"""Measure runs: spikes, synaptic operations, energy, quantisation and noise (``analyze``), one table across runs
(``compare``), accuracy against time steps (``timestep_sweep``), NIR export (``export``).

Output paths are checked before any work starts (an existing file where a folder is wanted, a path under a
file, a folder without write permission, a run's own files: one-line errors), and JSON is written strictly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deepspike.analysis.activity import Activity, measure_activity
from deepspike.analysis.compare import COLUMNS, compare_runs, markdown_table
from deepspike.analysis.qat import check_qat, quantization_aware_retrain
from deepspike.analysis.report import AnalysisOptions, analyze_run
from deepspike.analysis.timesteps import timestep_sweep as _timestep_sweep
from deepspike.core.atomic import atomic_write_json, atomic_write_text, check_output_dir, check_output_file
from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.core.options import check_switches, is_whole, shown_value
from deepspike.deploy import DEFAULT_DT
from deepspike.deploy.conformance import check_run
from deepspike.deploy.nir_eval import evaluate_nir as _evaluate_nir
from deepspike.deploy.nir_export import run_graph, write_graph
from deepspike.deploy.onnx_export import FORMS as ONNX_FORMS
from deepspike.deploy.onnx_files import check_replaces_only_an_onnx_file, export_pretrained_onnx, export_run_onnx
from deepspike.deploy.onnx_from_nir import export_nir_file_onnx
from deepspike.deploy.targets import target_report
from deepspike.models.energy import PRESETS, EnergyPreset, parse_energy_preset, register_energy_preset
from deepspike.training.reload import load_run
from deepspike.training.run_setup import make_batches
from deepspike.training.runs import RunDir, check_not_run_file
from deepspike.training.runtime import autocast, autocast_dtype, model_device
from deepspike.training.training_setup import SPLITS


def analyze(
    run_dir: str | Path,
    out: str | Path | None = None,
    options: AnalysisOptions | None = None,
    qat_bits: tuple[int, ...] = (),
    qat_epochs: int | None = None,
    energy_presets: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Write ``analysis.json``, ``report.md`` and plots for a run into ``out`` (default ``RUN_DIR/analysis``)
    and return the analysis. ``energy_presets``: extra presets as ``name:mac=PJ,ac=PJ,spike=PJ``, priced in this
    analysis only (registered for this call, not for the process);
    ``qat_bits``: also retrain with quantisation-aware training, staged through these bit widths
    (``out/qat/bits<k>``), ``qat_epochs`` epochs each (None: 1). A bare string or number where a list is wanted is a
    one-line ``ConfigError``. ``qat_epochs`` without ``qat_bits``, and
    ``options.per_channel`` with neither ``options.bits`` nor ``qat_bits``, are one-line ``ConfigError``s (they
    would be ignored)."""
    if options is not None and not isinstance(options, AnalysisOptions):
        raise ConfigError(f"options must be an AnalysisOptions, e.g. ds.AnalysisOptions(limit=200), got "
                          f"{type(options).__name__}")
    if qat_epochs is not None and not qat_bits:
        raise ConfigError("--qat-epochs counts the epochs of each --qat stage; give it with --qat, e.g. --qat 8,4")
    if options is not None and options.per_channel and not options.bits and not qat_bits:
        raise ConfigError("--per-channel quantizes the weights of the --bits sweep and the --qat stages; give --bits "
                          "or --qat")
    qat_epochs = 1 if qat_epochs is None else qat_epochs
    if not isinstance(energy_presets, tuple | list):  # one string was read letter by letter: "bad energy preset 'c'"
        raise ConfigError(f"energy_presets must be a list of NAME:mac=PJ,ac=PJ,spike=PJ, e.g. ['chip:mac=1,ac=0.1'], "
                          f"got {shown_value(energy_presets)}")
    presets = [parse_energy_preset(text) for text in energy_presets]
    names = [p.name for p in presets]
    if len(set(names)) < len(names):
        raise ConfigError(f"energy presets given twice: {sorted({n for n in names if names.count(n) > 1})}")
    out = check_output_dir(out if out is not None else RunDir(run_dir).require().path / "analysis", "--out")
    if qat_bits:  # before the analysis: a bad stage was found only after it and the stages before it
        check_qat(out / "qat", qat_bits, qat_epochs, run_dir=run_dir)
    with _registered_for_this_call(presets):
        result = analyze_run(run_dir, out, options or AnalysisOptions())
    if qat_bits:
        per_channel = options.per_channel if options is not None else False
        result["qat"] = quantization_aware_retrain(run_dir, out / "qat", qat_bits, qat_epochs, per_channel)
        atomic_write_json(out / "qat.json", result["qat"])
    return result


@contextmanager
def _registered_for_this_call(presets: list[EnergyPreset]) -> Iterator[None]:
    """``presets`` in ``models.energy.PRESETS`` inside the block only: afterwards, also after an error, the registry
    is as it was (a preset of one ``analyze`` call stayed registered and was priced by every later analysis)."""
    saved = dict(PRESETS)
    try:
        for preset in presets:
            register_energy_preset(preset)
        yield
    finally:
        PRESETS.clear()
        PRESETS.update(saved)


def compare(
    runs: list[str | Path], preset: str = "45nm_fp32", limit: int | None = 1000, out: str | Path | None = None
) -> str:
    """A Markdown table of accuracy, latency, spikes, synaptic ops, energy and 4-bit accuracy across ``runs`` (a list
    of run folders, in the table's order); ``preset``: the energy preset the energy column is priced with (a
    built-in one or one a run's analysis stored); a run without ``analysis/analysis.json`` is analysed now on its
    first ``limit`` test samples (None: all). With ``out``, the table is also written (atomically) to that file,
    which may not be a run's own file nor an existing file other than an earlier table. Returns the table's text."""
    runs = _run_list(runs)
    if out is not None:
        check_output_file(out, "--out")
        check_not_run_file(out, "--out")
        _check_not_an_analysis(out, runs)
        _check_replaces_only_a_table(out)
    table = markdown_table(compare_runs(runs, preset, limit))
    if out is not None:
        atomic_write_text(Path(out), table)
    return table


def _check_not_an_analysis(out: str | Path, runs: list[str | Path]) -> None:
    """A one-line ``ConfigError`` when ``out`` would replace an analysis (``analysis.json``, ``report.md``, what
    ``deepspike analyze`` writes and ``compare`` reads) or one of the given inputs."""
    target = Path(out).resolve()
    if target.name in ("analysis.json", "report.md") or any(Path(r).resolve() == target for r in runs):
        raise ConfigError(f"--out {out} would replace an analysis or an input of this comparison; name another file, "
                          "e.g. comparison.md")


TABLE_START = "| " + " | ".join(COLUMNS[:3]) + " |"
"""How a table that ``compare`` wrote begins (its first three column headers)."""


def _check_replaces_only_a_table(out: str | Path) -> None:
    """A one-line ``ConfigError`` when ``out`` is an existing non-empty file that is no table ``compare`` wrote
    (``TABLE_START``): ``compare RUN --out recipe.yaml`` replaced the recipe (any file not a run's or an analysis's)
    with the table. An earlier comparison or an empty file may be replaced."""
    target = Path(out)
    if target.is_file() and target.stat().st_size > 0:
        with target.open("rb") as f:
            start = f.read(len(TABLE_START.encode()))
        if start != TABLE_START.encode():
            raise ConfigError(f"--out {out} exists and is not a table of compare; writing there would replace it: "
                              "choose another path")


def timestep_sweep(
    run_dirs: Sequence[str | Path], eval_steps: Sequence[int] | None, out: str | Path, split: str = "test",
    max_samples: int | None = None,
) -> tuple[list[dict], list[dict]]:
    """Accuracy of rate-coded runs against inference T (``eval_steps``: distinct whole numbers >= 1; None: 1, 2, 4,
    ..., 100, cut at the steps the samples hold for event-frame and sequence data, a fixed-T (PSN) net's own T
    only) and training T on ``split``
    (``train``, ``val``, ``test``), over the first ``max_samples`` samples (None: all), also written as CSV files
    and plots into folder ``out`` (``deepspike.analysis.timesteps``). A T whose input alone cannot fit in memory
    is refused before anything is allocated.

    Returns ``(by_inference, by_training)``: one row per run and ``eval_steps`` entry, then one row per run at its
    own evaluation T (sorted by training T); each row ``{run, train_T, inference_T, accuracy, samples}``."""
    if max_samples is not None and not is_whole(max_samples, 1):
        raise ConfigError(f"--max-samples must be >= 1, got {max_samples!r}")
    if split not in SPLITS:
        raise unknown_choice("split", split, SPLITS)
    if eval_steps is not None and not _distinct_steps(eval_steps):
        raise ConfigError(f"eval_steps must be a list of time steps (distinct whole numbers >= 1), e.g. [1, 4, 16], "
                          f"got {eval_steps!r}")
    return _timestep_sweep(_run_list(run_dirs), eval_steps, check_output_dir(out, "--out"), split, max_samples)


def _distinct_steps(steps: object) -> bool:
    """``steps`` is a non-empty list or tuple of distinct whole numbers >= 1 (a string, a bare number, 0, 2.5 or a
    step given twice is not: T = 0 scored the empty-time net's guess as an accuracy)."""
    return (isinstance(steps, Sequence) and not isinstance(steps, str) and len(steps) > 0
            and all(is_whole(t, 1) for t in steps) and len(set(steps)) == len(steps))


def _run_list(runs: Sequence[str | Path]) -> list[str | Path]:
    """``runs`` as a list of run folders; one path given alone (which would be read letter by letter) or none is a
    one-line ``ConfigError``."""
    if isinstance(runs, str | os.PathLike) or not isinstance(runs, Sequence):
        raise ConfigError(f"runs must be a list of run folders, e.g. [{str(runs)!r}], got {runs!r}")
    if not runs:
        raise ConfigError("no runs given: pass a list of run folders")
    if any(isinstance(r, str | os.PathLike) and not os.fspath(r).strip() for r in runs):  # Path(""): the current folder
        raise ConfigError("the run folder's path is empty; give the name of a run directory")
    return list(runs)


EXPORT_OPTIONS = ("dt", "fold_thresholds", "round_delays", "large", "t_window", "onnx_form", "onnx_reading")
MAX_CHECK_STEPS = 10_000
"""The most steps of ``export --check``'s sample input, ``[steps, 2, *input_shape]`` float32 spikes run through every
tool (2.6 GB for a 2x128x128 event camera's frames): 10**11 steps tried to allocate 51 TB and ended in a traceback."""


def export(run_dir: str | Path, path: str | Path | None = None, check: bool = False, steps: int | None = None,
           target: str | None = None, limit: int | None = None, onnx: str | Path | None = None,
           **options: Any) -> dict[str, Any]:
    """Write the run's checkpoint as a NIR graph (HDF5) at ``path``; ``options``: ``dt``, ``fold_thresholds``,
    ``round_delays`` (rate-coded nets; ``round_delays``: a net with learnable synaptic delays as the rounded net,
    each delay a whole step, as hardware runs it), ``large``, ``t_window`` (TTFS nets). Returns what was written.
    ``check``: also run the exported graph in every installed third-party NIR tool for ``steps`` steps and compare
    its output spikes with deepspike's (``result["check"]``; with ``round_delays``, the rounded net's; ``steps``
    default 1000, at most ``MAX_CHECK_STEPS``). ``target`` (``speck``, ``xylo``): the chip fit report
    (``result["target"]``; xylo: the float, quantised and chip accuracies on ``limit`` test samples, default all). An
    option given for a part not asked for (it would be ignored) or any other option is a one-line ``ConfigError``.
    ``onnx``: also write the rate-coded net as an ONNX model there (``deploy.onnx_files.export_run_onnx``; option
    ``onnx_form``: "step", the default, or "sequence"), checked by onnxruntime where it is installed
    (``result["onnx"]``). ``run_dir`` may also be a NIR file (any tool's): then only ``onnx`` is written, with
    ``dt``, ``onnx_form`` and ``onnx_reading`` ("rate" or "exact"; ``deploy.onnx_from_nir``)."""
    unknown = sorted(set(options) - set(EXPORT_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown export option {unknown[0]!r}; valid: {', '.join(EXPORT_OPTIONS)}")
    check_switches(check=check, fold_thresholds=options.get("fold_thresholds"),
                   round_delays=options.get("round_delays"))
    if RunDir(run_dir).path.is_file():  # RunDir: a run folder (or file) must be a path, in one line
        return _export_nir_file(run_dir, path, check, steps, target, limit, onnx, options)
    if options.pop("onnx_reading", None) is not None:
        raise ConfigError("--onnx-reading says how to read a NIR file given in place of a run; a run's net is read "
                          "as it was trained")
    onnx_form = options.pop("onnx_form", None)
    _refuse_options_without_their_part(path, check, steps, target, limit, options, onnx, onnx_form)  # first: an
    # option given alone was told 'export needs --nir PATH, ...' rather than which part it belongs to
    if path is None and not check and target is None and onnx is None:
        raise ConfigError("export needs --nir PATH, --onnx PATH, --check or --target")
    if path is not None:
        check_replaces_only_a_nir_file(path)
    if onnx is not None:
        check_replaces_only_an_onnx_file(onnx)
    report = target_report(run_dir, target, limit) if target is not None else None  # first: it may be refused
    graph = run_graph(run_dir, **options)[0] if path is not None else None  # built before either file is written:
    onnx_summary = None  # --nir refuses low-latency converted nets, --onnx TTFS nets; neither leaves the other's file
    if onnx is not None:
        onnx_options = {k: v for k, v in options.items() if k in ("dt", "fold_thresholds", "round_delays")}
        onnx_summary = export_run_onnx(run_dir, onnx, form=onnx_form or "step", **onnx_options)
    summary = write_graph(graph, path) if path is not None else {}
    if onnx_summary is not None:
        summary["onnx"] = onnx_summary
    if report is not None:
        summary["target"] = report
    if check:
        summary["check"] = check_run(run_dir, 1000 if steps is None else steps, options.get("dt", DEFAULT_DT),
                                     round_delays=bool(options.get("round_delays", False)))
    return summary


def _export_nir_file(source, path, check: bool, steps, target, limit, onnx, options: dict) -> dict[str, Any]:
    """``export MODEL.nir --onnx PATH``: a NIR file as ONNX; anything but ``--onnx`` and its options is refused."""
    given = [name for name, value in (("--nir", path), ("--check", check or None), ("--steps", steps),
                                      ("--target", target), ("--limit", limit)) if value is not None]
    given += [f"--{k.replace('_', '-')}" for k, v in options.items()
              if v not in (None, False) and k not in ("dt", "onnx_form", "onnx_reading")]
    if given or onnx is None:
        raise ConfigError(f"{source} is a file: export converts a NIR file with --onnx PATH only (its options "
                          f"--dt, --onnx-form, --onnx-reading){'; not ' + ', '.join(given) if given else ''}")
    form, reading = options.get("onnx_form") or "step", options.get("onnx_reading") or "rate"
    return {"onnx": export_nir_file_onnx(source, onnx, form=form, dt=options.get("dt"), reading=reading)}


def export_pretrained(name: str, onnx: str | Path, onnx_form: str | None = None) -> dict[str, Any]:
    """The shipped pretrained entry ``name`` (``zoo()``) as an ONNX model at ``onnx`` (``onnx_form``: "step", the
    default, or "sequence"; ``deploy.onnx_files.export_pretrained_onnx``): what ``deepspike zoo NAME --onnx PATH``
    prints, ``{"onnx": summary}``."""
    if onnx_form is not None and onnx_form not in ONNX_FORMS:
        raise unknown_choice("--onnx-form", onnx_form, ONNX_FORMS)
    return {"onnx": export_pretrained_onnx(name, onnx, form=onnx_form or "step")}


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first 8 bytes of an HDF5 file, which a NIR file is


def check_replaces_only_a_nir_file(path: str | Path) -> None:
    """A one-line ``ConfigError`` when ``--nir PATH`` would write over an existing file that is not an HDF5 (NIR)
    file: ``--nir RUN/analysis/analysis.json`` replaced the analysis with the graph. An earlier NIR file or an empty
    file may be replaced; a run's own files, folders and devices are refused first (``check_not_run_file``,
    ``check_output_file``)."""
    target = check_output_file(path, "--nir")
    check_not_run_file(target, "--nir")
    if target.is_file() and target.stat().st_size > 0:
        with target.open("rb") as f:
            if f.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
                raise ConfigError(f"--nir {path} exists and is not a NIR file; writing there would replace it: "
                                  "choose another path")


def _refuse_options_without_their_part(path, check: bool, steps, target, limit, options: dict, onnx=None,
                                       onnx_form=None) -> None:
    """A one-line ``ConfigError`` for an export option whose part (``--nir``, ``--onnx``, ``--check``, ``--target
    xylo``) was not asked for: ``--target speck --dt -7 --steps -3`` exited 0, every option ignored."""
    if onnx_form is not None and onnx is None:
        raise ConfigError("--onnx-form shapes the ONNX file written with --onnx PATH; give --onnx")
    if onnx_form is not None and onnx_form not in ONNX_FORMS:
        raise unknown_choice("--onnx-form", onnx_form, ONNX_FORMS)
    if onnx is not None and path is not None and Path(onnx).resolve() == Path(path).resolve():
        raise ConfigError(f"--nir and --onnx name the same file {path}: give each its own")
    if limit is not None and target != "xylo":
        raise ConfigError("--limit counts the test samples of --target xylo's accuracy; give it with --target xylo")
    if steps is not None and not check:
        raise ConfigError("--steps counts the steps of --check's sample input; give it with --check")
    if steps is not None and not is_whole(steps, 1, MAX_CHECK_STEPS):
        raise ConfigError(f"--steps must be a whole number from 1 to {MAX_CHECK_STEPS:,}, got {shown_value(steps)}")
    file_only = [f"--{key.replace('_', '-')}" for key in ("fold_thresholds", "large", "t_window")
                 if options.get(key) not in (None, False)]
    if path is None and file_only and (onnx is None or file_only != ["--fold-thresholds"]):
        raise ConfigError(f"{', '.join(file_only)} shape the NIR file written with --nir PATH; give --nir")
    if path is None and onnx is None and not check and (options.get("dt") is not None or options.get("round_delays")):
        raise ConfigError("--dt and --round-delays apply to --nir PATH, --onnx PATH and --check; give one of them")


def evaluate_nir(path: str | Path, data: str, split: str = "test", timesteps: int | None = None,
                 encoder: str | None = None, dt: float | None = None, limit: int | None = None) -> dict[str, Any]:
    """Score the rate-coded NIR file ``path`` (deepspike's or another tool's) on ``split`` of data set ``data``:
    ``{"accuracy", "samples", "timesteps", "coding", "decode", "nir"}`` (``deploy.nir_eval``). ``timesteps`` and
    ``encoder`` (the input coding) override the file's metadata and are needed where it has none; ``dt`` as
    ``deploy.from_nir``; ``limit``: the first samples only."""
    if split not in SPLITS:
        raise unknown_choice("split", split, SPLITS)
    return _evaluate_nir(path, data, split=split, timesteps=timesteps, coding=encoder, dt=dt, limit=limit)


def spike_activity(run_dir: str | Path) -> Activity:
    """Spikes per sample, firing rate and per-layer rates of a rate-coded run's checkpoint on its test split, run as
    it was trained and scored (a ``train.precision=bf16`` run under bfloat16 autocast, as ``analyze`` runs it). A run
    whose net has no rate-coded spiking layer (an ``ann`` or TTFS run) is a one-line ``ConfigError``. The test split is
    run one batch at a time (it was first gathered whole on the net's device: all of an ImageNet-sized split)."""
    config, parts, _ = load_run(run_dir)
    device = model_device(parts.model)
    with autocast(device, autocast_dtype(config.train.precision)):
        activity = measure_activity(parts.model, make_batches(config, parts.data, "test", device, training=False))
    if not activity.layers:
        raise ConfigError(f"{run_dir}: its {config.method.name} net has no rate-coded spiking layer to count spikes of")
    return activity


__all__ = ["AnalysisOptions", "analyze", "compare", "export", "export_pretrained", "spike_activity", "timestep_sweep"]
