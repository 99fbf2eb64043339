"""Spike inputs saved as uint8 (``layers.spike_storage``): exact codes, the same gradients bit for bit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepspike.layers import spike_storage
from deepspike.layers.sew import SewBlock
from deepspike.layers.spike_storage import _pack, mark_spikes, spike_quantum
from deepspike.layers.spiking_sequential import SpikingSequential
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons import LIF


def _grads(x: torch.Tensor, layer: nn.Module, quantum: int | None):
    x = x.clone().requires_grad_(True)
    inp = x * 1.0
    if quantum is not None:
        mark_spikes(inp, quantum)
    out = TimeDistributed(layer)(inp)
    out.pow(2).sum().backward()
    return out.detach(), x.grad, layer.weight.grad.clone()


def test_marked_spikes_give_the_same_gradients_bit_for_bit():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    for quantum, x in ((1, (torch.rand(2, 3, 3, 6, 6) > 0.5).float()),
                       (4, torch.randint(0, 5, (2, 3, 3, 6, 6)).float() / 4)):
        ref = _grads(x, conv, None)
        conv.weight.grad = None
        got = _grads(x, conv, quantum)
        conv.weight.grad = None
        for a, b in zip(ref, got, strict=True):
            assert torch.equal(a, b)


def test_values_that_are_not_multiples_stay_float32():
    x = torch.rand(2, 3, 5)  # not multiples of 1: the round trip fails, the float tensor is saved
    assert _pack(x, 1) is x
    assert _pack(torch.full((3,), 300.0), 1) is not None and torch.is_tensor(_pack(torch.full((3,), 300.0), 1))
    codes, quantum, dtype = _pack(torch.tensor([0.0, 0.25, 0.5, 2.0]), 4)
    assert codes.dtype == torch.uint8 and codes.tolist() == [0, 1, 2, 8] and (quantum, dtype) == (4, torch.float32)
    lin = nn.Linear(5, 2)
    ref = _grads(x, lin, None)
    lin.weight.grad = None
    got = _grads(x, lin, 1)
    for a, b in zip(ref, got, strict=True):
        assert torch.equal(a, b)


def test_spiking_layers_mark_their_outputs():
    seq = SpikingSequential(TimeDistributed(nn.Conv2d(2, 3, 3, padding=1)), LIF(decay=0.5, threshold=0.3))
    out = seq(torch.rand(2, 2, 2, 4, 4))
    assert spike_quantum(out) == 1
    block = SewBlock(SpikingSequential(TimeDistributed(nn.Conv2d(3, 3, 3, padding=1)), LIF(decay=0.5, threshold=0.3)),
                     SpikingSequential(), "add")
    assert spike_quantum(block(mark_spikes((torch.rand(2, 2, 3, 4, 4) > 0.5).float(), 1))) == 1
    assert spike_quantum(block(torch.rand(2, 2, 3, 4, 4))) is None  # an unmarked shortcut: no mark


def test_an_outer_saved_tensor_hook_sees_the_codes():
    """A memory count around the layer (``benchmarks/tensor_memory.py``) sees the uint8 codes, not nothing."""
    seen: dict[int, torch.dtype] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.dtype
        return t

    spikes = mark_spikes((torch.rand(4, 8, 64) > 0.5).float().requires_grad_(True), 1)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = TimeDistributed(nn.Linear(64, 3))(spikes)
    assert sorted(map(str, seen.values())) == ["torch.float32", "torch.uint8"]  # the weight, the codes
    out.sum().backward()


def test_an_average_pool_multiplies_the_quantum():
    spikes = mark_spikes((torch.rand(2, 2, 3, 4, 4) > 0.5).float(), 1)
    pooled = TimeDistributed(nn.AvgPool2d(2))(spikes)
    assert spike_quantum(pooled) == 4
    assert spike_quantum(TimeDistributed(nn.Flatten())(pooled)) == 4
    assert spike_quantum(TimeDistributed(nn.AvgPool2d(2, divisor_override=3))(spikes)) is None
    assert isinstance(_pack(pooled.flatten(0, 1), 4), tuple)  # exact codes


def test_the_one_pass_kernel_agrees_with_the_three_torch_passes():
    """The numba packing (``spike_codes_kernels``) against torch's cast, cast back and compare, on every layout
    and on values it must refuse (not multiples, negative, 256 and above, NaN)."""
    pytest.importorskip("numba")
    torch.manual_seed(1)
    spikes = (torch.rand(3, 4, 5, 6) > 0.6).float()
    cases = [(spikes, 1), (spikes.contiguous(memory_format=torch.channels_last), 1),
             (torch.randint(0, 9, (70000,)).float() / 4, 4), (torch.randint(0, 256, (5, 7)).float(), 1)]
    for bad in (0.5, -1.0, 256.0, float("nan")):
        x = spikes.clone()
        x[1, 2, 3, 4] = bad
        cases.append((x, 1))
    for x, q in cases:
        made = spike_storage._codes_by_kernel(x, q)
        torch_codes = (x * q).to(torch.uint8)
        exact = torch.equal(torch_codes.float() / q, x)
        assert (made is not None) == exact
        if made is not None:
            codes, largest = made
            assert torch.equal(codes, torch_codes) and codes.stride() == x.stride()
            assert largest == int(torch_codes.max())


def test_a_spike_tensor_read_by_two_convolutions_is_packed_once(monkeypatch):
    """The codes made for the first reader are attached to the tensor and saved by the second (SEW-ResNet's
    downsampling block reads its input in two convolutions), with the same gradients as unpacked inputs."""
    made = []
    real = spike_storage.exact_codes
    monkeypatch.setattr(spike_storage, "exact_codes", lambda *a: made.append(a) or real(*a))
    torch.manual_seed(8)
    x = (torch.rand(3, 2, 4, 6, 6) > 0.5).float()
    convs = [nn.Conv2d(4, 5, 3, padding=1), nn.Conv2d(4, 5, 1, stride=2)]
    inp = mark_spikes(x.clone().requires_grad_(), 1) * 1.0
    mark_spikes(inp, 1)
    out = sum(TimeDistributed(c)(inp).sum() for c in convs)
    codes, largest = spike_storage.attached_codes(inp)
    assert len(made) == 1 and largest == 1 and torch.equal(codes.float(), inp)
    out.backward()
    packed = [c.weight.grad.clone() for c in convs]
    for c in convs:
        c.weight.grad = None
    sum(TimeDistributed(c)(x * 1.0).sum() for c in convs).backward()  # unmarked: saved in float32
    for a, c in zip(packed, convs, strict=True):
        assert torch.equal(a, c.weight.grad)


def test_attached_codes_are_saved_as_they_are():
    x = mark_spikes((torch.rand(2, 3, 4) > 0.5).float().requires_grad_(), 1)
    codes = x.detach().to(torch.uint8)
    spike_storage.attach_codes(x, codes, 1)
    assert spike_storage.spike_codes(x) is codes
    assert spike_quantum(x) == 1
