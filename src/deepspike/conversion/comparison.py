"""Several threshold norms of one ANN run side by side: each converted into ``OUT/<norm>`` (a full converted
run, ``conversion.pipeline``), then one table of accuracy and SNN / ANN energy at every power of two up to T.

Writes ``OUT/comparison.json`` (every norm's summary without its thresholds), ``OUT/comparison.csv`` (one row
per norm and T) and ``OUT/comparison.md`` (accuracy and energy tables), and ``OUT/accuracy_vs_timesteps.png``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deepspike.conversion.outputs import COMPARISON, plot_accuracy_curves
from deepspike.conversion.pipeline import check_conversion, convert_run
from deepspike.core.atomic import atomic_write_json, atomic_write_text, check_output_dir
from deepspike.core.errors import ConfigError
from deepspike.training.runs import RunDir

ENERGY_PRESET = "45nm_fp32"  # the table's energy column (every MAC/AC preset is in comparison.json)


def convert_norms(
    run_dir: str | Path,
    out_dir: str | Path,
    norms: Sequence[str],
    timesteps: int,
    log: Callable[[str], None] = print,
    **options: Any,
) -> dict[str, Any]:
    """Convert ``run_dir`` once per norm (same ``options``) into ``out_dir/<norm>``; write the comparison.
    Returns the norms, the table's rows and its markdown (``table``)."""
    if len(set(norms)) != len(norms) or not norms:
        raise ConfigError(f"--norm lists each norm once, got {','.join(norms)}")
    out_dir = check_output_dir(out_dir, "--out")  # not Path() first: it reads an empty name as the current folder
    if (out_dir / COMPARISON).exists():
        raise ConfigError(f"{out_dir} already holds a comparison; pick another --out")
    if RunDir(out_dir).has_checkpoint():  # its accuracy_vs_timesteps.png would be the comparison's
        raise ConfigError(f"{out_dir} holds a run (its checkpoint.pt); pick another --out for the comparison")
    for norm in norms:  # all first: a later norm refused once left the earlier ones converted, blocking a retry
        check_conversion(run_dir, out_dir / norm, norm, timesteps, **options)
    summaries = {}
    for norm in norms:
        log(f"== {norm}")
        summaries[norm] = convert_run(run_dir, out_dir / norm, norm=norm, timesteps=timesteps, log=log, **options)
    rows = comparison_rows(summaries)
    atomic_write_json(out_dir / COMPARISON, {n: _without_thresholds(s) for n, s in summaries.items()})
    atomic_write_text(out_dir / "comparison.csv", _csv(rows))
    table = comparison_markdown(summaries)
    atomic_write_text(out_dir / "comparison.md", table)
    _plot(out_dir, summaries)
    return {"norms": list(norms), "rows": rows, "table": table}


def comparison_rows(summaries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per norm and T: ANN and SNN accuracy, accuracy drop (pp) and SNN / ANN energy, without and with the
    neurons' own updates."""
    rows = []
    for norm, s in summaries.items():
        energy = s["energy_ratio_by_timesteps"].get(ENERGY_PRESET, {})
        with_updates = s.get("energy_ratio_with_updates_by_timesteps", {}).get(ENERGY_PRESET, {})
        for t, accuracy in s["accuracy_by_timesteps"].items():
            rows.append({
                "norm": norm, "timesteps": int(t), "ann_accuracy": s["ann_test_accuracy"], "snn_accuracy": accuracy,
                "drop_pp": 100.0 * (s["ann_test_accuracy"] - accuracy), "energy_snn_over_ann": energy.get(t),
                "energy_with_updates_snn_over_ann": with_updates.get(t),
            })
    return rows


def comparison_markdown(summaries: dict[str, dict[str, Any]]) -> str:
    """Three markdown tables, norms by T: SNN accuracy (%) with the ANN's, SNN / ANN energy, and the same with the
    neurons' own updates."""
    steps = list(next(iter(summaries.values()))["accuracy_by_timesteps"])
    head = "| norm | ANN | " + " | ".join(f"T={t}" for t in steps) + " |\n|---|---|" + "---|" * len(steps) + "\n"
    accuracy = "".join(
        f"| {n} | {100 * s['ann_test_accuracy']:.2f} | "
        + " | ".join(f"{100 * s['accuracy_by_timesteps'][t]:.2f}" for t in steps) + " |\n"
        for n, s in summaries.items()
    )
    energy = _ratio_rows(summaries, steps, "energy_ratio_by_timesteps")
    with_updates = _ratio_rows(summaries, steps, "energy_ratio_with_updates_by_timesteps")
    return (f"Test accuracy (%) against time steps T\n\n{head}{accuracy}\n"
            f"SNN / ANN energy per image ({ENERGY_PRESET})\n\n{head}{energy}\n"
            f"SNN with the neurons' own updates / ANN energy per image ({ENERGY_PRESET})\n\n{head}{with_updates}")


def _ratio_rows(summaries: dict[str, dict[str, Any]], steps: list[str], key: str) -> str:
    """One table row per norm: the energy ratio ``key`` of its summary at each of ``steps``."""
    rows = ""
    for n, s in summaries.items():
        ratios = s.get(key, {}).get(ENERGY_PRESET, {})
        rows += f"| {n} | 1 | " + " | ".join(_ratio(ratios.get(t)) for t in steps) + " |\n"
    return rows


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _csv(rows: list[dict[str, Any]]) -> str:
    keys = ["norm", "timesteps", "ann_accuracy", "snn_accuracy", "drop_pp", "energy_snn_over_ann",
            "energy_with_updates_snn_over_ann"]
    lines = [",".join(keys)] + [",".join("" if r[k] is None else str(r[k]) for k in keys) for r in rows]
    return "\n".join(lines) + "\n"


def _without_thresholds(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "thresholds"}


def _plot(out_dir: Path, summaries: dict[str, dict[str, Any]]) -> None:
    """``accuracy_vs_timesteps.png``: each norm's accuracy against T, the ANN's as a dashed line."""
    curves = {
        norm: ([int(t) for t in s["accuracy_by_timesteps"]], list(s["accuracy_by_timesteps"].values()))
        for norm, s in summaries.items()
    }
    ann = next(iter(summaries.values()))["ann_test_accuracy"]
    plot_accuracy_curves(out_dir / "accuracy_vs_timesteps.png", curves, ann, log_base=2)
