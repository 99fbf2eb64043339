"""Matplotlib, loaded only when a figure is drawn; figures written atomically."""

from __future__ import annotations

import io
from pathlib import Path

from deepspike.core.atomic import atomic_write


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, imported on first use (matplotlib takes ~0.5 s to load)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, dpi: int) -> Path:
    """Write ``fig`` to ``path`` (its format from the suffix, PNG by default) atomically (``core.atomic``: the old
    file or the whole new one) and close it; returns ``path``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi)
    pyplot().close(fig)
    atomic_write(Path(path), lambda f: f.write(buffer.getvalue()))
    return Path(path)
