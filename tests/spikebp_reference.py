"""lee2020's released code as a float64 brute-force reference: its spike gate on the per-step autograd graph."""

import torch


class FiredGate(torch.autograd.Function):
    """The spike ``[ex > 0]`` of ``ex = threshold(mem, V_th, 0)``; its gradient passes only where it fired."""

    @staticmethod
    def forward(ctx, ex):
        ctx.save_for_backward(ex)
        return (ex > 0).to(ex.dtype)

    @staticmethod
    def backward(ctx, grad):
        (ex,) = ctx.saved_tensors
        return grad * (ex > 0).to(grad.dtype)
