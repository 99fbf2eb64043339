"""``deepspike reproduce RECIPE``: train a recipe and compare its test accuracy with the figure it records.

A recipe's ``expected`` section (``config.schema.ExpectedConfig``) holds the test accuracy it is known to reach,
a tolerance and where the figure was measured. Reproducing trains the recipe into a run directory (or continues
an interrupted one with ``resume``), then writes ``RUN/reproduce.json``::

    {"recipe", "overrides", "as_recorded", "measured_by", "expected_test_accuracy", "tolerance",
     "measured_test_accuracy", "difference_pp", "reproduced"}

``as_recorded``: no override changes what trains (only how it runs: ``INCIDENTAL_KEYS``). ``reproduced`` is
``as_recorded and |measured - expected| <= tolerance``: a changed recipe (fewer epochs, another seed) may come near
the figure but does not reproduce it. Refused in one line before anything trains: a recipe without an expected
figure, an override of ``expected.*`` (the figure and its tolerance are the recipe's, not the caller's), and a
resume whose recipe records another ``expected`` section than the run was started with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepspike.config.schema import RunConfig
from deepspike.core.atomic import atomic_write_json
from deepspike.core.errors import ConfigError
from deepspike.training.runs import REPORT_NAME, RunDir
from deepspike.training.trainer import Trainer

INCIDENTAL_KEYS = ("train.progress", "train.log", "train.device", "data.num_workers", "data.data_dir",
                   "data.download")
"""Override keys that change how a run runs, not what it trains."""


def reproduce(config: RunConfig, out: str | Path, recipe: str = "", resume: bool = False,
              overrides: Sequence[str] = ()) -> dict[str, Any] | None:
    """Train ``config`` (``recipe`` with ``overrides`` applied) into ``out`` and compare (module docstring); returns
    the report. Under ``torchrun`` every rank trains, and only rank 0 writes the report and gets it (the others:
    None), as only it writes the run's files."""
    expected = config.expected
    if expected.test_accuracy is None:
        raise ConfigError(f"recipe {recipe or '(defaults)'} records no expected.test_accuracy to reproduce")
    keys = [item.split("=", 1)[0].strip() for item in overrides]
    if any(key == "expected" or key.startswith("expected.") for key in keys):
        raise ConfigError("reproduce compares with the figure the recipe records: expected.* cannot be overridden")
    if resume:
        _check_same_expected(Path(out), expected)
    trainer = Trainer(config, out, resume=resume)
    summary = trainer.fit()
    if not trainer.dist.is_main:
        return None
    measured = summary["test_accuracy"]
    as_recorded = all(key in INCIDENTAL_KEYS for key in keys)
    report = {
        "recipe": recipe,
        "overrides": list(overrides),
        "as_recorded": as_recorded,
        "measured_by": expected.measured_by,
        "expected_test_accuracy": expected.test_accuracy,
        "tolerance": expected.tolerance,
        "measured_test_accuracy": measured,
        "difference_pp": round(100 * (measured - expected.test_accuracy), 4),
        "reproduced": as_recorded and abs(measured - expected.test_accuracy) <= expected.tolerance + 1e-12,
    }
    atomic_write_json(Path(out) / REPORT_NAME, report)
    return report


def _check_same_expected(out: Path, expected) -> None:
    """A one-line ``ConfigError`` when the run in ``out`` was started with another ``expected`` section (an edited
    recipe would move the bar of a reproduction half done); nothing to compare where ``out`` holds no run yet."""
    run = RunDir(out)
    if run.is_run_dir() and run.read_config().expected != expected:
        raise ConfigError(f"reproduce --resume: the recipe's expected section differs from the one {out} was started "
                          f"with; a reproduction keeps its figure and tolerance")
