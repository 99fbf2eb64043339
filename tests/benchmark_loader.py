"""Loading a benchmark script whose top imports a peer (SpikingJelly) that this venv may lack, to test its options."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
STUBS = ("spikingjelly", "spikingjelly.activation_based", "spikingjelly.activation_based.functional")


def load_benchmark(name: str, monkeypatch) -> types.ModuleType:
    """``benchmarks/NAME.py`` as a fresh module (not in ``sys.modules``); where SpikingJelly is not installed, its
    modules are empty stand-ins for the test's duration (enough for the script's imports, not for measuring)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    if importlib.util.find_spec("spikingjelly") is None:
        for stub in STUBS:
            module = types.ModuleType(stub)
            module.functional = module.neuron = module.surrogate = module.learning = None
            monkeypatch.setitem(sys.modules, stub, module)
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
