"""Decoders on hand-made spike and membrane tensors."""

import math

import numpy as np
import pytest
import torch

from deepspike.coding import (
    final_membrane_rate,
    first_spike_class,
    first_spike_time,
    mean_membrane,
    spike_count,
    vote,
)
from deepspike.coding.latency import latency_spike_train
from deepspike.core.errors import ConfigError

INF = math.inf

# [T=4, B=2, K=3]; sample 0: neuron 0 fires at t=1,3; neuron 1 at t=0; neuron 2 never.
#                  sample 1: neuron 0 never;       neuron 1 at t=2,3; neuron 2 at t=2.
S = torch.tensor(
    [
        [[0, 1, 0], [0, 0, 0]],
        [[1, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 1, 1]],
        [[1, 0, 0], [0, 1, 0]],
    ],
    dtype=torch.float32,
)


def test_spike_count_and_mean_membrane():
    assert spike_count(S).tolist() == [[2, 1, 0], [0, 2, 1]]
    v = torch.tensor([[[1.0, -2.0]], [[3.0, 4.0]]])  # [T=2, B=1, K=2]: means (1+3)/2 = 2, (-2+4)/2 = 1
    assert mean_membrane(v).tolist() == [[2.0, 1.0]]


def test_decoders_refuse_a_tensor_missing_a_dimension():
    """spike_count of counts [B, K] summed over the batch ([[1, 2], [3, 4]] -> [4, 6]) and first_spike_class of 1-D
    times gave one scalar class; both now name the shape they need."""
    with pytest.raises(ConfigError, match=r"spike_count needs spikes \[T, B, K\].*\[2, 2\]"):
        spike_count(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    # maps [B, C, H, W] were summed over the batch too ([2, 1, 1, 1] of 1 and 2 -> [[[3]]]), traces [B, K] averaged
    with pytest.raises(ConfigError, match=r"spike_count needs spikes \[T, B, K\] \(time first, 3 axes\); got \[2, 1"):
        spike_count(torch.tensor([1.0, 2.0]).reshape(2, 1, 1, 1))
    with pytest.raises(ConfigError, match=r"mean_membrane needs a membrane trace \[T, B, K\].*got \[2, 2\]"):
        mean_membrane(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    with pytest.raises(ConfigError, match=r"first_spike_class needs spike times \[B, K\].*\[3\]"):
        first_spike_class(torch.tensor([2.0, 1.0, 3.0]))
    with pytest.raises(ConfigError, match=r"\[B, K\]"):
        first_spike_class(torch.zeros(4, 2, 3))
    # NumPy arrays were AttributeErrors ("'numpy.ndarray' object has no attribute 'dim'") or vote's TypeError
    array = np.zeros((2, 3), dtype=np.float32)
    for call, match in ((first_spike_class, r"first_spike_class needs spike times \[B, K\]; got ndarray$"),
                        (first_spike_time, r"first_spike_time needs spikes \[T, B, K\] .*got ndarray:"),
                        (spike_count, r"spike_count needs spikes \[T, B, K\] .*got ndarray:"),
                        (lambda a: vote(a, 3), r"vote needs rates \[B, K\*G\] as a torch.Tensor; got ndarray$")):
        with pytest.raises(ConfigError, match=match):
            call(array)


def test_final_membrane_rate():
    # V(T) / (th * T): 6 / (0.5 * 4) = 3; -2 / 2 = -1
    assert final_membrane_rate(torch.tensor([[6.0, -2.0]]), T=4, threshold=0.5).tolist() == [[3.0, -1.0]]
    for T, threshold in ((0, 1.0), (True, 1.0), (2.0, 1.0), (4, float("nan")), (4, "1")):  # True and 2.0 passed
        with pytest.raises(ConfigError, match="needs a whole T >= 1 and a finite threshold > 0"):
            final_membrane_rate(torch.zeros(1, 2), T=T, threshold=threshold)


def test_final_membrane_rate_takes_the_final_membrane_only():
    """A trace [T, B, K] passed whole came back as [T, B, K] 'scores' (2 x 1 x 2 here), a NumPy array as an array."""
    for v in (torch.zeros(2, 1, 2), torch.zeros(2), np.zeros((1, 2))):
        with pytest.raises(ConfigError, match=r"^final_membrane_rate needs the final membrane V\(T\) \[B, K\]"):
            final_membrane_rate(v, T=4)


def test_vote_groups_are_contiguous():
    # K = 2 classes, G = 3 neurons each: class 0 = mean(1, 2, 3) = 2, class 1 = mean(0, 0, 6) = 2 / 3 ...
    rates = torch.tensor([[1.0, 2.0, 3.0, 0.0, 0.0, 6.0], [0.0, 0.0, 0.0, 0.3, 0.6, 0.9]])
    out = vote(rates, num_classes=2)
    torch.testing.assert_close(out, torch.tensor([[2.0, 2.0], [0.0, 0.6]]))
    with pytest.raises(ConfigError, match="6 output neurons cannot be split into 4"):
        vote(rates, num_classes=4)
    with pytest.raises(ConfigError, match="cannot be split into 2.0 equal"):  # a TypeError in reshape before
        vote(rates, num_classes=2.0)


@pytest.mark.parametrize("num_classes", [1, 2])
def test_vote_refuses_rates_of_no_output_neuron(num_classes):
    """0 neurons split into groups of G = 0: every class scored the mean of an empty group, NaN."""
    with pytest.raises(ConfigError, match=f"^vote: 0 output neurons cannot be split into {num_classes} equal"):
        vote(torch.zeros(3, 0), num_classes)


def test_first_spike_time_and_class():
    t = first_spike_time(S, dt=0.5)
    assert t.tolist() == [[0.5, 0.0, INF], [INF, 1.0, 1.0]]
    # sample 0: earliest is neuron 1; sample 1: tie between neurons 1 and 2 -> lowest index 1
    assert first_spike_class(t).tolist() == [1, 1]
    times = torch.tensor([[INF, INF, INF], [2.0, 2.0, 2.0], [3.0, INF, 1.0]])
    assert first_spike_class(times).tolist() == [-1, 0, 2]
    assert first_spike_class(times, no_spike_class=7).tolist() == [7, 0, 2]


def test_first_spike_time_int_and_bool_input():
    assert first_spike_time(S.bool()).tolist() == [[1.0, 0.0, INF], [INF, 2.0, 2.0]]
    assert first_spike_time(S.long()).dtype == torch.float32


def test_first_spike_time_of_no_steps_is_no_spike():
    """A train of T = 0 steps raised IndexError (argmax over an empty dim); no step holds no spike."""
    t = first_spike_time(torch.zeros(0, 2, 3, dtype=torch.float64), dt=0.5)
    assert t.shape == (2, 3) and t.dtype == torch.float64 and torch.isposinf(t).all()
    assert first_spike_time(torch.zeros(0, 4, 1, dtype=torch.bool)).dtype == torch.float32


@pytest.mark.parametrize("bad", [math.nan, -INF])
def test_first_spike_class_refuses_nan_or_negative_infinite_times(bad):
    """argmin picked a NaN neuron as the class ([1, nan, 3] -> 1)."""
    with pytest.raises(ConfigError, match="NaN or -inf"):
        first_spike_class(torch.tensor([[1.0, bad, 3.0]]))
    with pytest.raises(ConfigError, match="no output neuron"):
        first_spike_class(torch.zeros(2, 0))


@pytest.mark.parametrize("dt", [0.0, -1.0, math.nan, math.inf])
def test_first_spike_time_refuses_a_step_that_is_not_finite_and_positive(dt):
    # dt = -1 gave negative times, nan NaN times, inf made a neuron that fired at step 1 look silent (+inf)
    with pytest.raises(ConfigError, match=r"^time step dt=.* must be a finite number > 0$"):
        first_spike_time(torch.tensor([[[0.0]], [[1.0]]]), dt=dt)


@pytest.mark.parametrize("dt", [True, "0.5", None, [1.0]])
def test_a_step_that_is_no_number_is_refused_in_one_line(dt):
    """Before: dt=True passed as a step of 1 in both functions; "0.5", None or a list raised TypeError from
    ``0 < dt``."""
    with pytest.raises(ConfigError, match=r"^time step dt=.* must be a finite number > 0$"):
        first_spike_time(torch.tensor([[[0.0]], [[1.0]]]), dt=dt)
    with pytest.raises(ConfigError, match=r"^time step dt=.* must be a finite number > 0$"):
        latency_spike_train(torch.tensor([0.5]), T=4, dt=dt)


@pytest.mark.parametrize("dtype, steps, step", [(torch.bfloat16, 300, 299), (torch.bfloat16, 300, 257),
                                                (torch.float16, 3000, 2049)])
def test_first_spike_time_of_half_precision_spikes_is_the_exact_step(dtype, steps, step):
    """The times of bfloat16 / float16 spikes were computed and returned in that dtype, which holds whole numbers
    exactly only up to 256 / 2048: a spike at step 299 of 300 came out at time 300 (and ``latency_spike_train`` then
    put it outside the window), one at 257 at 256. They are float32 now: ``dt * n`` exactly, and the round trip
    gives the spike back at its own step."""
    s = torch.zeros(steps, 2, 1, dtype=dtype)
    s[step, 0, 0] = 1
    t = first_spike_time(s, dt=0.5)
    assert t.dtype == torch.float32 and t.tolist() == [[0.5 * step], [INF]]
    assert torch.equal(latency_spike_train(first_spike_time(s), steps), s.float())


@pytest.mark.parametrize("dtype, count", [(torch.bfloat16, 301), (torch.float16, 2049)])
def test_spike_count_of_half_precision_spikes_is_exact(dtype, count):
    """Counts of bfloat16 / float16 spikes were summed into that dtype: 301 bfloat16 spikes counted 300, tied with a
    neuron of 300 (argmax then picked the wrong one). Now float32 and exact; integer spikes keep int64 counts."""
    s = torch.zeros(count + 10, 1, 2, dtype=dtype)
    s[:count, 0, 0], s[:count - 1, 0, 1] = 1, 1
    n = spike_count(s)
    assert n.dtype == torch.float32 and n.tolist() == [[count, count - 1]]
    assert spike_count(s.bool()).dtype == torch.int64


def test_first_spike_time_takes_time_batch_and_neurons():
    """Spikes ``[B, K]`` without a time axis were read as ``[T, B]``: samples [[0, 1], [1, 1]] gave the neurons the
    'times' [1, 0] (the first sample that fired); like ``spike_count``, exactly ``[T, B, K]`` is taken now."""
    with pytest.raises(ConfigError, match=r"^first_spike_time needs spikes \[T, B, K\] \(time first, 3 axes\); got \["):
        first_spike_time(torch.tensor([[0.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(ConfigError, match=r"got \[3, 2, 1, 1\]"):
        first_spike_time(torch.zeros(3, 2, 1, 1))
    # a time-first map is pointed to flatten(2), not to the counts' x.sum(0): the times it gives are the map's
    s = torch.zeros(4, 2, 3, 5, 5)
    s[2, 0, 1, 3, 4] = s[3, 0, 1, 3, 4] = s[1, 1, 0, 0, 0] = 1
    with pytest.raises(ConfigError, match=r"got \[4, 2, 3, 5, 5\]: for a time-first map \[T, B, ...\] pass "
                       r"s.flatten\(2\) and reshape the times \[B, K\] it gives to \[B, ...\]$"):
        first_spike_time(s)
    times = first_spike_time(s.flatten(2)).view(2, 3, 5, 5)
    assert (times[0, 1, 3, 4], times[1, 0, 0, 0], torch.isinf(times).sum()) == (2.0, 1.0, 148)
    assert first_spike_time(torch.tensor([[[0.0, 1.0]], [[1.0, 1.0]]])).tolist() == [[1.0, 0.0]]
