"""What ``convert_run`` writes into the converted run directory.

``config.yaml`` (method ``converted`` with the thresholds) and ``checkpoint.pt`` (so ``deepspike eval``
works), ``thresholds.json``, ``accuracy_vs_timesteps.csv/.png`` (Fig. 4), ``spike_counts.csv/.png``
(cumulative spikes per layer and sample, Fig. 5), ``operations.json`` (SNN synaptic operations / ANN MACs,
section 7.4, and the SNN/ANN energy per reported T) and ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from torch import nn

from deepspike.config.load import resolve_method_section
from deepspike.config.schema import RunConfig
from deepspike.conversion.accuracy_sweep import AccuracySweep
from deepspike.conversion.calibration import sent_scale
from deepspike.core.atomic import atomic_write_json, atomic_write_text
from deepspike.core.plotting import pyplot, save_figure
from deepspike.methods.converted import ConvertedOptions
from deepspike.models.costs import layer_costs
from deepspike.models.energy import PRESETS, energy_table
from deepspike.models.spec import Architecture
from deepspike.training.runs import RunDir

COMPARISON = "comparison.json"
"""What ``conversion.comparison`` writes first in its ``--out`` (with ``accuracy_vs_timesteps.png``, a converted run's
figure name): a folder that holds it is no place for a converted run, nor a converted run's for a comparison."""


def save_converted_run(
    out_dir: Path, config: RunConfig, method_section: dict, snn: nn.Module, epoch: int, source_run: str
) -> None:
    """``config.yaml`` (the ANN run's config with the converted net's ``method_section``, e.g. ``{"name": "converted",
    **options}``, and ``train.precision: fp32``: the conversion simulates and scores the SNN in float32, so
    ``eval`` and ``analyze`` must too, whatever the ANN trained in) and ``checkpoint.pt``: written last, just
    before the summary, so that a conversion killed on the way leaves no run in ``out_dir`` and the same
    ``--out`` takes the command again."""
    run = RunDir(out_dir)
    run.create()
    method = resolve_method_section(method_section)
    train = dataclasses.replace(config.train, precision="fp32")  # converted nets are simulated in float32
    run.write_config(dataclasses.replace(config, method=method, train=train))
    run.write_checkpoint({"model": snn.state_dict(), "epoch": epoch, "source_run": source_run})


def write_thresholds(out_dir: Path, options: ConvertedOptions, names: list[str], roles: list[str]) -> None:
    """``thresholds.json``: the norm, residual rule and the input scale the thresholds were balanced against
    (``sent_scale``: ``c`` for Poisson input, 1 for direct input; before, direct input recorded ``c = max|x|``,
    which it never used), and one row per neuron layer."""
    rows = zip(names, roles, options.thresholds, strict=True)
    atomic_write_json(
        out_dir / "thresholds.json",
        {
            "norm": options.norm,
            "residual": options.residual,
            "input_scale": sent_scale(options),
            "layers": [{"name": n, "role": r, "threshold": t} for n, r, t in rows],
        },
    )


def write_sweep(
    out_dir: Path, sweep: AccuracySweep, names: list[str], roles: list[str], thresholds: list
) -> None:
    """``accuracy_vs_timesteps.csv`` and ``spike_counts.csv`` (neuron layers ``names`` in build order; those that
    ran: a membrane readout's output IF layer, which an integrator replaces, has no row)."""
    rows = ["timesteps,accuracy"] + [f"{t},{a:.6f}" for t, a in zip(sweep.marks, sweep.accuracy, strict=True)]
    atomic_write_text(out_dir / "accuracy_vs_timesteps.csv", "\n".join(rows) + "\n")
    spikes, sizes = sweep.spikes, [sweep.neurons[k] for k in names]
    rows = ["layer,role,threshold,neurons,spikes_per_sample,spikes_per_neuron"]
    rows += [
        f"{k},{r},{_threshold_text(t)},{s},{spikes[k]:.4f},{spikes[k] / max(1, s):.6f}"
        for k, r, t, s in zip(names, roles, thresholds, sizes, strict=True) if s
    ]
    atomic_write_text(out_dir / "spike_counts.csv", "\n".join(rows) + "\n")


def _threshold_text(threshold: float | list[float]) -> str:
    """A threshold for a CSV cell: the number, or ``mean X of N channels`` for per-channel thresholds."""
    if isinstance(threshold, list):
        return f"mean {sum(threshold) / len(threshold):.6g} of {len(threshold)} channels"
    return f"{threshold:.6g}"


def operations(arch: Architecture, sweep: AccuracySweep, direct_input: bool) -> dict[str, Any]:
    """SNN synaptic operations per sample (measured, per layer) vs ANN MACs per sample (``layer_costs``), their
    ratio, and per reported T the operations and the energy of SNN and ANN under every MAC/AC-priced preset.

    ``ratio`` = (SNN ACs + MACs over T steps, every synaptic layer) / ANN MACs: the first layer's operations, driven
    by the input, are in it (with direct input, T times that layer's MACs, often most of the total), so it is no
    ratio of ACs to MACs. ``if_driven`` is sengupta2019 section 7.4's "ratio of SNN AC operations to ANN MAC
    operations" that "includes only ReLU/IF spiking neuron activations": the operations of every synaptic layer but
    the first (the one the input drives; in build order) over the ANN MACs of the same layers, ``{"snn_operations_
    per_sample", "ann_macs_per_sample", "ratio"}`` (an average pool after IF neurons passes spikes, the layer after
    it receives their average and counts in MACs, as in ``ratio``).

    The operations are priced by the activity recorder's rule (``layers.activity_records``), the one ``deepspike
    analyze`` and ``compare`` use: an input event that is a spike (binary, signed or threshold-valued) costs one
    AC per synapse; an analog input (direct input's image at every step, ``T x`` the first layer's events, counted
    as run; the average of spikes after an average pool) costs one MAC per synapse, each layer at one price.
    ``direct_input`` is recorded, not used: the recorder tells analog input from the encoder's output and the values.
    """
    costs = layer_costs(arch)
    macs = sum(c.macs for c in costs)
    total = sum(sweep.accumulates.values())
    final_macs = sweep.macs_at[-1] if sweep.macs_at else {}
    return {
        "timesteps": sweep.marks[-1],
        "snn_accumulates_per_sample": total,
        "ann_macs_per_sample": macs,
        "ratio": total / macs if macs else math.nan,
        "if_driven": _if_driven(costs, sweep.accumulates),
        "direct_input": direct_input,
        "layers": [
            {"snn_layer": k, "accumulates_per_sample": v, "macs_per_sample": final_macs.get(k, 0.0)}
            for k, v in sweep.accumulates.items()
        ],
        "ann_layers": [{"name": c.name, "kind": c.kind, "macs": c.macs} for c in costs],
        "by_timesteps": [
            _energy_row(t, ops, layer_macs, spikes, macs, sweep.update_ops_per_step)
            for t, ops, layer_macs, spikes in zip(
                sweep.marks, sweep.accumulates_at, sweep.macs_at, sweep.spikes_at, strict=True
            )
        ],
    }


def _if_driven(costs: list, accumulates: dict[str, float]) -> dict[str, float]:
    """The operations of the synaptic layers after the first (those IF neurons drive) over the ANN MACs of the ANN's
    layers after its first (``operations``' docstring; NaN without such a layer)."""
    ops, macs = sum(list(accumulates.values())[1:]), sum(c.macs for c in costs[1:])
    return {"snn_operations_per_sample": ops, "ann_macs_per_sample": macs, "ratio": ops / macs if macs else math.nan}


def _energy_row(
    t: int, ops: dict[str, float], layer_macs: dict[str, float], spikes: float, ann_macs: float,
    update_ops_per_step: tuple[float, float] | None = (0.0, 0.0),
) -> dict[str, Any]:
    """One T: SNN ACs and MACs per sample (``ops`` per layer, ``layer_macs`` the MACs among them), spikes, the
    neurons' own updates over the ``t`` steps (``update_ops_per_step`` times ``t``; None: not priced), and per MAC/AC
    preset SNN and
    ANN pJ and SNN / ANN, without and with the updates, from ``models.energy.energy_table`` (as ``deepspike
    analyze``)."""
    snn_macs = sum(layer_macs.values())
    acs = sum(v - layer_macs.get(k, 0.0) for k, v in ops.items())  # per layer: a layer's ops are all ACs or all MACs
    update_macs, update_acs = (None, None) if update_ops_per_step is None else (t * v for v in update_ops_per_step)
    row: dict[str, Any] = {"timesteps": t, "snn_acs": acs, "snn_macs": snn_macs, "spikes": spikes,
                           "update_macs": update_macs, "update_acs": update_acs}
    snn = {"macs_per_sample": snn_macs, "acs_per_sample": acs, "neuron_spikes_per_sample": spikes,
           "update_macs_per_sample": update_macs, "update_acs_per_sample": update_acs}
    for name, energy in energy_table(ann_macs, snn).items():
        if PRESETS[name].mac_pj > 0:
            snn_pj, ann_pj, with_updates = energy["snn_pj"], energy["ann_pj"], energy["snn_with_updates_pj"]
            row[name] = {"snn_pj": snn_pj, "ann_pj": ann_pj, "snn_over_ann": snn_pj / ann_pj if ann_pj else None,
                         "snn_with_updates_pj": with_updates,
                         "snn_with_updates_over_ann": with_updates / ann_pj if ann_pj and with_updates else None}
    return row


def plot_accuracy_curves(
    path: Path, curves: dict[str, tuple[list[int], list[float]]], ann_accuracy: float, log_base: int = 10
) -> None:
    """A PNG of test accuracy (%) against time steps (log axis): one line per label ``(steps, accuracies)`` and
    the ANN's accuracy as a dashed line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, (steps, accuracy) in curves.items():
        ax.plot(steps, [100 * a for a in accuracy], marker="o" if len(steps) < 12 else None, label=label)
    ax.axhline(100 * ann_accuracy, color="k", ls="--", lw=1, label="ANN")
    ax.set_xscale("log", base=log_base)
    ax.set_xlabel("time steps")
    ax.set_ylabel("test accuracy (%)")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def plot_sweep(out_dir: Path, sweep: AccuracySweep, ann_accuracy: float, names: list[str], norm: str) -> None:
    """``accuracy_vs_timesteps.png`` (SNN accuracy over T against the ANN's) and ``spike_counts.png``."""
    curves = {f"SNN ({norm}-norm)": (sweep.marks, sweep.accuracy)}
    plot_accuracy_curves(out_dir / "accuracy_vs_timesteps.png", curves, ann_accuracy)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ran = [k for k in names if sweep.neurons[k]]  # not a membrane readout's output IF layer (it does not run)
    ax.bar(range(1, len(ran) + 1), [sweep.spikes[k] for k in ran])
    ax.set_xlabel("neuron layer")
    ax.set_ylabel("spikes per image")
    fig.tight_layout()
    save_figure(fig, out_dir / "spike_counts.png", dpi=120)
