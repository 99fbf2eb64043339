"""benchmarks/conversion_reset_digits.sh end to end at a tiny size: one ANN trained for an epoch, converted with both
resets, and its table's accuracies equal to the converted runs' own accuracy curves."""

import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_reset_table_reads_the_converted_runs(tmp_path):
    env = {**os.environ, "NETS": "vgg", "ACTIVATIONS": "relu", "EPOCHS": "1", "TIMESTEPS": "4", "TABLE_STEPS": "2 4",
           "DEEPSPIKE": str(Path(sys.executable).with_name("deepspike"))}
    done = subprocess.run(["bash", str(ROOT / "benchmarks/conversion_reset_digits.sh"), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = (tmp_path / "conversion_reset_digits.md").read_text().splitlines()
    assert rows[0] == "| ANN | ANN accuracy | reset | T = 2 | T = 4 |" and len(rows) == 4
    for row, reset in zip(rows[2:], ("zero", "subtract")):
        lines = (tmp_path / f"vgg_relu_max_{reset}" / "accuracy_vs_timesteps.csv").read_text().splitlines()
        curve = {r["timesteps"]: float(r["accuracy"]) for r in csv.DictReader(lines)}
        assert row.split(" | ")[2:] == [reset, f"{100 * curve['2']:.2f}%", f"{100 * curve['4']:.2f}% |"]


def test_no_output_folder_is_a_usage_error():
    done = subprocess.run(["bash", str(ROOT / "benchmarks/conversion_reset_digits.sh")], capture_output=True, text=True)
    assert done.returncode != 0 and "usage: conversion_reset_digits.sh OUT_DIR" in done.stderr
