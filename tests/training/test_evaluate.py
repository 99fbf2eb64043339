"""Evaluation refuses an inference T whose input alone cannot fit in memory, before allocating anything
(issue 19, item 12: ``timesteps RUN --eval-T 100000000`` tried to allocate ~100 TB)."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.methods.registry import get_method
from deepspike.training.evaluate import check_timesteps_fit, evaluate
from deepspike.training.runtime import device_memory_bytes


class Recorder(torch.nn.Module):
    """A time-stepped stand-in that records the T it was asked for and allocates nothing."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.calls = []

    def forward(self, x, timesteps=None):
        self.calls.append(timesteps)
        return torch.zeros(len(x), 10)


class Method:
    def loss(self, out, y):
        return out.sum() * 0.0

    def loss_at(self, out, y, timesteps):
        return self.loss(out, y)

    def predict(self, out):
        return out.argmax(1)


def test_a_huge_t_is_refused_before_the_model_runs():
    model = Recorder()
    batches = [(torch.rand(256, 1, 8, 8), torch.zeros(256, dtype=torch.int64))]
    with pytest.raises(ConfigError, match=r"inference T=100000000 needs at least \d+\.\d GiB for one batch's "
                                          r"\[T, B, \.\.\.\] input \(256 samples of shape \[1, 8, 8\]\)"):
        evaluate(model, Method(), batches, timesteps=100_000_000)
    assert model.calls == []
    assert evaluate(model, Method(), batches, timesteps=100)["samples"] == 256 and model.calls == [100]


@pytest.mark.parametrize("timesteps", [0, -3, 2.0, True])
def test_a_t_that_is_no_whole_number_of_steps_is_refused(timesteps):
    """T = 0 ran the net at its own T (``if timesteps:``), and the sweep wrote that score down as T = 0's."""
    model = Recorder()
    batches = [(torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.int64))]
    with pytest.raises(ConfigError, match=f"^evaluation time steps must be an integer >= 1, got {timesteps!r}$"):
        evaluate(model, Method(), batches, timesteps=timesteps)
    assert model.calls == []
    evaluate(model, Method(), batches)
    assert model.calls == [None]  # no T given: the net's own


def test_the_bound_is_the_devices_memory():
    x = torch.zeros(4, 3, 2, 2)  # 192 bytes per step
    memory = device_memory_bytes(x.device)
    assert memory > 2**28  # the machine's physical memory, in bytes
    check_timesteps_fit(x, memory // 192)
    with pytest.raises(ConfigError, match=f"not even T={memory // 192 + 1:,} fits"):
        check_timesteps_fit(x, memory // 192 + 1)


class FixedRates(torch.nn.Module):
    """Rates ``[[0.5, 0.25]]`` at whatever T it is asked to run."""

    def forward(self, x, timesteps=None):
        return torch.tensor([[0.5, 0.25]]).expand(len(x), 2)


def test_an_mse_count_loss_at_another_t_counts_over_that_t():
    """mse_count at T' = 4 of a net trained at T = 8: counts r T' = (2, 1), targets (4, 0) for label 0, squared
    errors (4, 1), mean 2.5, over T': 0.625. Before: 1.25, the counts and targets of T = 8 ((4, 2) against (8, 0):
    mean 10, over 8), off by T / T' = 2."""
    method = get_method("stbp", {"timesteps": 8, "loss": "mse_count"})
    batches = [(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long))]
    assert evaluate(FixedRates(), method, batches, timesteps=4)["loss"] == pytest.approx(0.625, rel=1e-6)
    assert evaluate(FixedRates(), method, batches)["loss"] == pytest.approx(1.25, rel=1e-6)  # its own T = 8
