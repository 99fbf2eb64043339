"""Where a run's epoch records go besides ``metrics.jsonl`` (``train.log``): a CSV table and TensorBoard.

* ``csv``: ``RUN/metrics.csv``, one row per epoch, the columns in the order keys first appear; rewritten
  atomically from ``metrics.jsonl`` when a resumed run opens and after every epoch, so it always says what the log
  says (a resumed run's dropped epochs are gone before its first epoch trains, and a resume that adds the csv sink to
  a finished run writes the table). A resume without the sink cuts a table an earlier run wrote to the epochs of
  the log (it is not written on). A missing value (a key an epoch does not have, or a non-finite number) is empty.
* ``tensorboard``: scalars under ``RUN/tensorboard`` (``torch.utils.tensorboard``; the ``tensorboard`` extra),
  one per numeric key, tagged ``train/``, ``val/``, ``test/`` or ``measures/`` by key, at step = epoch. A
  resumed run purges every earlier event (a ``purge_step`` of 1, which readers apply to the files written before)
  and writes the epochs of ``metrics.jsonl`` again, so the scalars say what the log says as the csv does: the events
  past the checkpoint are gone, and a resume that adds the sink has the epochs trained before it too. A resume without
  the sink purges and writes again the events an earlier run left (where tensorboard is installed), as it cuts the
  csv, and writes no epoch after.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from deepspike.core.atomic import atomic_write_csv
from deepspike.core.errors import ConfigError
from deepspike.training.runs import CSV_NAME, TENSORBOARD_DIR


def _tag(key: str) -> str:
    for prefix in ("train", "val", "test"):
        if key.startswith(prefix + "_"):
            return f"{prefix}/{key[len(prefix) + 1:]}"
    return key if key in ("lr", "epoch_seconds") else f"measures/{key}"


def _scalar(value: Any) -> float | None:
    """``value`` as a TensorBoard scalar: a number (not a bool) within float's range, else None (left out, as the csv
    leaves a non-finite number empty; the log's strict JSON holds whole numbers past it, e.g. 10**400, which
    ``add_scalar`` refused with an OverflowError)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        scalar = float(value)
    except OverflowError:
        return None
    return scalar if math.isfinite(scalar) else None


def _open_board(board_dir: Path, logged: list[dict[str, Any]] | None, required: bool) -> Any:
    """A ``SummaryWriter`` in ``board_dir`` that purges the events of a resumed run (``logged`` not None) past its
    first step; None where tensorboard is not installed and the sink is not ``required`` (an earlier run's events)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        if not required:
            return None
        raise ConfigError("train.log=tensorboard needs the tensorboard package (pip install "
                          "'deepspike[tensorboard]')") from None
    return SummaryWriter(str(board_dir), purge_step=None if logged is None else 1)


class MetricSinks:
    """The sinks ``train.log`` names, for the run in ``run_dir``; ``write(records)`` after each epoch. ``logged``: the
    records of ``metrics.jsonl`` as a resumed run opens (none for a run restarted from epoch 0; None for a new run,
    whose folder may hold a file of that name), written to the CSV table and to TensorBoard at once."""

    def __init__(self, run_dir: Path, sinks: tuple[str, ...], logged: list[dict[str, Any]] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.csv = "csv" in sinks
        # a resumed run's, a restarted one's (no epoch kept) included; also a table an earlier sink left while this
        # resume writes none (it may hold the row of an epoch the log dropped)
        if logged is not None and (self.csv or (self.run_dir / CSV_NAME).is_file()):
            atomic_write_csv(self.run_dir / CSV_NAME, logged)
        self.board = None
        board_dir = self.run_dir / TENSORBOARD_DIR
        if "tensorboard" in sinks or (logged is not None and board_dir.is_dir()):
            self.board = _open_board(board_dir, logged, "tensorboard" in sinks)
            self._add(logged or [])
            if "tensorboard" not in sinks:  # an earlier run's events, purged to the log's epochs, not written on
                self.close()

    def write(self, records: list[dict[str, Any]]) -> None:
        if self.csv:
            atomic_write_csv(self.run_dir / CSV_NAME, records)
        self._add(records[-1:])

    def _add(self, records: list[dict[str, Any]]) -> None:
        """Each record's numeric values as TensorBoard scalars at step = its epoch (module docstring)."""
        if self.board is None or not records:
            return
        for record in records:
            for key, value in record.items():
                scalar = _scalar(value)
                if key != "epoch" and scalar is not None:
                    self.board.add_scalar(_tag(key), scalar, record["epoch"])
        self.board.flush()

    def close(self) -> None:
        """Close the TensorBoard writer (again: nothing)."""
        if self.board is not None:
            self.board.close()
            self.board = None
