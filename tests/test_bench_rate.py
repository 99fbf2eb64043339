"""The rate-coded benchmark's parent process (``benchmarks/bench_rate.py``): its cases, its options, its files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import bench_rate  # noqa: E402


def _case_args(**changes) -> argparse.Namespace:
    args = {"batch": 1, "warmup": 0, "steps": 1, "threads": 1, "memory_format": "contiguous", "precision": "fp32",
            "case_timeout": 1800.0}
    return argparse.Namespace(**{**args, **changes})


def test_a_case_past_its_timeout_is_an_error_row_not_the_end_of_the_run():
    """A case that outlives ``--case-timeout`` ended the whole run with a TimeoutExpired traceback, losing every row
    measured before it; now it is one row saying so."""
    row = bench_rate._spawn(sys.executable, _case_args(case_timeout=0.01), "ann", "lenet", 1, {})
    assert row == {"framework": "ann", "net": "lenet", "T": 1, "error": "timeout after 0.01 s"}
