"""``deepspike reproduce RECIPE``: train a recipe and compare its test accuracy with the figure it records.

A recipe's ``expected`` section (``config.schema.ExpectedConfig``) holds the test accuracy it is known to reach,
a tolerance and where the figure was measured. Reproducing trains the recipe into a run directory (or continues
an interrupted one with ``resume``), then writes ``RUN/reproduce.json``::

    {"recipe", "measured_by", "expected_test_accuracy", "tolerance", "measured_test_accuracy",
     "difference_pp", "reproduced"}

``reproduced`` is ``|measured - expected| <= tolerance``. A recipe without an expected figure is refused before
anything trains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepspike.config.schema import RunConfig
from deepspike.core.atomic import atomic_write_json
from deepspike.core.errors import ConfigError
from deepspike.training.runs import REPORT_NAME
from deepspike.training.trainer import Trainer


def reproduce(config: RunConfig, out: str | Path, recipe: str = "", resume: bool = False) -> dict[str, Any]:
    """Train ``config`` into ``out`` and compare (module docstring); returns the report."""
    expected = config.expected
    if expected.test_accuracy is None:
        raise ConfigError(f"recipe {recipe or '(defaults)'} records no expected.test_accuracy to reproduce")
    summary = Trainer(config, out, resume=resume).fit()
    measured = summary["test_accuracy"]
    report = {
        "recipe": recipe,
        "measured_by": expected.measured_by,
        "expected_test_accuracy": expected.test_accuracy,
        "tolerance": expected.tolerance,
        "measured_test_accuracy": measured,
        "difference_pp": round(100 * (measured - expected.test_accuracy), 4),
        "reproduced": abs(measured - expected.test_accuracy) <= expected.tolerance + 1e-12,
    }
    atomic_write_json(Path(out) / REPORT_NAME, report)
    return report
