"""Spiking measures of TTFS networks against hand-counted values."""

import math

import pytest
import torch

from deepspike.ttfs.measures import TTFSMeasures

INF = math.inf


def test_hand_counted_measures():
    acc = TTFSMeasures(["h", "out"])
    hidden = torch.tensor([[0.5, 1.0, 3.0, INF], [2.0, INF, INF, INF]])
    output = torch.tensor([[2.0, 1.5], [INF, INF]])
    acc.add([hidden], output)
    r = acc.result()
    assert r["latency"] == 1.5  # only sample 0 has an output spike, first at 1.5
    assert r["no_output_spike"] == 0.5
    assert r["spiking_fraction/h"] == pytest.approx((3 / 4 + 1 / 4) / 2)
    assert r["spiking_fraction/out"] == pytest.approx((2 / 2 + 0 / 2) / 2)
    # all neurons: (3 + 2 spikes of sample 0) + (1 + 0 of sample 1) over 2 samples x 6 neurons
    assert r["spiking_fraction"] == pytest.approx(6 / 12)
    # before the decision: sample 0: 0.5 and 1.0 < 1.5 -> 2/4; sample 1 (no output spike): 1/4
    assert r["hidden_before_decision"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert r["dead_fraction/h"] == 0.25 and r["dead_fraction"] == 0.25  # neuron 3 never spiked


def test_measures_accumulate_over_batches():
    acc = TTFSMeasures(["h", "out"])
    acc.add([torch.tensor([[1.0, INF]])], torch.tensor([[2.0, 3.0]]))
    acc.add([torch.tensor([[INF, 1.0]])], torch.tensor([[4.0, 3.0]]))
    r = acc.result()
    assert r["latency"] == 2.5 and r["dead_fraction"] == 0.0  # each hidden neuron spiked once
    assert r["hidden_before_decision"] == pytest.approx(0.5)


def test_measures_of_times_off_the_default_device():
    """The accumulator was made on the default device and the counts added from the times' device: with CUDA times
    (or a default device other than theirs, as here) the sum raised 'Expected all tensors to be on the same device'."""
    acc = TTFSMeasures(["h", "out"])
    hidden = torch.tensor([[0.5, 1.0, 3.0, INF], [2.0, INF, INF, INF]])
    output = torch.tensor([[2.0, 1.5], [INF, INF]])
    with torch.device("meta"):
        acc.add([hidden], output)
    assert acc.result()["hidden_before_decision"] == pytest.approx((2 / 4 + 1 / 4) / 2)


@pytest.mark.parametrize("empty_batches", [0, 2])
def test_measures_of_no_sample_are_nan_not_zero(empty_batches):
    """With no batch (or only empty ones) the per-layer spiking fractions and hidden_before_decision came out 0.0
    ("no neuron spiked") though the docstring promises NaN where nothing was seen, and an empty batch raised a
    RuntimeError in add() (reshape of 0 elements to [0, -1]); now every fraction over samples is NaN."""
    acc = TTFSMeasures(["h", "out"])
    for _ in range(empty_batches):
        acc.add([torch.empty(0, 4)], torch.empty(0, 2))
    r = acc.result()
    for key in ("latency", "no_output_spike", "spiking_fraction/h", "spiking_fraction/out", "spiking_fraction",
                "hidden_before_decision", "dead_fraction"):
        assert math.isnan(r[key]), (key, r[key])
    assert "dead_fraction/h" not in r


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_the_latency_of_half_precision_times_is_summed_in_float32(dtype):
    """The decision times were summed in the times' dtype, now in float32 (float64 has no MPS kernels): 1000 float16
    samples deciding at t = 100 gave latency inf (the sum, 1e5, is past float16's 65504), bfloat16 ones at
    3 + U(0, 1) 3.088 for 3.092."""
    m = TTFSMeasures(["h", "out"])
    m.add([torch.full((1000, 20), 50.0, dtype=dtype)], torch.full((1000, 10), 100.0, dtype=dtype))
    assert m.result()["latency"] == 100.0
    g = torch.Generator().manual_seed(0)
    out = (torch.rand(1000, 10, generator=g) + 3).to(dtype)
    m = TTFSMeasures(["h", "out"])
    m.add([torch.full((1000, 20), 1.0, dtype=dtype)], out)
    assert m.result()["latency"] == pytest.approx(out.double().min(1).values.mean().item(), rel=1e-6)


class _NoFloat64(torch.Tensor):
    """Times on a device without float64 (Apple's MPS): an op that makes a float64 tensor there raises, ``cpu()``
    leaves the device."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        if func is torch.Tensor.cpu:
            return out.as_subclass(torch.Tensor)
        if isinstance(out, _NoFloat64) and out.dtype == torch.float64:
            raise TypeError("float64 is not supported on this device")
        return out


def test_measures_of_times_on_a_device_without_float64():
    """The spiking fractions were summed as ``fired.double()`` on the times' device, a TypeError on MPS; the counts
    are whole numbers, divided on the CPU in float64: the same hand-counted fractions."""
    inf = math.inf
    hidden = torch.tensor([[0.5, inf, 2.0], [inf, inf, 0.1]]).as_subclass(_NoFloat64)  # 2/3 and 1/3 fire
    output = torch.tensor([[1.0, inf], [inf, inf]]).as_subclass(_NoFloat64)  # 1/2 and 0 fire
    m = TTFSMeasures(["h", "out"])
    m.add([hidden], output)
    r = m.result()
    assert r["spiking_fraction/h"] == pytest.approx(0.5, abs=1e-15)  # (2/3 + 1/3) / 2
    assert r["spiking_fraction/out"] == pytest.approx(0.25, abs=1e-15)  # (1/2 + 0) / 2
    assert r["latency"] == 1.0 and r["no_output_spike"] == 0.5
