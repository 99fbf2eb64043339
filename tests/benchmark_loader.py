"""Test helpers for the benchmark scripts: loading one whose top imports a peer (SpikingJelly) that this venv may
lack, to test its options; a disk that fills up at the first write, to test that a result file is written whole."""

from __future__ import annotations

import errno
import importlib.util
import io
import sys
import types
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
STUBS = {"spikingjelly": ("spikingjelly", "spikingjelly.activation_based", "spikingjelly.activation_based.functional"),
         "exact_snn": ("exact_snn",)}
"""The peers a script may import at its top (bench venv only), and the modules that stand in for each."""


def load_benchmark(name: str, monkeypatch) -> types.ModuleType:
    """``benchmarks/NAME.py`` as a fresh module (not in ``sys.modules``); where a peer of ``STUBS`` is not installed,
    its modules are empty stand-ins for the test's duration (enough for the script's imports, not for measuring)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    for peer, stubs in STUBS.items():
        if importlib.util.find_spec(peer) is None:
            for stub in stubs:
                module = types.ModuleType(stub)
                module.__getattr__ = lambda name: None  # any name the script imports from it
                monkeypatch.setitem(sys.modules, stub, module)
    spec = importlib.util.spec_from_file_location(f"{name.replace('/', '_')}_under_test", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _FullDisk:
    """A file opened for writing (``io.open`` has truncated it already, as on a real disk) whose writes fail."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()


def full_disk(monkeypatch) -> None:
    """From now on in this test, every file opened for writing through ``io.open`` (``Path.write_text``,
    ``os.fdopen``, so also ``deepspike.core.atomic``) is truncated or created, then refuses its first write with
    ENOSPC."""
    real = io.open

    def opener(file, mode="r", *args, **kwargs):
        opened = real(file, mode, *args, **kwargs)
        return _FullDisk(opened) if any(c in mode for c in "wax+") else opened

    monkeypatch.setattr(io, "open", opener)
