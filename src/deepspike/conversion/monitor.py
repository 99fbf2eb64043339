"""Activity of a converted network: cumulative spikes per neuron layer (sengupta2019 Fig. 5) and
synaptic accumulate operations (section 7.4).

Accumulates (ACs): an event-driven chip does one accumulate per (non-zero input, output it reaches). For a
layer ``f`` (conv, linear, average pool) with input ``x_t`` the count is ``sum_t sum_j 1[x_t,j != 0] F_j``,
where the fan-out ``F_j`` = the number of outputs input ``j`` reaches (``F = d/dx sum f_ones(x)`` with all
weights 1: ``C_out * (kernel positions covering j)`` for a conv, ``N_out`` for a linear layer, the number of
pooling windows for a pool). Input spikes count too, as the first layer's MACs do in ``count_macs``; after
an average pool the non-zero pooled values are the events. Compare with the ANN's MACs per inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons.chunked_if import ChunkedIF


def fan_out(module: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    """Fan-out ``[*shape]`` of every input position of ``module`` (per-sample input ``shape``)."""
    if isinstance(module, nn.Linear):
        return torch.full(shape, float(module.out_features))
    with torch.enable_grad():
        return _fan_out_by_grad(module, shape)


def _fan_out_by_grad(module: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    x = torch.zeros((1, *shape), requires_grad=True)
    if isinstance(module, nn.Conv2d):
        ones = torch.ones_like(module.weight, device="cpu")
        y = F.conv2d(x, ones, None, module.stride, module.padding, module.dilation, module.groups)
    elif isinstance(module, nn.AvgPool2d):
        # window sums (divisor 1): a real input counts once per window covering it, padding never
        y = F.avg_pool2d(x, module.kernel_size, module.stride, module.padding, divisor_override=1)
    else:
        raise TypeError(f"no fan-out rule for {module}")
    (grad,) = torch.autograd.grad(y.sum(), x)
    return grad[0].round()  # [*shape]


@dataclass
class LayerStats:
    name: str
    kind: str
    count: float = 0.0  # spikes (neurons) or accumulates (synaptic layers), summed over samples and steps
    size: int = 0  # neurons of the layer (neurons) / per-sample input size (synaptic layers)


class ActivityMonitor:
    """Context manager summing spikes per ``ChunkedIF`` layer and ACs per synaptic layer of ``net``.

    Works across chunks; ``samples`` must be added by the caller (``add_samples``) once per batch.
    """

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.neurons: dict[str, LayerStats] = {}
        self.synapses: dict[str, LayerStats] = {}
        self.samples = 0
        self._fan: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def __enter__(self) -> ActivityMonitor:
        for name, m in self.net.named_modules():
            if isinstance(m, ChunkedIF):
                self.neurons[name] = LayerStats(name, "neuron")
                self._handles.append(m.register_forward_hook(self._spike_hook(name)))
            elif isinstance(m, TimeDistributed) and isinstance(
                m.module, (nn.Conv2d, nn.Linear, nn.AvgPool2d)
            ):
                self.synapses[name] = LayerStats(name, type(m.module).__name__)
                self._handles.append(m.register_forward_hook(self._ac_hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def add_samples(self, n: int) -> None:
        self.samples += n

    def _spike_hook(self, name: str):
        def hook(module, inputs, output: torch.Tensor) -> None:
            stats = self.neurons[name]
            stats.size = output[0, 0].numel()
            stats.count += float(output.sum())

        return hook

    def _ac_hook(self, name: str):
        def hook(module: TimeDistributed, inputs, output) -> None:
            x = inputs[0]  # [Tc, B, ...]
            if name not in self._fan:
                self._fan[name] = fan_out(module.module, tuple(x.shape[2:])).to(x.device)
            stats = self.synapses[name]
            stats.size = x[0, 0].numel()
            events = (x != 0).sum(dim=(0, 1)).to(self._fan[name].dtype)  # [...] per input position
            stats.count += float((events * self._fan[name]).sum())

        return hook

    def spikes_per_sample(self) -> dict[str, float]:
        return {k: v.count / max(1, self.samples) for k, v in self.neurons.items()}

    def accumulates_per_sample(self) -> dict[str, float]:
        return {k: v.count / max(1, self.samples) for k, v in self.synapses.items()}
