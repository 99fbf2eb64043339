"""One table across runs and methods: accuracy, latency, spikes, synaptic ops, energy, 4-bit accuracy.

Each run's numbers come from its ``analysis.json`` (``deepspike analyze``) when one exists under
``RUN/analysis/`` (or is given directly), otherwise from a fresh ``analyze_run`` without the long sweeps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepspike.analysis.report import AnalysisOptions, analyze_run
from deepspike.models.energy import get_energy_preset

COLUMNS = (
    "run",
    "method",
    "model",
    "accuracy (%)",
    "latency",
    "spikes/inf",
    "synops/inf",
    "ANN MACs/inf",
    "energy (nJ)",
    "acc @4 bit (%)",
)


def load_or_analyze(run: str | Path, limit: int | None = 1000) -> dict[str, Any]:
    """The analysis of ``run``: ``run/analysis/analysis.json``, ``run`` itself if it is one, or computed."""
    run = Path(run)
    for candidate in (run, run / "analysis" / "analysis.json", run / "analysis.json"):
        if candidate.is_file() and candidate.suffix == ".json":
            return json.loads(candidate.read_text())
    options = AnalysisOptions(
        limit=limit, bits=(4,), snrs=(), deletions=(), jitters=(), timesteps=False, plots=False
    )
    return analyze_run(run, None, options)


def comparison_row(a: dict[str, Any], preset: str = "45nm_fp32") -> dict[str, Any]:
    """One table row from an analysis dict; the energy is the SNN's (ANN's for ANN runs) at ``preset``."""
    get_energy_preset(preset)
    act, ops, lat = a.get("activity"), a["operations"], a.get("latency")
    energy = a["energy"].get(preset, {})
    pj = energy.get("snn_pj") if act else energy.get("ann_pj")
    latency = None
    if lat:
        latency = f"T={lat['value']}" if lat["kind"] == "timesteps" else f"t={lat['value']:.3g}"
    return {
        "run": a["run"],
        "method": a["method"],
        "model": a["model"],
        "accuracy (%)": 100 * a["accuracy"],
        "latency": latency,
        "spikes/inf": act["spikes_per_sample"] if act else None,
        "synops/inf": ops["snn_synops_per_sample"] if act else ops["ann_macs_per_sample"],
        "ANN MACs/inf": ops["ann_macs_per_sample"],
        "energy (nJ)": pj / 1000 if pj is not None else None,
        "acc @4 bit (%)": 100 * a["accuracy_4bit"] if a.get("accuracy_4bit") is not None else None,
    }


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of ``rows`` with ``COLUMNS``."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * 3 + "---:|" * (len(COLUMNS) - 3)]
    lines += ["| " + " | ".join(_cell(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def compare_runs(runs: list[str | Path], preset: str = "45nm_fp32", limit: int | None = 1000) -> list[dict]:
    """Rows for ``runs`` in the given order."""
    return [comparison_row(load_or_analyze(r, limit), preset) for r in runs]
