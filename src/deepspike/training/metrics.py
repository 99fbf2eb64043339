"""``metrics.jsonl``: one JSON object per line and per epoch, appended as training goes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from deepspike.core.atomic import atomic_write_text


class MetricsLog:
    """Append-only JSON-lines log. ``truncate_after(epoch)`` drops lines of epochs not yet checkpointed,
    so a resumed run does not log an epoch twice."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(_clean(record)) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def truncate_after(self, epochs_done: int) -> None:
        kept = [r for r in self.read() if r.get("epoch", 0) <= epochs_done]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    """JSON has no inf/nan: write them as null."""
    out = {}
    for k, v in record.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v
    return out
