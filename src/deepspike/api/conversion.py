"""ANN-to-SNN conversion of a trained run: rate-coded IF nets (QCFS, channel-, max-, percentile- and SPIKE-NORM
thresholds) and exact single-spike TTFS nets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deepspike.config.schema import SEED_MAX
from deepspike.conversion.calibration import NORM_CHOICES as CONVERSION_NORMS  # noqa: F401 (re-exported)
from deepspike.conversion.comparison import convert_norms
from deepspike.conversion.pipeline import convert_run
from deepspike.conversion.to_ttfs import convert_to_ttfs as _convert_to_ttfs
from deepspike.core.errors import ConfigError
from deepspike.core.options import FLOAT32_MAX, is_finite, is_whole, shown_value
from deepspike.methods.converted import MAX_STEPS
from deepspike.training.runs import RunDir

RATE_OPTIONS = ("calib_samples", "calib_timesteps", "percentile", "reset", "readout", "residual", "encoding",
                "initial_membrane", "spike_value", "signed", "limit", "seed")
TTFS_OPTIONS = ("calib_samples", "margin", "alpha", "limit")
NORM_ONLY = {"percentile": "percentile", "calib_timesteps": "spike", "seed": "spike"}
"""Options one norm alone reads (option -> norm): given (not None) without that norm among the chosen ones, they
would be ignored, so ``convert`` refuses them (the CLI relies on this check)."""


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
    ``initial_membrane``, ``spike_value``, ``signed``, ``limit``, ``seed`` (see ``deepspike convert --help``); no
    norm, a count that is not a whole number >= 1, ``timesteps`` or ``calib_timesteps`` above ``MAX_STEPS``, a seed
    outside [0, 2**63 - 1], an option no chosen norm reads (``NORM_ONLY``: ``percentile`` without ``percentile``,
    ``calib_timesteps`` or ``seed`` without ``spike``) or another option is a ``ConfigError``; None leaves an option
    at its default."""
    norms = norm.split(",") if isinstance(norm, str) else list(norm) if isinstance(norm, list | tuple) else [norm]
    if not norms or not all(isinstance(n, str) for n in norms):
        raise ConfigError(f"norm must be a name or a list of names of {', '.join(CONVERSION_NORMS)}, got {norm!r}")
    check_options(dict(options, timesteps=timesteps), RATE_OPTIONS + ("timesteps",))
    check_norm_options(norms, options)
    options = {key: value for key, value in options.items() if not (key in NORM_ONLY and value is None)}
    name = "_".join(norms)
    out = out if out is not None else RunDir(run_dir).require().path / f"converted_{name}"  # in one line
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
    ``options``: ``calib_samples``, ``margin``, ``alpha``, ``limit`` (see ``deepspike convert --help``); None leaves an
    option at its default, as in ``convert`` (it once reached ``None < 1``, a ``TypeError``)."""
    check_options(options, TTFS_OPTIONS)
    options = {key: value for key, value in options.items() if value is not None}
    out = out if out is not None else RunDir(run_dir).require().path / "converted_ttfs"  # in one line
    return _convert_to_ttfs(run_dir, out, log=log or (lambda s: None), **options)


def check_norm_options(norms: Sequence[str], options: dict[str, Any]) -> None:
    """A one-line ``ConfigError`` for an option of ``NORM_ONLY`` given (not None) while none of ``norms`` reads it:
    ``norm="max", percentile=50`` converted with the largest activation, the percentile ignored."""
    unread = [key for key, reader in NORM_ONLY.items() if options.get(key) is not None and reader not in norms]
    if unread:
        names = ", ".join(f"--{key.replace('_', '-')} (--norm {NORM_ONLY[key]})" for key in unread)
        raise ConfigError(f"--norm {','.join(norms)} does not use {names}")


def check_options(options: dict[str, Any], valid: tuple[str, ...]) -> None:
    """A one-line ``ConfigError`` for a conversion option that is not one of ``valid``, a count (``timesteps``,
    ``calib_samples``, ``calib_timesteps``, ``limit``) that is not a whole number >= 1 (``limit=0`` scored 0 test
    images as 0% accuracy), step counts above ``MAX_STEPS``, a ``seed`` outside ``train.seed``'s range or a
    ``margin``/``alpha`` that is no number (or a margin not in (0, float32's largest])."""
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"unknown conversion option {unknown[0]!r}; valid: {', '.join(sorted(valid))}")
    for key in ("timesteps", "calib_samples", "calib_timesteps", "limit"):
        if options.get(key) is not None and not is_whole(options[key], 1):
            raise ConfigError(f"{key} (--{key.replace('_', '-')}) must be a whole number >= 1, got {options[key]!r}")
    for key in ("timesteps", "calib_timesteps"):
        if options.get(key) is not None and options[key] > MAX_STEPS:
            raise ConfigError(f"{key} (--{key.replace('_', '-')}) must be at most {MAX_STEPS:,} steps, got "
                              f"{shown_value(options[key])}")
    if options.get("seed") is not None and not is_whole(options["seed"], 0, SEED_MAX):
        raise ConfigError(f"--seed must be in [0, 2**63 - 1] (as train.seed), got {options['seed']!r}")
    for key in ("margin", "alpha"):
        if options.get(key) is not None and not is_finite(options[key]):
            raise ConfigError(f"{key} (--{key}) must be a finite number, got {options[key]!r}")
    margin = options.get("margin")  # (else refused later as method.margin, an option the user never wrote)
    if margin is not None and not 0 < margin <= FLOAT32_MAX:
        raise ConfigError(f"margin (--margin) must be > 0 and at most {FLOAT32_MAX:.4g}, got {shown_value(margin)}")
