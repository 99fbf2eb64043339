"""ANN-to-SNN conversion of a trained run: QCFS, channel-, max-, percentile- and SPIKE-NORM thresholds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deepspike.conversion.calibration import NORM_CHOICES as CONVERSION_NORMS  # noqa: F401 (re-exported)
from deepspike.conversion.comparison import convert_norms
from deepspike.conversion.pipeline import convert_run


def convert(
    run_dir: str | Path,
    out: str | Path | None = None,
    norm: str | Sequence[str] = "spike",
    timesteps: int = 2500,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Convert the ``ann`` run in ``run_dir`` into a converted-SNN run directory ``out`` (default
    ``RUN_DIR/converted_<norm>``) and return its summary (``ann_test_accuracy``, ``snn_test_accuracy``, ...).

    Several norms (a list, or names joined by commas) convert into ``out/<norm>`` each and add one comparison
    table (``conversion.comparison``); the result is then ``{"norms": [...], "rows": [...]}``. ``options``:
    ``calib_samples``, ``calib_timesteps``, ``percentile``, ``reset``, ``readout``, ``residual``, ``encoding``,
    ``initial_membrane``, ``spike_value``, ``limit``, ``seed`` (see ``deepspike convert --help``)."""
    norms = norm.split(",") if isinstance(norm, str) else list(norm)
    name = "_".join(norms)
    out = out if out is not None else Path(run_dir) / f"converted_{name}"
    log = log or (lambda s: None)
    if len(norms) > 1:
        return convert_norms(run_dir, out, norms, timesteps, log=log, **options)
    return convert_run(run_dir, out, norm=norms[0], timesteps=timesteps, log=log, **options)
