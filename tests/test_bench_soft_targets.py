"""benchmarks/distill_soft_targets.py against what it must equal: the run's own test accuracy (``deepspike eval``),
1 / K as tau grows without bound, 1 as tau shrinks to 0, and a mean largest probability that falls as tau grows."""

import sys
from pathlib import Path

import pytest
import torch

from deepspike.config import load_config
from deepspike.training.evaluate import evaluate
from deepspike.training.reload import load_run
from deepspike.training.run_setup import make_batches
from deepspike.training.trainer import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from distill_soft_targets import soft_target_peaks  # noqa: E402


def test_soft_target_peaks_of_a_tiny_ann(tmp_path):
    config = load_config(None, ["method.name=ann", "model.name=mlp", "model.args.hidden=[16]", "data.name=digits",
                                "train.epochs=1", "train.progress=false"])
    Trainer(config, tmp_path).fit()
    result = soft_target_peaks(str(tmp_path), [1e-6, 1.0, 4.0, 1e9])
    saved, parts, _ = load_run(tmp_path, device="cpu")
    test_batches = make_batches(saved, parts.data, "test", torch.device("cpu"), training=False)
    own = evaluate(parts.model, parts.method, test_batches)
    assert result["samples"] == own["samples"] == 360 and result["accuracy"] == pytest.approx(own["accuracy"])
    peaks = [result["largest"][str(tau)] for tau in (1e-6, 1.0, 4.0, 1e9)]
    assert peaks[0] == pytest.approx(1.0) and peaks[-1] == pytest.approx(0.1)
    assert peaks[0] > peaks[1] > peaks[2] > peaks[3]
