"""Run directories: the files a run leaves, and how each of them is read and written.

    RUN/config.yaml     the resolved recipe (``config.save_config``); its presence makes RUN a run directory
    RUN/metrics.jsonl   one JSON object per finished epoch (``MetricsLog``)
    RUN/checkpoint.pt   a torch payload (weights, optimizer, RNG states: ``training.checkpoint``), written atomically
    RUN/summary.json    the final numbers of the run
    RUN/.deepspike-run  written when training starts: the folder is a run even before its first checkpoint
    RUN/metrics.csv, RUN/tensorboard/, RUN/reproduce.json   the ``train.log`` sinks' outputs and ``reproduce``'s report

Every file is replaced atomically (``core.atomic``), the metrics log too: appending a line rewrites the
file, so a kill never leaves a torn line (a torn last line left by older versions is dropped on reading).
An epoch's line is logged before its checkpoint is written, so after a crash the log holds at most the
lines of epochs past the checkpoint, which a resumed run drops (``truncate_after``).
JSON is written strictly (``allow_nan=False``): JSON has no inf/nan, so non-finite floats are written as null.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from deepspike.config.load import load_saved_config, save_config
from deepspike.config.schema import RunConfig
from deepspike.core.atomic import (
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    remove_file,
    remove_stale_temps,
    strict_json,
)
from deepspike.core.errors import ConfigError, DataCorruptError, DataNotFoundError, os_reason
from deepspike.core.options import is_whole, shown_value
from deepspike.training.checkpoint_format import checkpoint_bytes, read_checkpoint_file

CONFIG_NAME = "config.yaml"
METRICS_NAME = "metrics.jsonl"
CHECKPOINT_NAME = "checkpoint.pt"
SUMMARY_NAME = "summary.json"
RUN_FILES = (CONFIG_NAME, METRICS_NAME, CHECKPOINT_NAME, SUMMARY_NAME)
STARTED_NAME = ".deepspike-run"
LOCK_NAME = ".deepspike-lock"
CSV_NAME = "metrics.csv"
REPORT_NAME = "reproduce.json"
WRITTEN_FILES = (*RUN_FILES, STARTED_NAME, CSV_NAME, REPORT_NAME)
"""Every file a run writes atomically into its folder (the ``train.log=csv`` table and ``reproduce``'s report
included): the names whose temporary files a killed write leaves are cleared on the next start."""
TENSORBOARD_DIR = "tensorboard"
OUTPUT_NAMES = (*RUN_FILES, CSV_NAME, TENSORBOARD_DIR, REPORT_NAME)
"""Every name a run writes (or, for ``reproduce.json``, removes when it trains) but its marks: a new run is not
started in a folder holding one of them (``run_open``), as it would overwrite or remove what is there."""

__all__ = ["MetricsLog", "RunDir", "check_not_run_file", "load_checkpoint", "save_checkpoint", "strict_json"]


class MetricsLog:
    """JSON-lines log, one record per finished epoch. ``append`` replaces the file atomically with one more
    line; ``truncate_after(epoch)`` drops lines of epochs not yet checkpointed, so a resumed run does not
    log an epoch twice."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: dict[str, Any]) -> None:
        self._write([*self.read(), record])

    def read(self) -> list[dict[str, Any]]:
        """The records; a cut-off last line (no newline, not valid JSON: a write that was killed) is
        dropped; any other unreadable line (not UTF-8, not strict JSON, not an object with a whole ``epoch`` >= 1)
        is a one-line ``DataCorruptError``."""
        if not self.path.is_file():
            return []
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise DataCorruptError(f"{self.path} is not a metrics log: not UTF-8 text ({e.reason})") from None
        lines = text.splitlines()
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(_epoch_record(line))
            except json.JSONDecodeError as e:
                if number == len(lines) and not text.endswith("\n"):
                    break
                raise DataCorruptError(f"{self.path}, line {number}: not a JSON record ({e.msg})") from None
            except ValueError as e:
                raise DataCorruptError(f"{self.path}, line {number}: {e}") from None
        return records

    def truncate_after(self, epochs_done: int) -> None:
        records = self.read()
        kept = [r for r in records if r.get("epoch", 0) <= epochs_done]
        if len(kept) < len(records):
            self._write(kept)

    def _write(self, records: list[dict[str, Any]]) -> None:
        atomic_write_text(self.path, "".join(strict_json(r) + "\n" for r in records))


def _epoch_record(line: str) -> dict[str, Any]:
    """One line of the metrics log as written (strict JSON: no NaN or Infinity; an object whose ``epoch`` is a whole
    number >= 1); ``json.JSONDecodeError`` or ``ValueError`` otherwise."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not in a metrics record (they are written as strict JSON)")

    record = json.loads(line, parse_constant=refuse)
    if not isinstance(record, dict):
        raise ValueError(f"not an epoch record (a JSON {type(record).__name__}, not an object)")
    epoch = record.get("epoch")
    if not is_whole(epoch, 1):
        raise ValueError(f"not an epoch record (epoch {epoch!r}, expected a whole number >= 1)")
    return record


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Atomically write ``payload`` (tensors and plain Python values) to ``path``, with its checksum."""
    data = checkpoint_bytes(payload)
    atomic_write(Path(path), lambda f: f.write(data))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (never as code, checksum verified: ``checkpoint_format``);
    one-line errors when missing, unreadable or corrupt."""
    path = Path(path)
    if not path.is_file():
        if os.path.lexists(path):  # a folder, or a link to nothing (storage not mounted)
            raise DataNotFoundError(f"{path} is not a readable file (a folder, or a link to nothing?)")
        raise DataNotFoundError(f"no checkpoint at {path}")
    return read_checkpoint_file(path, map_location)


class RunDir:
    """The run directory at ``path``: its file paths and the reading and writing of each file."""

    def __init__(self, path: str | Path) -> None:
        if not isinstance(path, str | os.PathLike):  # Path() would raise its own TypeError
            raise ConfigError(f"a run folder is a path, got {type(path).__name__} {shown_value(path)}")
        if not os.fspath(path).strip():  # Path("") is the current folder: eval "" said ". is not a run directory"
            raise ConfigError("the run folder's path is empty; give the name of a run directory")
        self.path = Path(path)
        self.config_path = self.path / CONFIG_NAME
        self.checkpoint_path = self.path / CHECKPOINT_NAME
        self.summary_path = self.path / SUMMARY_NAME
        self.metrics = MetricsLog(self.path / METRICS_NAME)

    def is_run_dir(self) -> bool:
        """Whether ``path`` holds a run (its ``config.yaml``)."""
        return self.config_path.is_file()

    def is_started(self) -> bool:
        """Whether training started here (``.deepspike-run``), even if no epoch finished."""
        return (self.path / STARTED_NAME).is_file()

    def mark_started(self) -> None:
        atomic_write_text(self.path / STARTED_NAME, "a deepspike run: see config.yaml; continue it with --resume\n")

    def run_files(self) -> list[str]:
        """The names of the run files (config, metrics, checkpoint, summary) present in ``path``."""
        return [name for name in RUN_FILES if (self.path / name).exists()]

    def output_files(self) -> list[str]:
        """The names of ``OUTPUT_NAMES`` present in ``path`` (also as a link to nothing)."""
        return [name for name in OUTPUT_NAMES if os.path.lexists(self.path / name)]

    def remove_stale_temps(self) -> None:
        """Delete the temporary files of atomic writes that a killed process left behind."""
        remove_stale_temps(self.path, WRITTEN_FILES)

    def require(self) -> RunDir:
        """``self``, or a one-line ``DataNotFoundError`` when ``path`` is not a run directory."""
        if not self.is_run_dir():
            raise DataNotFoundError(f"{self.path} is not a run directory (no {CONFIG_NAME})")
        return self

    def create(self) -> bool:
        """Make the folder (and its parents); whether it was not there before."""
        existed = self.path.is_dir()
        self.path.mkdir(parents=True, exist_ok=True)
        return not existed

    def discard_unfinished(self, created: bool) -> None:
        """Take back a new run that finished no epoch: the folder where the run ``created`` it, else the files it
        wrote (``config.yaml``, the metrics log, which holds no epoch yet, its CSV table and TensorBoard events, the
        started mark and the lock file; a new run starts only where none of them was, ``run_open``)."""
        if created:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        shutil.rmtree(self.path / TENSORBOARD_DIR, ignore_errors=True)
        for name in (CONFIG_NAME, METRICS_NAME, CSV_NAME, STARTED_NAME, LOCK_NAME):
            (self.path / name).unlink(missing_ok=True)

    def has_checkpoint(self) -> bool:
        """Whether ``checkpoint.pt`` is there in any form: also a folder or a link to nothing, which reading refuses
        (a resume must not take such a run for one that never checkpointed and train it again from epoch 0)."""
        return os.path.lexists(self.checkpoint_path)

    def read_config(self) -> RunConfig:
        return load_saved_config(self.require().config_path)

    def write_config(self, config: RunConfig) -> None:
        save_config(config, self.config_path)

    def read_checkpoint(self, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        return load_checkpoint(self.checkpoint_path, map_location)

    def checkpoint_stamp(self) -> tuple[int, int, int] | None:
        """``(inode, size, mtime ns)`` of ``checkpoint.pt`` (None when there is none): equal stamps before and after a
        read mean no process wrote it meanwhile (an atomic rewrite changes the inode), without hashing it again."""
        try:
            st = os.stat(self.checkpoint_path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def checkpoint_digest(self) -> str | None:
        """The SHA-256 (hex) of ``checkpoint.pt``'s bytes, None when there is none: what an analysis records of
        the weights it measured, so that a later reader can tell whether the run has trained on since."""
        if not self.checkpoint_path.is_file():
            return None
        h = hashlib.sha256()
        try:
            with self.checkpoint_path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except OSError as e:
            raise DataNotFoundError(f"cannot read {self.checkpoint_path}: {os_reason(e)}") from None
        return h.hexdigest()

    def write_checkpoint(self, payload: dict[str, Any]) -> None:
        save_checkpoint(self.checkpoint_path, payload)

    def read_summary(self) -> dict[str, Any]:
        if not self.summary_path.is_file():
            raise DataNotFoundError(f"no summary at {self.summary_path}")
        try:
            summary = json.loads(self.summary_path.read_text())
        except (UnicodeDecodeError, ValueError) as e:  # json.JSONDecodeError is a ValueError
            raise DataCorruptError(f"{self.summary_path} is not a JSON summary: {e}") from None
        if not isinstance(summary, dict):
            raise DataCorruptError(f"{self.summary_path} is not a JSON summary: it holds a {type(summary).__name__}")
        return summary

    def remove_reports(self) -> None:
        """Delete ``summary.json`` and ``reproduce.json``: the run trains on, and both describe a finished run."""
        remove_file(self.summary_path)
        remove_file(self.path / REPORT_NAME)

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Atomically write ``summary`` as strict, indented JSON (non-finite floats as null)."""
        atomic_write_json(self.summary_path, summary, indent=2)


def check_not_run_file(path: str | Path, label: str) -> None:
    """A one-line ``ConfigError`` when ``path`` is one of a run's own files (config, metrics, checkpoint,
    summary of a folder holding ``config.yaml``, also through a symbolic link): no command writes over a
    run's files but ``train``."""
    real = Path(path).resolve()  # through symbolic links and ".."
    if real.name in RUN_FILES and RunDir(real.parent).is_run_dir():
        raise ConfigError(f"{label} {path} is the run file {real.name} of run {real.parent}; "
                          "writing there would destroy the run: choose another path")
