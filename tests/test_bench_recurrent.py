"""The recurrent benchmark's nets (``benchmarks/bench_recurrent.py``): deepspike and snnTorch run the same net."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_recurrent  # noqa: E402


def test_snntorch_net_has_deepspikes_parameters_and_gives_its_scores_and_gradients():
    """snnTorch's RLeaky kept the bias of its feedback ``nn.Linear`` (256 more trained parameters, one more add per
    step) where deepspike's net has none; with the bias gone and deepspike's weights copied in, both nets give the
    same scores and weight gradients on the benchmark's input."""
    pytest.importorskip("snntorch")
    torch.manual_seed(0)
    ours, theirs = bench_recurrent._deepspike(), bench_recurrent._snntorch()
    mine = dict(ours.named_parameters())
    pairs = [(mine["body.0.feedforward.module.weight"], theirs.fc_in.weight),
             (mine["body.0.recurrent.module.weight"], theirs.lif.recurrent.weight),
             (mine["body.1.module.weight"], theirs.fc_out.weight)]
    assert sum(p.numel() for p in theirs.parameters() if p.requires_grad) == sum(p.numel() for p in mine.values())
    with torch.no_grad():
        for a, b in pairs:
            b.copy_(a)
    x, y = bench_recurrent._inputs()
    x, y = 4 * x[:4], y[:4]  # stronger input: the hidden layer fires
    for net in (ours, theirs):
        torch.nn.functional.cross_entropy(net(x), y).backward()
    torch.testing.assert_close(theirs(x), ours(x))
    for a, b in pairs:
        assert a.grad.abs().sum() > 0
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6 * a.grad.abs().max().item())
