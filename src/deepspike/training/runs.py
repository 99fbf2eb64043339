"""Run directories: the files a run leaves, and how each of them is read and written.

    RUN/config.yaml     the resolved recipe (``config.save_config``); its presence makes RUN a run directory
    RUN/metrics.jsonl   one JSON object per finished epoch, appended as training goes (``MetricsLog``)
    RUN/checkpoint.pt   a torch payload (weights, optimizer, RNG states: ``train.checkpoint``), written atomically
    RUN/summary.json    the final numbers of the run

JSON is written strictly (``allow_nan=False``): JSON has no inf/nan, so non-finite floats are written as null.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from deepspike.config.load import load_config, save_config
from deepspike.config.schema import RunConfig
from deepspike.core.atomic import atomic_write, atomic_write_text
from deepspike.core.errors import DataNotFoundError
from deepspike.training.checkpoint_format import checkpoint_bytes, read_checkpoint_file

CONFIG_NAME = "config.yaml"
METRICS_NAME = "metrics.jsonl"
CHECKPOINT_NAME = "checkpoint.pt"
SUMMARY_NAME = "summary.json"


def finite_or_null(value: Any) -> Any:
    """``value`` with every non-finite float (inf, -inf, nan), in nested dicts and lists too, made None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(v) for v in value]
    return value


def strict_json(value: Any, indent: int | None = None) -> str:
    """``json.dumps`` of ``value`` with non-finite floats as null, refusing any that remain."""
    return json.dumps(finite_or_null(value), indent=indent, allow_nan=False)


class MetricsLog:
    """Append-only JSON-lines log. ``truncate_after(epoch)`` drops lines of epochs not yet checkpointed,
    so a resumed run does not log an epoch twice."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(strict_json(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def truncate_after(self, epochs_done: int) -> None:
        kept = [r for r in self.read() if r.get("epoch", 0) <= epochs_done]
        atomic_write_text(self.path, "".join(strict_json(r) + "\n" for r in kept))


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Atomically write ``payload`` (tensors and plain Python values) to ``path``, with its checksum."""
    data = checkpoint_bytes(payload)
    atomic_write(Path(path), lambda f: f.write(data))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (never as code, checksum verified: ``checkpoint_format``);
    one-line errors when missing, unreadable or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"no checkpoint at {path}")
    return read_checkpoint_file(path, map_location)


class RunDir:
    """The run directory at ``path``: its file paths and the reading and writing of each file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config_path = self.path / CONFIG_NAME
        self.checkpoint_path = self.path / CHECKPOINT_NAME
        self.summary_path = self.path / SUMMARY_NAME
        self.metrics = MetricsLog(self.path / METRICS_NAME)

    def is_run_dir(self) -> bool:
        """Whether ``path`` holds a run (its ``config.yaml``)."""
        return self.config_path.is_file()

    def require(self) -> RunDir:
        """``self``, or a one-line ``DataNotFoundError`` when ``path`` is not a run directory."""
        if not self.is_run_dir():
            raise DataNotFoundError(f"{self.path} is not a run directory (no {CONFIG_NAME})")
        return self

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def read_config(self) -> RunConfig:
        return load_config(self.require().config_path)

    def write_config(self, config: RunConfig) -> None:
        save_config(config, self.config_path)

    def read_checkpoint(self, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        return load_checkpoint(self.checkpoint_path, map_location)

    def write_checkpoint(self, payload: dict[str, Any]) -> None:
        save_checkpoint(self.checkpoint_path, payload)

    def read_summary(self) -> dict[str, Any]:
        if not self.summary_path.is_file():
            raise DataNotFoundError(f"no summary at {self.summary_path}")
        return json.loads(self.summary_path.read_text())

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Atomically write ``summary`` as strict, indented JSON (non-finite floats as null)."""
        atomic_write_text(self.summary_path, strict_json(summary, indent=2) + "\n")
