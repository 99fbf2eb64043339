"""``analyze_run``: what the analysis knows about one run, as ``analysis.json``, a Markdown report, PNGs.

Sections: accuracy; activity (spikes per inference incl. input spikes, per-layer rates and sparsity,
latency: time steps T or TTFS decision time; the neurons' own state updates, ``neurons.update_cost``); operations
(ANN MACs from the spec; SNN ACs/MACs counted from the actual spikes x fan-out; ratio); energy per preset, without
and with the neurons' updates; hardware mapping; and sweeps (accuracy vs time steps, post-training quantization
bits, weight-noise SNR, spike deletion or jitter). A competitive STDP net (``wta_stdp``) counts its own spikes
(``analysis.competitive``) and gets the weight sweeps only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepspike.analysis import plots, sweeps
from deepspike.analysis.competitive import competitive_activity, competitive_layer, competitive_mesh
from deepspike.analysis.hardware import check_pe_capacities, map_to_mesh
from deepspike.analysis.quantize import MAX_BITS
from deepspike.analysis.raster import record_raster
from deepspike.analysis.traces import record_traces
from deepspike.core.atomic import atomic_write_json, atomic_write_text, remove_file, staged_files
from deepspike.core.errors import ConfigError
from deepspike.core.options import check_switches, is_finite, is_whole
from deepspike.methods.rate_network import RateNetwork
from deepspike.models.costs import count_macs, count_parameters
from deepspike.models.energy import PRESETS, energy_table, get_energy_preset
from deepspike.training.reload import load_run
from deepspike.training.run_setup import make_batches
from deepspike.training.runs import RunDir
from deepspike.training.runtime import autocast, autocast_dtype, model_device

DEFAULT_DELETIONS = (0.0, 0.1, 0.2, 0.3, 0.5)
DEFAULT_JITTERS = (0.0, 0.01, 0.02, 0.05, 0.1)
DEFAULT_RASTER, DEFAULT_TRACES = 32, 4


@dataclass
class AnalysisOptions:
    """limit: test samples used (None = all); bits/snrs/deletions/jitters: sweep points (empty = skip);
    per_channel: quantize per output channel; preset: energy preset of the hardware mapping; raster: neurons per
    spiking layer in the spike raster of the first test sample (``analysis.raster``; rate-coded nets; 0 = none);
    traces: neurons per spiking layer whose membrane is traced on that sample (``analysis.traces``; 0 = none).
    The options of one coding are None by default (the defaults above where the net has that coding): deletions,
    raster and traces read rate-coded spikes, jitters TTFS spike times; one given for a net without that coding is
    a one-line ``ConfigError`` (it would be ignored)."""

    limit: int | None = 1000
    bits: tuple[int, ...] = (32, 8, 6, 4, 3, 2)
    per_channel: bool = False
    snrs: tuple[float, ...] = (40.0, 30.0, 24.0, 20.0, 15.0, 10.0)
    deletions: tuple[float, ...] | None = None
    jitters: tuple[float, ...] | None = None
    timesteps: bool = True
    noise_repeats: int = 1
    preset: str = "45nm_fp32"
    pe_neurons: int = 256
    pe_weights: int = 65_536
    plots: bool = True
    raster: int | None = None
    traces: int | None = None
    extra: dict = field(default_factory=dict)


def load_test_batches(run_dir: str | Path, limit: int | None):
    """``(config, parts, batches)``: the run reloaded and its first ``limit`` test samples as a list."""
    check_limit(limit)
    config, parts, _ = load_run(run_dir)
    device = model_device(parts.model)
    batches, n = [], 0
    for x, y in make_batches(config, parts.data, "test", device):
        if limit is not None and n + len(y) > limit:
            x, y = x[: limit - n], y[: limit - n]
        batches.append((x, y))
        n += len(y)
        if limit is not None and n >= limit:
            break
    return config, parts, batches


def check_limit(limit: int | None) -> None:
    """A one-line ``ConfigError`` unless ``limit`` (test samples) is None (all) or an integer >= 1: ``True`` analysed
    one sample and 2.5 died in a TypeError slicing the batches."""
    if limit is not None and not is_whole(limit, 1):
        raise ConfigError(f"--limit must be an integer >= 1 (test samples), got {limit!r}")


def analyze_run(
    run_dir: str | Path, out_dir: str | Path | None = None, options: AnalysisOptions | None = None
) -> dict[str, Any]:
    """Analyse the run in ``run_dir``; with ``out_dir`` write ``analysis.json``, ``report.md``, PNGs there.

    A run trained with ``train.precision=bf16`` is measured under the same autocast as it was trained and scored,
    so its accuracy is the one its summary reports. The result records ``checkpoint_sha256``
    (``RunDir.checkpoint_digest``) and the run's absolute ``run_path``, by which ``compare`` tells an analysis of
    the run's current weights from one the run has since trained past."""
    o = options or AnalysisOptions()
    _check_counts(o)
    checkpoint_sha256 = RunDir(run_dir).checkpoint_digest()  # read first: what the analysis measures
    config, parts, batches = load_test_batches(run_dir, o.limit)
    result: dict[str, Any] = {
        "run": str(run_dir),
        "method": config.method.name,
        "model": config.model.name,
        "dataset": config.data.name,
        "samples": sum(len(y) for _, y in batches),
        "parameters": count_parameters(parts.method.built_architecture(parts.arch)),
        "checkpoint_sha256": checkpoint_sha256,
        "run_path": str(Path(run_dir).resolve()),
    }
    competitive = competitive_layer(parts.model)
    if competitive is not None:  # a net that simulates itself in one kernel (wta_stdp): it counts its own spikes
        histograms = _measure_competitive(parts, competitive, batches, o, result)
    else:
        with autocast(model_device(parts.model), autocast_dtype(config.train.precision)):
            histograms = _measure(parts, batches, o, result)
    if out_dir is not None:
        write_report(result, histograms, Path(out_dir), o.plots)
    return result


def _check_counts(o: AnalysisOptions) -> None:
    """``ConfigError`` before anything is loaded when the test samples (``limit``) or the noise draws per SNR
    (``noise_repeats``) are not None / an integer >= 1, the raster's or the traces' neuron count is not an integer
    >= 0 (checked for every net, also those that draw neither), the PE capacities are not integers >= 1 or the energy
    preset is unknown (those two were found only after the accuracy and the activity had been measured), or a switch
    (``per_channel``, ``timesteps``, ``plots``) is not True or False (``per_channel="no"``, a true text, quantized per
    channel)."""
    check_switches(per_channel=o.per_channel, timesteps=o.timesteps, plots=o.plots)
    check_limit(o.limit)
    check_pe_capacities(o.pe_neurons, o.pe_weights)
    get_energy_preset(o.preset)
    if not is_whole(o.noise_repeats, 1):  # 0 divided by zero in the mean over the draws
        raise ConfigError(f"noise_repeats must be an integer >= 1 (noise draws per SNR), got {o.noise_repeats!r}")
    for flag, n in (("raster", o.raster), ("traces", o.traces)):
        if n is not None and not is_whole(n, 0):
            raise ConfigError(f"--{flag} must be an integer >= 0 (neurons per layer; 0 = none), got {n!r}")
    _check_sweep_points(o)


MAX_POINT = 1e300
"""The largest SNR (dB) or jitter a sweep takes: its plot's axis, the points' span plus a margin, must stay a finite
float (``--snr 40,1.7e308`` ended in matplotlib's "arange: cannot compute length" after some plots were written)."""


def _check_sweep_points(o: AnalysisOptions) -> None:
    """``ConfigError`` before anything is loaded for sweep points no sweep can run: bits not whole numbers from 2 to 64,
    SNRs beyond +-1e300 (``MAX_POINT``), deletion probabilities outside [0, 1], jitters outside [0, 1e300], or points
    not given as a list (the sweeps check each point too, but only after the accuracy and every earlier sweep had run);
    a point given twice (``--bits 4,4`` measured 4 bits twice, to the same figure: a repeated row in report.md and
    analysis.json)."""
    checks = (("bits", o.bits, lambda v: is_whole(v, 2, MAX_BITS), f"whole numbers from 2 to {MAX_BITS}"),
              ("snrs", o.snrs, lambda v: is_finite(v) and abs(v) <= MAX_POINT, "numbers (dB) from -1e300 to 1e300"),
              ("deletions", o.deletions, lambda v: is_finite(v) and 0 <= v <= 1, "probabilities in [0, 1]"),
              ("jitters", o.jitters, lambda v: is_finite(v) and 0 <= v <= MAX_POINT, "numbers from 0 to 1e300"))
    for name, points, ok, expected in checks:
        if points is None:
            continue
        if not isinstance(points, tuple | list):
            raise ConfigError(f"{name} must be a list of sweep points ({expected}), got {points!r}")
        bad = [v for v in points if not ok(v)]
        if bad:
            raise ConfigError(f"bad {name} sweep point {bad[0]!r}: expected {expected}")
        twice = [v for i, v in enumerate(points) if v in points[:i]]
        if twice:  # measured again to the same figure (the noise draws are seeded): a repeated row in the report
            raise ConfigError(f"{name} sweep point {twice[0]!r} is given twice in {tuple(points)}: give each point "
                              "once")


def _measure(parts, batches: list, o: AnalysisOptions, result: dict[str, Any]) -> list[dict]:
    """Add the accuracy, costs, compacted histograms and sweeps of ``parts.model`` on ``batches`` to ``result``;
    returns the full histograms (for the plots)."""
    model, method = parts.model, parts.method
    result["accuracy"] = sweeps.accuracy(model, method, batches)
    activity = sweeps.monitor_run(model, batches)
    _check_neurons_seen(model, activity)
    histograms = activity.pop("histograms")
    result.update(cost_sections(parts.arch, activity if activity["layers"] else None, o,
                                method.built_architecture(parts.arch)))
    result["histograms"] = [_compact(h) for h in histograms]
    _add_sweeps(result, accuracy_sweeps(model, method, batches, activity, o))
    rate_coded = bool(sweeps.takes_timesteps(model) and activity["layers"])
    _refuse_unused({"raster": o.raster, "traces": o.traces}, rate_coded, "rate-coded spikes")
    raster, traces = _or(o.raster, DEFAULT_RASTER), _or(o.traces, DEFAULT_TRACES)
    result["raster"] = record_raster(model, batches[0][0][:1], raster) if rate_coded and raster else []
    result["traces"] = record_traces(model, batches[0][0][:1], traces) if rate_coded and traces else []
    return histograms


def _measure_competitive(parts, layer, batches: list, o: AnalysisOptions, result: dict[str, Any]) -> list[dict]:
    """``_measure`` of a competitive STDP net (``analysis.competitive``: its spikes and synaptic events counted by
    the layer, every show included): accuracy, costs and the weight sweeps (bits, SNR); no histograms, raster or
    traces (no neuron module passes its spikes on), so those options and spike deletion/jitter are refused."""
    _refuse_unused({"deletion": o.deletions, "jitter": o.jitters, "raster": o.raster, "traces": o.traces}, False,
                   "spikes of neuron modules (a wta_stdp net simulates itself in one kernel)")
    result["accuracy"] = sweeps.accuracy(parts.model, parts.method, batches)
    activity = competitive_activity(layer, batches)
    result.update(cost_sections(parts.arch, activity, o))
    result["hardware"] = competitive_mesh(layer, activity, o.pe_neurons, o.pe_weights, get_energy_preset(o.preset))
    result["histograms"], result["raster"], result["traces"] = [], [], []
    _add_sweeps(result, weight_sweeps(parts.model, parts.method, batches, o))
    return []


def _add_sweeps(result: dict[str, Any], sweep_rows: dict[str, list[dict]]) -> None:
    """``result["sweeps"]`` and the accuracy at 4 weight bits (``accuracy_4bit``, None without that point)."""
    result["sweeps"] = sweep_rows
    result["accuracy_4bit"] = next((r["accuracy"] for r in sweep_rows.get("bits", []) if r["bits"] == 4), None)


def _check_neurons_seen(model, activity: dict[str, Any]) -> None:
    """``ConfigError`` for a rate-coded network in which no spiking neuron was found: its costs would be the
    ANN's (a neuron of one's own needs the class attribute ``is_spiking_neuron = True``)."""
    if isinstance(model, RateNetwork) and not activity["layers"]:
        raise ConfigError("analysis found no spiking neuron in this rate-coded network, so it would report the "
                          "ANN's costs; give a neuron of your own the class attribute is_spiking_neuron = True")


def cost_sections(arch, activity: dict | None, o: AnalysisOptions, built=None) -> dict[str, Any]:
    """``activity`` (None for a net without spiking layers), ``latency``, ``operations`` (ANN MACs against the
    SNN's synaptic operations), ``energy`` per preset and the ``hardware`` mesh mapping of one analysis.

    ``built``: the architecture the method built the net of (``Method.built_architecture``; None: ``arch``), which
    the mesh maps: stbp's voting classifier of ``K G`` neurons was mapped as the spec's ``K``, its weights a
    ``G``-th of theirs. The ANN reference is the spec's (``arch``).

    The ANN reference is one pass of the spec's layers (``count_macs``), except for a net with recurrent or delayed
    layers (``Linear(recurrent=True)``, ``Linear(delays=D)``), which has no one-pass ANN: its reference is the
    net of the same shape (an RNN, a net with delayed synapses) run over the analysis' T steps, ``T * count_macs``
    (``operations["ann_reference"]``: ``rnn_over_T``). ``latency`` is the TTFS decision time (mean first output spike
    of the samples that had one), else the time steps T; None for a TTFS net whose outputs never spiked."""
    ann_macs = count_macs(arch)
    temporal = any(getattr(v.layer, "recurrent", False) or getattr(v.layer, "delayed", False) for v in arch.visits())
    if temporal and activity is not None:
        ann_macs *= int(activity["timesteps"])
    latency = None  # also for a TTFS net no sample of which had an output spike: no decision time (it read T = 0)
    if activity is not None and activity["decision_time_mean"] is not None:
        latency = {"kind": "decision_time", "value": activity["decision_time_mean"]}
    elif activity is not None and activity.get("undecided_fraction") is None:
        latency = {"kind": "timesteps", "value": activity["timesteps"]}
    snn = activity or {}
    snn_ops = snn.get("synops_per_sample")
    operations = {
        "ann_macs_per_sample": ann_macs,
        "snn_synops_per_sample": snn_ops,
        "snn_acs_per_sample": snn.get("acs_per_sample"),
        "snn_macs_per_sample": snn.get("macs_per_sample"),
        "snn_over_ann": snn_ops / ann_macs if snn_ops is not None and ann_macs else None,
        "ann_reference": "rnn_over_T" if temporal and activity is not None else "one_pass",
    }
    preset = get_energy_preset(o.preset)  # checked for every run, used where there are spikes
    return {
        "activity": activity,
        "latency": latency,
        "operations": operations,
        "energy": energy_table(ann_macs, activity),
        "energy_presets": {k: vars(p) for k, p in PRESETS.items()},
        "hardware": map_to_mesh(built or arch, activity, o.pe_neurons, o.pe_weights, preset if activity else None),
    }


def accuracy_sweeps(model, method, batches, activity: dict, o: AnalysisOptions) -> dict[str, list[dict]]:
    """Accuracy against time steps (time-stepped nets), weight bits, weight-noise SNR, spike deletion (rate
    coding) and spike-time jitter (closed-form TTFS layers, ``sweeps.has_spike_times``; none for a windowed TTFS
    net, whose ``--jitter`` is a one-line ``ConfigError``), as ``o`` asks."""
    sw: dict[str, Any] = {}
    if o.timesteps and sweeps.runs_at_any_timesteps(model):  # not a PSN net: it runs at its own T only
        sw["timesteps"] = sweeps.sweep_timesteps(model, method, batches, sweeps.timestep_points(model.eval_timesteps))
    sw.update(weight_sweeps(model, method, batches, o))
    coding = {layer["coding"] for layer in activity["layers"]}
    _refuse_unused({"deletion": o.deletions}, "rate" in coding, "rate-coded spikes")
    _refuse_unused({"jitter": o.jitters}, "ttfs" in coding, "TTFS spike times")
    times = sweeps.has_spike_times(model)  # not a windowed TTFS net: its jitter sweep moved its input values only
    if o.jitters and not times:
        raise ConfigError("--jitter moves the spike times of closed-form TTFS layers; a windowed TTFS net "
                          "(ttfs_window, convert --to ttfs) passes on the values its spikes code: leave it out")
    deletions, jitters = _or(o.deletions, DEFAULT_DELETIONS), _or(o.jitters, DEFAULT_JITTERS)
    if "rate" in coding and deletions:
        sw["deletion"] = sweeps.sweep_deletion(model, method, batches, deletions)
    if times and jitters:
        sw["jitter"] = sweeps.sweep_jitter(model, method, batches, jitters)
    return sw


def weight_sweeps(model, method, batches, o: AnalysisOptions) -> dict[str, list[dict]]:
    """Accuracy against post-training weight bits and additive weight-noise SNR, as ``o`` asks (empty: skipped)."""
    sw: dict[str, list[dict]] = {}
    if o.bits:
        sw["bits"] = sweeps.sweep_bits(model, method, batches, o.bits, o.per_channel)
    if o.snrs:
        sw["snr"] = sweeps.sweep_snr(model, method, batches, o.snrs, o.noise_repeats)
    return sw


def _or(value, default):
    """``value``, or ``default`` where it is None (not given)."""
    return default if value is None else value


def _refuse_unused(given: dict[str, Any], applies: bool, what: str) -> None:
    """A one-line ``ConfigError`` naming the options of ``given`` that were set (not None, not empty or 0) for a net
    without ``what`` (``applies`` False): they would be ignored."""
    named = [f"--{flag}" for flag, value in given.items() if value]
    if named and not applies:
        raise ConfigError(f"{', '.join(named)} reads {what}, which this net has none of: leave it out")


def _compact(h: dict) -> dict:
    """A histogram without the raw spike times: 40 bins of the TTFS times, or the per-step counts."""
    out = {"name": h["name"], "coding": h["coding"], "step_counts": h["step_counts"]}
    if h["times"]:
        counts, edges = np.histogram(np.asarray(h["times"]), bins=40)
        out.update(time_counts=counts.tolist(), time_edges=edges.tolist())
    return out


SWEEP_PLOTS = {
    "timesteps": ("timesteps", "time steps", "Accuracy vs time steps", True, False),
    "bits": ("bits", "weight bits", "Post-training weight quantization", True, True),
    "snr": ("snr_db", "weight SNR (dB)", "Additive weight noise", False, True),
    "deletion": ("p_delete", "spike deletion probability", "Spike deletion", False, False),
    "jitter": ("jitter", "relative spike-time jitter", "Spike-time jitter", False, False),
}
"""Sweep name -> (column, x label, title, log x axis, inverted x axis) of its plot."""
FIGURE_FILES = ("activity.png", "spike_times.png", "raster.png", "traces.png", *(f"{k}.png" for k in SWEEP_PLOTS))
"""Every PNG an analysis may draw (``_write_plots``)."""


def write_report(result: dict, histograms: list[dict], out_dir: Path, make_plots: bool = True) -> None:
    """Write the PNGs, ``report.md`` and, last, ``analysis.json`` into ``out_dir``.

    The PNGs and ``report.md`` are drawn into a hidden folder inside ``out_dir`` first (``core.atomic.staged_files``)
    and moved into place only when all are done: a plot that fails midway left the PNGs drawn before it beside the
    earlier analysis.json and report.md; now it leaves the earlier report as it was. ``analysis.json`` is what
    ``deepspike compare`` reads as a finished analysis, so the older one is removed before the new files are moved in
    and the new one written after them. A figure of an earlier analysis that this one does not draw
    (``FIGURE_FILES``: a sweep or raster left out now, or no plots) is removed, so every PNG in ``out_dir`` is of
    the analysis beside it; other files in ``out_dir`` are left alone."""
    with staged_files(out_dir, (*FIGURE_FILES, "report.md")) as staging:
        figures = _write_plots(result, histograms, staging) if make_plots else []
        atomic_write_text(staging / "report.md", markdown_report(result, figures))
        remove_file(out_dir / "analysis.json")
    atomic_write_json(out_dir / "analysis.json", result, indent=2, default=str)  # strict: non-finite -> null


def _write_plots(result: dict, histograms: list[dict], out_dir: Path) -> list[tuple[str, Path]]:
    """Save the analysis' PNGs into ``out_dir``; (title, path) of each, in the report's order."""
    figures = []
    act = result["activity"]
    if act:
        figures.append(("Spike activity per layer", plots.plot_activity(act["layers"], out_dir / "activity.png")))
    if histograms:  # none where the net counts its own spikes (analysis.competitive)
        times = plots.plot_spike_times(histograms, out_dir / "spike_times.png", act["decision_time_mean"])
        figures.append(("Spike times / spikes per step per layer", times))
    if result["raster"]:
        figures.append(("Spike raster of the first test sample", plots.plot_raster(result["raster"],
                                                                                     out_dir / "raster.png")))
    if any("skipped" not in r for r in result["traces"]):
        figures.append(("Membrane traces of the first test sample", plots.plot_traces(result["traces"],
                                                                                        out_dir / "traces.png")))
    for key, (col, xlabel, title, log_x, inv) in SWEEP_PLOTS.items():
        if result["sweeps"].get(key):
            path = plots.plot_curve(result["sweeps"][key], col, out_dir / f"{key}.png", xlabel, title, log_x, inv)
            figures.append((title, path))
    return figures


def _fmt(v, spec: str = ".4g") -> str:
    return "-" if v is None else format(v, spec)


def markdown_report(result: dict, figures: list[tuple[str, Path]] = ()) -> str:
    """The Markdown report of one analysis: summary, layer tables, energy, hardware mapping, sweeps, plots."""
    lines = _summary_lines(result) + _layer_lines(result["activity"]) + _energy_lines(result)
    lines += _hardware_lines(result["hardware"]) + _trace_lines(result.get("traces", []))
    for key, rows in result["sweeps"].items():
        col = next(k for k in rows[0] if k not in ("accuracy", "per_channel", "relative"))
        lines += ["", f"## Sweep: {key}", "", f"| {col} | accuracy (%) |", "|---:|---:|"]
        lines += [f"| {r[col]} | {100 * r['accuracy']:.2f} |" for r in rows]
    if figures:
        lines += ["", "## Plots", ""] + [f"![{title}]({path.name})" for title, path in figures]
    return "\n".join(lines) + "\n"


def _summary_lines(result: dict) -> list[str]:
    act, ops = result["activity"], result["operations"]
    lines = [
        f"# Analysis of `{result['run']}`",
        "",
        f"method **{result['method']}**, model **{result['model']}**, data **{result['dataset']}**, "
        f"{result['samples']} test samples, {result['parameters']:,} parameters",
        "",
        f"- accuracy: **{100 * result['accuracy']:.2f}%**",
    ]
    if result["latency"]:
        lines.append(f"- latency: {result['latency']['kind']} = {_fmt(result['latency']['value'])}"
                     + _undecided_note(result["latency"], act))
    elif act and act.get("undecided_fraction"):
        lines.append("- latency: none (no sample had an output spike: no decision time)")
    if act:
        lines += [
            f"- spikes per inference: {act['spikes_per_sample']:,.1f} "
            f"(input {act['input_spikes_per_sample']:,.1f}, neurons {act['neuron_spikes_per_sample']:,.1f})",
            f"- sparsity (fraction of neurons that fired): {act['sparsity']:.3f}",
        ]
    return lines + [
        f"- ANN MACs per inference: {ops['ann_macs_per_sample']:,}"
        + (" (a net of the same shape over the T steps)" if ops.get("ann_reference") == "rnn_over_T" else ""),
        f"- SNN synaptic ops per inference: {_fmt(ops['snn_synops_per_sample'], ',.0f')} "
        f"(ACs {_fmt(ops['snn_acs_per_sample'], ',.0f')}, MACs {_fmt(ops['snn_macs_per_sample'], ',.0f')}); "
        f"SNN / ANN = {_fmt(ops['snn_over_ann'])}",
        *_update_lines(act),
        "",
    ]


def _undecided_note(latency: dict, act: dict | None) -> str:
    """Where some samples' outputs never spiked, how many: the decision time is the mean over the others only (90 %
    undecided samples read as a short latency)."""
    undecided = (act or {}).get("undecided_fraction")
    if latency["kind"] != "decision_time" or not undecided:
        return ""
    return f" (over the decided samples; {100 * undecided:.1f}% had no output spike)"


def _update_lines(act: dict | None) -> list[str]:
    """The neurons' own state updates per inference (``neurons.update_cost``), or the layers that leave them
    unpriced."""
    if not act or "unpriced_update_layers" not in act:  # an analysis of before session 34
        return []
    if act["unpriced_update_layers"]:
        return [f"- neuron state updates: not priced (layers {', '.join(act['unpriced_update_layers'])}: TTFS, or a "
                "neuron without update_ops), so there is no SNN + updates energy"]
    return [f"- neuron state updates per inference: MACs {act['update_macs_per_sample']:,.0f}, "
            f"ACs {act['update_acs_per_sample']:,.0f} (not in the synaptic ops)"]


def _trace_lines(traces: list[dict]) -> list[str]:
    """The membrane-trace table: per layer the neurons traced, how many fired, and the highest membrane of the
    silent ones over their threshold (how close a quiet neuron came to firing), or why the layer was skipped."""
    if not traces:
        return []
    lines = ["", "## Membrane traces (first test sample)", "",
             "| layer | neurons traced | of them fired | silent ones' highest membrane / threshold |",
             "|---|---:|---:|---:|"]
    for r in traces:
        if "skipped" in r:
            lines.append(f"| {r['layer']} | skipped: {r['skipped']} | | |")
            continue
        silent = [c for c, f in enumerate(r["fired"]) if not f]
        ratios = [v[c] / th[c] for v, th in zip(r["membrane"], r["threshold"], strict=True) for c in silent if th[c]]
        lines.append(f"| {r['layer']} | {len(r['shown'])} of {r['neurons']} | {sum(r['fired'])} | "
                     f"{_fmt(max(ratios) if ratios else None, '.3f')} |")
    return lines


def _layer_lines(act: dict | None) -> list[str]:
    if not act:
        return []
    lines = [
        "## Layers",
        "",
        "| layer | coding | neurons | spikes/sample | rate | sparsity |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {d['name']} | {d['coding']} | {d['neurons']} | {d['spikes_per_sample']:.1f} | {d['rate']:.4f} "
        f"| {d['sparsity']:.3f} |"
        for d in act["layers"]
    ]
    lines += [
        "",
        "| synaptic layer | type | events/sample | ACs/sample | MACs/sample |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {s['name']} | {s['type']} | {s['events_per_sample']:,.1f} | {s['acs_per_sample']:,.0f} "
        f"| {s['macs_per_sample']:,.0f} |"
        for s in act["synapses"]
    ]
    return lines + [""]


def _energy_lines(result: dict) -> list[str]:
    lines = [
        "## Energy per inference",
        "",
        "SNN: synaptic operations and spikes; + updates: also every neuron's own state update at every step.",
        "",
        "| preset | ANN (nJ) | SNN (nJ) | ANN / SNN | SNN + updates (nJ) | ANN / (SNN + updates) | source |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, e in result["energy"].items():
        nj = [None if v is None else v / 1000 for v in (e["ann_pj"], e["snn_pj"], e.get("snn_with_updates_pj"))]
        lines.append(
            f"| {name} | {_fmt(nj[0])} | {_fmt(nj[1])} | {_fmt(e['ann_over_snn'])} | {_fmt(nj[2])} "
            f"| {_fmt(e.get('ann_over_snn_with_updates'))} | {result['energy_presets'][name]['source']} |"
        )
    return lines


def _hardware_lines(hw: dict) -> list[str]:
    lines = [
        "",
        "## Hardware mapping (YOSO-like mesh, zhang2021 IV.B)",
        "",
        f"PE capacity N = {hw['pe_neurons']} neurons, W = {hw['pe_weights']} weights: "
        f"{hw['total_pes']} PEs on a {hw['grid_side']} x {hw['grid_side']} grid; "
        f"routed spike packets per inference: {_fmt(hw['packets_per_sample'], ',.0f')}",
        "",
        "| layer | neurons | weights | PEs |",
        "|---|---:|---:|---:|",
    ]
    return lines + [f"| {d['name']} | {d['neurons']} | {d['weights']} | {d['pes']} |" for d in hw["layers"]]
