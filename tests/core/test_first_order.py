"""``core.first_order``: Functions without a second derivative refuse ``create_graph=True`` in one line.

The silent case it closes: an incoming gradient that does not require grad (``dL/ds`` a constant) passes
``once_differentiable`` unnoticed, and a gradient penalty built on the result loses every term through the node.
Every user of the decorator is driven here the way a net drives it; the twice-differentiable ones (the lean
average pool, lee2020's neuron) are checked against autograd's own second derivative.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepspike.core.first_order import first_order_backward

REFUSAL = "no second-order gradient"


class _Square(torch.autograd.Function):
    """``x^2`` whose backward ``2 x g`` is marked first-order (its true second derivative is 2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    @first_order_backward("the test square")
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


def test_first_order_gradient_is_unchanged():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (g,) = torch.autograd.grad(_Square.apply(x).sum(), x)
    assert g.tolist() == [2.0, -4.0, 6.0]


def test_create_graph_with_a_constant_incoming_gradient_is_refused():
    # once_differentiable alone returns 2 x with no graph here: a penalty on it would silently lose d/dx = 2
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=f"{REFUSAL} .*through the test square"):
        torch.autograd.grad(_Square.apply(x).sum(), x, create_graph=True)


def _fused_lif(x):
    from deepspike.neurons import NeuronParams
    from deepspike.neurons.dynamics import neuron_multistep

    return neuron_multistep(x, NeuronParams(decay=0.8, surrogate="sigmoid"), fused=True)[0]


def _low_precision_lif(x):
    from deepspike.neurons import NeuronParams
    from deepspike.neurons.dynamics import neuron_multistep
    from deepspike.neurons.fused_low_precision import low_precision_supported

    x16 = x.bfloat16()
    assert low_precision_supported(x16, NeuronParams())
    return neuron_multistep(x16, NeuronParams())[0].float()


def _learnable_lif(x):
    from deepspike.neurons import NeuronParams
    from deepspike.neurons.learnable import LearnableLIF

    return LearnableLIF(NeuronParams())(x)


def _psn(x):
    from deepspike.neurons.psn import PSN

    return PSN(x.shape[0])(x)


def _batchnorm_neuron(x):
    from deepspike.layers.spiking_sequential import SpikingSequential
    from deepspike.layers.time_distributed import TimeDistributed
    from deepspike.neurons import LIF

    torch.manual_seed(0)
    seq = SpikingSequential(TimeDistributed(nn.Linear(x.shape[-1], 5)), TimeDistributed(nn.BatchNorm1d(5)),
                            LIF(decay=0.7, threshold=0.4))
    return seq(x)


def _onednn_linear(x, monkeypatch):
    from deepspike.layers.cpu_linear import linear

    monkeypatch.setenv("DEEPSPIKE_CPU_MATMUL", "onednn")
    torch.manual_seed(0)
    return linear(nn.Linear(x.shape[-1], 5), x.flatten(0, 1))  # [T B, K]: the layer's 2-D GEMM


def _trace_gradient(x):
    from deepspike.layers.trace_gradient import trace_gradient_step

    torch.manual_seed(0)
    return trace_gradient_step(nn.Linear(x.shape[-1], 5), x, x.detach() * 0.5)


def _ttfs_dense(x):
    from deepspike.ttfs import spike_times

    torch.manual_seed(0)
    t_in = x.flatten(0, 1).abs() + 0.1  # input spike times [B, N]
    return spike_times(t_in, torch.rand(6, t_in.shape[1]) * 0.8, kernel="exp", theta=0.5)


def _recurrent_scan(x):
    from deepspike.neurons import NeuronParams
    from deepspike.neurons.recurrent_scan import recurrent_multistep

    torch.manual_seed(0)
    return recurrent_multistep(x, torch.randn(x.shape[-1], x.shape[-1]) * 0.3, None, NeuronParams())[0]


KERNEL_PATHS = {
    "fused LIF": (_fused_lif, "the fused IF/LIF kernel"),
    "bfloat16 LIF": (_low_precision_lif, "the fused bfloat16/float16"),
    "learnable LIF": (_learnable_lif, "the fused learnable-LIF kernel"),
    "PSN": (_psn, "the fused parallel spiking neuron"),
    "batch-norm + neuron": (_batchnorm_neuron, "the fused batch-norm \\+ neuron kernel"),
    "oneDNN linear": (_onednn_linear, "the oneDNN linear layer"),
    "OTTT trace": (_trace_gradient, "OTTT's trace weight gradient"),
    "TTFS": (_ttfs_dense, "the closed-form TTFS layer"),
    "recurrent scan": (_recurrent_scan, "the recurrent scan"),
}


@pytest.mark.parametrize("path", list(KERNEL_PATHS))
def test_every_first_order_kernel_refuses_a_gradient_penalty(path, monkeypatch):
    """A gradient penalty ``||d(sum out * c)/dx||^2`` (``c`` a constant, so ``dL/d out`` needs no graph): before
    the decorator the kernels returned ``dL/dx`` without a graph and the penalty dropped their terms."""
    pytest.importorskip("numba")
    run, name = KERNEL_PATHS[path]
    x = (torch.rand(6, 4, 8) * 2).requires_grad_()
    out = run(x, monkeypatch) if path == "oneDNN linear" else run(x)
    (first,) = torch.autograd.grad((out * torch.linspace(-1, 1, out.shape[-1])).sum(), x)  # first order: fine
    assert first.shape == x.shape
    out = run(x, monkeypatch) if path == "oneDNN linear" else run(x)
    with pytest.raises(RuntimeError, match=f"{REFUSAL} .*through {name}"):
        torch.autograd.grad((out * torch.linspace(-1, 1, out.shape[-1])).sum(), x, create_graph=True)


@pytest.mark.parametrize("window", [(2, 2, 0), (3, 2, 1)])  # the tiled path; ATen's backward with padding
@pytest.mark.parametrize("channels_last", [False, True])
def test_lean_average_pool_has_autograds_second_derivative(window, channels_last):
    from deepspike.layers.lean_avg_pool import LeanAvgPool2d

    kernel, stride, padding = window
    torch.manual_seed(1)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 3, 8, 8).contiguous(memory_format=fmt)
    conv = nn.Conv2d(3, 3, 3, padding=1)

    def penalty(pool):
        conv.zero_grad()
        xi = x.clone().requires_grad_()
        out = torch.tanh(pool(conv(xi)))  # tanh: the penalty's gradient reaches the conv weight through the pool
        (gx,) = torch.autograd.grad(out.sum(), xi, create_graph=True)
        (gx**2).sum().backward()
        return conv.weight.grad.clone()

    lean = penalty(LeanAvgPool2d(kernel, stride, padding))
    ref = penalty(lambda y: F.avg_pool2d(y, kernel, stride, padding))
    torch.testing.assert_close(lean, ref, rtol=1e-5, atol=1e-6)


def test_lee2020_neuron_second_derivative_is_autograds_through_its_loop():
    """Its backward is linear in the incoming gradient ``g`` (``dL/dx = A g``, ``A`` fixed by the forward's spikes):
    the derivative of ``<A g, w>`` in ``g`` must be ``A^T w``, with ``A`` read column by column on basis vectors."""
    pytest.importorskip("numba")
    from deepspike.neurons.spikebp_lif import leak_corrected_lif

    torch.manual_seed(2)
    x = (torch.rand(5, 1, 3) * 1.5).requires_grad_()
    s = leak_corrected_lif(x, leak=0.8, threshold=1.0, derivative="code")
    n = s.numel()
    columns = [torch.autograd.grad(s, x, torch.eye(n)[i].view_as(s), retain_graph=True)[0].flatten() for i in range(n)]
    a = torch.stack(columns, dim=1)  # [n, n]: dL/dx = A g
    g = torch.randn_like(s).requires_grad_()
    w = torch.randn(n)
    (gx,) = torch.autograd.grad(s, x, g, create_graph=True, retain_graph=True)
    (second,) = torch.autograd.grad((gx.flatten() * w).sum(), g)
    torch.testing.assert_close(second.flatten(), a.T @ w)


def test_a_gradient_penalty_through_a_built_net_runs_with_the_switch_and_stops_without(monkeypatch):
    pytest.importorskip("numba")
    from deepspike.api import create_model

    def penalty():
        torch.manual_seed(3)
        net = create_model("scnn_digits", method="stbp", num_classes=10, input_shape=(1, 8, 8), timesteps=4).train()
        x = torch.rand(3, 1, 8, 8, requires_grad=True)
        (gx,) = torch.autograd.grad(net(x).sum(), x, create_graph=True)
        (gx**2).sum().backward()
        return sum(float(p.grad.abs().sum()) for p in net.parameters() if p.grad is not None)

    with pytest.raises(RuntimeError, match=f"{REFUSAL} .*DEEPSPIKE_FUSED=0"):
        penalty()
    monkeypatch.setenv("DEEPSPIKE_FUSED", "0")
    assert penalty() > 0  # every parameter's second-order term through the autograd loop


def test_the_synaptic_current_is_twice_differentiable():
    """``i_t = alpha i_{t-1} + x_t``: a penalty on ``d(sum i^2)/dx`` against the same scan as plain autograd ops (what
    ``DEEPSPIKE_FUSED=0`` leaves to autograd in the synaptic neuron)."""
    from deepspike.neurons.synaptic import synaptic_current

    torch.manual_seed(4)
    x0, alpha = torch.randn(5, 3, 4, dtype=torch.float64), 0.7

    def penalty_grad(current):
        x = x0.clone().requires_grad_()
        (g,) = torch.autograd.grad((current(x) ** 2).sum(), x, create_graph=True)
        (g**2).sum().backward()
        return x.grad

    def reference(x):
        running, out = torch.zeros_like(x[0]), []
        for x_t in x.unbind(0):
            running = alpha * running + x_t
            out.append(running)
        return torch.stack(out)

    torch.testing.assert_close(penalty_grad(lambda x: synaptic_current(x, alpha)), penalty_grad(reference))
