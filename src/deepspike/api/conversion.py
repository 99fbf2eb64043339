"""ANN-to-SNN conversion of a trained run: rate-coded IF nets (QCFS, channel-, max-, percentile- and SPIKE-NORM
thresholds) and exact single-spike TTFS nets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deepspike.conversion.calibration import NORM_CHOICES as CONVERSION_NORMS  # noqa: F401 (re-exported)
from deepspike.conversion.comparison import convert_norms
from deepspike.conversion.pipeline import convert_run
from deepspike.conversion.to_ttfs import convert_to_ttfs as _convert_to_ttfs


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


def convert_to_ttfs(
    run_dir: str | Path, out: str | Path | None = None, log: Callable[[str], None] | None = None, **options: Any
) -> dict[str, Any]:
    """Map the ReLU ``ann`` run in ``run_dir`` exactly onto a single-spike TTFS network (method ``ttfs_window``,
    windowed ReL-PSP neurons) in ``out`` (default ``RUN_DIR/converted_ttfs``); returns its summary
    (``ann_test_accuracy``, ``snn_test_accuracy``, ``spikes_per_neuron``, latency, synaptic operations).
    ``options``: ``calib_samples``, ``margin``, ``alpha``, ``limit`` (see ``deepspike convert --help``)."""
    out = out if out is not None else Path(run_dir) / "converted_ttfs"
    return _convert_to_ttfs(run_dir, out, log=log or (lambda s: None), **options)
