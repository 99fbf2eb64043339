"""PNG plots of an analysis (matplotlib, Agg backend): activity, accuracy curves, spike-time histograms, rasters,
membrane traces."""

from __future__ import annotations

from pathlib import Path

from deepspike.core.errors import ConfigError
from deepspike.core.plotting import pyplot, save_figure


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def plot_activity(layers: list[dict], path: Path) -> Path:
    """Bars: spikes per sample of each spiking layer, with its sparsity (fraction of neurons that fired)."""
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    names = [d["name"] for d in layers]
    x = range(len(names))
    a.bar(x, [d["spikes_per_sample"] for d in layers], color="tab:blue")
    a.set_ylabel("spikes per sample")
    b.bar(x, [d["sparsity"] for d in layers], color="tab:orange")
    b.set_ylabel("fraction of neurons that fired")
    b.set_ylim(0, 1)
    for ax in (a, b):
        ax.set_xticks(list(x), names, rotation=45, ha="right", fontsize=7)
        ax.set_xlabel("spiking layer")
    return _save(fig, path)


def plot_curve(
    rows: list[dict],
    key: str,
    path: Path,
    xlabel: str,
    title: str,
    log_x: bool = False,
    invert_x: bool = False,
) -> Path:
    """Accuracy (%) against ``rows[i][key]``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    xs = [r[key] for r in rows]
    ax.plot(xs, [100 * r["accuracy"] for r in rows], "o-")
    if log_x:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.minorticks_off()
    if invert_x:
        ax.invert_xaxis()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_spike_times(layers: list[dict], path: Path, decision_time: float | None = None) -> Path:
    """One histogram per spiking layer: spike times (TTFS) or spikes per time step (rate), zhang2021 Fig. 6;
    ``decision_time`` (mean first output spike) is drawn as a dashed line on the TTFS histograms."""
    plt = pyplot()
    n = max(1, len(layers))
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.4 * rows), squeeze=False)
    for ax, d in zip(axes.flat, layers, strict=False):
        if d.get("times"):
            ax.hist(d["times"], bins=40, color="tab:green")
            ax.set_xlabel("spike time")
            ax.set_ylabel("spikes")
            if decision_time is not None:
                ax.axvline(decision_time, color="k", ls="--", lw=1, label="mean decision")
                ax.legend(fontsize=7)
        else:
            counts = d.get("step_counts", [])
            ax.bar(range(1, len(counts) + 1), counts, width=1.0, color="tab:green")
            ax.set_xlabel("time step")
            ax.set_ylabel("spikes per sample")
        ax.set_title(d["name"], fontsize=8)
    for ax in list(axes.flat)[len(layers) :]:
        ax.axis("off")
    return _save(fig, path)


def plot_raster(rasters: list[dict], path: Path) -> Path:
    """One panel per spiking layer (``analysis.raster``): a tick at (step t, neuron) for every spike of the neurons
    shown, for one input sample. No rasters (``record_raster`` of a net without a rate-coded spiking layer: an
    ``ann`` or TTFS net) or no list of them is a one-line ``ConfigError`` (was matplotlib's "Number of rows must be a
    positive integer, not 0", or "object of type 'NoneType' has no len()"; a list of other things, a TypeError)."""
    if not isinstance(rasters, list | tuple) or not rasters or not all(isinstance(r, dict) for r in rasters):
        raise ConfigError(f"no spike rasters to plot: record_raster's list has a raster per rate-coded spiking layer "
                          f"(an ann or TTFS net has none), got {rasters!r}")
    plt = pyplot()
    fig, axes = plt.subplots(len(rasters), 1, figsize=(6, 1.2 + 1.1 * len(rasters)), squeeze=False)
    for ax, r in zip(axes[:, 0], rasters, strict=True):
        grid = [[0] * r["timesteps"] for _ in range(max(len(r["shown"]), 1))]  # [neuron shown, step]
        for t, row in r["events"]:
            grid[row][t] = 1
        ax.imshow(grid, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest", origin="lower")
        ax.set_ylabel("neuron", fontsize=7)
        ax.set_title(f"{r['layer']}: {len(r['shown'])} of the {r['active']} of {r['neurons']} neurons that fired "
                     f"({r['spikes']} spikes in all)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("time step")
    return _save(fig, path)


def plot_traces(traces: list[dict], path: Path) -> Path:
    """One panel per traced spiking layer (``analysis.traces``; skipped layers are left out): each shown neuron's
    membrane after the reset (solid), the threshold its charge met (dashed, the same colour) and an ``x`` on the
    threshold at each of its spikes, for one input sample. No traces at all (``record_traces`` of a net without a
    spiking neuron layer: an ``ann`` net has no membrane) or no list is a one-line ``ConfigError`` (the empty list was
    said to be "every layer was skipped"; a list of other things was a TypeError)."""
    if not isinstance(traces, list | tuple) or not traces or not all(isinstance(r, dict) for r in traces):
        raise ConfigError(f"no membrane traces to plot: record_traces' list has one per spiking neuron layer (an ann "
                          f"net has no spiking neuron, so no membrane), got {traces!r}")
    shown = [r for r in traces if "skipped" not in r]
    if not shown:
        raise ConfigError("no membrane traces to plot: every layer was skipped (see each one's 'skipped' reason)")
    plt = pyplot()
    fig, axes = plt.subplots(len(shown), 1, figsize=(7, 1.2 + 1.4 * len(shown)), squeeze=False)
    for ax, r in zip(axes[:, 0], shown, strict=True):
        steps = range(r["timesteps"])
        for col, neuron in enumerate(r["shown"]):
            color = f"C{col % 10}"
            ax.plot(steps, [row[col] for row in r["membrane"]], color=color, lw=1, label=f"{neuron}")
            ax.plot(steps, [row[col] for row in r["threshold"]], color=color, lw=0.8, ls="--")
            fired = [t for t, c in r["spikes"] if c == col]
            ax.plot(fired, [r["threshold"][t][col] for t in fired], "x", color=color, ms=4)
        ax.xaxis.get_major_locator().set_params(integer=True)  # time steps
        ax.set_ylabel("membrane", fontsize=7)
        ax.set_title(f"{r['layer']}: {len(r['shown'])} of {r['neurons']} neurons ({sum(r['fired'])} of them fired)",
                     fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="neuron", title_fontsize=6)
    axes[-1, 0].set_xlabel("time step")
    return _save(fig, path)
