"""LeanAvgPool2d: the same outputs and gradients as nn.AvgPool2d, without saving its input."""

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.lean_avg_pool import LeanAvgPool2d

CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=2, divisor_override=3),
]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_same_values_and_gradients_as_torch(kwargs):
    x = torch.randn(5, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    g = None
    outs, grads = [], []
    for cls in (nn.AvgPool2d, LeanAvgPool2d):
        xi = x.clone().requires_grad_()
        y = cls(**kwargs)(xi)
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)) if g is None else g
        (y * g).sum().backward()
        outs.append(y.detach())
        grads.append(xi.grad)
    assert torch.equal(outs[0], outs[1])
    assert torch.equal(grads[0], grads[1])


TILED = [dict(kernel_size=2), dict(kernel_size=3), dict(kernel_size=(2, 3)), dict(kernel_size=2, stride=2)]


@pytest.mark.parametrize("kwargs", TILED, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last], ids=["nchw", "channels_last"])
def test_tiling_windows_fast_path(kwargs, fmt):
    """Tiling windows take the fast path: values equal ATen up to summation order (exactly on spikes),
    gradients bit for bit, both in the input's memory layout; the no-grad path gives the same values."""
    gen = torch.Generator().manual_seed(0)
    for x in (torch.randn(4, 3, 12, 18, generator=gen), (torch.rand(4, 3, 12, 18, generator=gen) > 0.7).float()):
        x = x.contiguous(memory_format=fmt)
        spikes = bool(((x == 0) | (x == 1)).all())
        ref_x, x = x.clone().requires_grad_(), x.clone().requires_grad_()
        ref, y = nn.AvgPool2d(**kwargs)(ref_x), LeanAvgPool2d(**kwargs)(x)
        g = torch.randn(y.shape, generator=gen)
        (ref * g).sum().backward()
        (y * g).sum().backward()
        if spikes:
            assert torch.equal(y, ref)
        else:
            torch.testing.assert_close(y, ref, rtol=0, atol=1e-6)
        assert torch.equal(x.grad, ref_x.grad)
        assert y.is_contiguous(memory_format=fmt) and x.grad.is_contiguous(memory_format=fmt)
        with torch.no_grad():
            assert torch.equal(LeanAvgPool2d(**kwargs)(x), y)


def test_non_contiguous_input_falls_back_to_aten():
    x = torch.randn(2, 3, 12, 24)[..., ::2].requires_grad_()  # neither contiguous nor channels-last
    y = LeanAvgPool2d(2)(x)
    assert torch.equal(y, nn.AvgPool2d(2)(x))


def _saved_bytes(module: nn.Module, x: torch.Tensor) -> int:
    """Bytes autograd saves while running ``module(x)`` (through saved-tensor hooks)."""
    sizes = []

    def pack(t):
        sizes.append(t.untyped_storage().nbytes() if t.stride() != (0,) * t.dim() else 0)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x)
    return sum(sizes)


def test_saves_nothing_where_torch_saves_the_input():
    x = torch.rand(8, 4, 16, 16, requires_grad=True)
    assert _saved_bytes(nn.AvgPool2d(2), x) == x.numel() * 4  # torch keeps the whole float32 input
    assert _saved_bytes(LeanAvgPool2d(2), x) == 0


def test_no_grad_and_3d_inputs_fall_back_to_torch():
    pool = LeanAvgPool2d(2)
    x = torch.rand(3, 7, 7)  # 7 x 7: the windows do not tile it (tiling no-grad inputs: the test above)
    assert torch.equal(pool(x), nn.AvgPool2d(2)(x))
    with torch.no_grad():
        assert torch.equal(pool(x.unsqueeze(0)), nn.AvgPool2d(2)(x.unsqueeze(0)))
    assert isinstance(pool, nn.AvgPool2d)


@pytest.mark.parametrize("args, kwargs, match", [
    ((0,), {}, "kernel_size=0"), ((True,), {}, "kernel_size=True"), ((2, -1), {}, "stride=-1"),
    ((2, 2.5), {}, "stride=2.5"), ((2, 2, 3), {}, "padding 3 must be in"), (((2, 0),), {}, r"kernel_size=\(2, 0\)"),
    ((2,), {"divisor_override": 0}, "divisor_override=0"),
])
def test_a_bad_window_is_refused_when_built_in_one_line(args, kwargs, match):
    """kernel_size=0 was a ZeroDivisionError at the first forward, stride=-1 and padding=3 a RuntimeError in
    ATen, stride=2.5 a TypeError; now a ConfigError naming the argument when the layer is built."""
    with pytest.raises(ConfigError, match=f"LeanAvgPool2d.*{match}") as caught:
        LeanAvgPool2d(*args, **kwargs)
    assert "\n" not in str(caught.value)


def test_pairs_and_the_default_stride_still_build():
    x = torch.rand(2, 3, 4, 4)
    assert LeanAvgPool2d((2, 3), 1, (1, 1))(x).shape == (2, 3, 5, 4)
    assert LeanAvgPool2d(2, padding=1)(x).shape == (2, 3, 3, 3)
