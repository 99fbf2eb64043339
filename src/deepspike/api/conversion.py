"""ANN-to-SNN conversion of a trained run (sengupta2019; max, percentile and SPIKE-NORM threshold balancing)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepspike.conversion.pipeline import convert_run


def convert(
    run_dir: str | Path,
    out: str | Path | None = None,
    norm: str = "spike",
    timesteps: int = 2500,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Convert the ``ann`` run in ``run_dir`` into a converted-SNN run directory ``out`` (default
    ``RUN_DIR/converted_<norm>``) and return its summary (``ann_test_accuracy``, ``snn_test_accuracy``, ...).
    ``options``: ``calib_samples``, ``calib_timesteps``, ``percentile``, ``reset``, ``readout``, ``residual``,
    ``limit``, ``seed`` (see ``deepspike convert --help``)."""
    out = out if out is not None else Path(run_dir) / f"converted_{norm}"
    return convert_run(run_dir, out, norm=norm, timesteps=timesteps, log=log or (lambda s: None), **options)
