"""``nn.Sequential`` that runs "(batch-norm,) spiking neuron(, tiling average pooling)" as one fused call.

In a conv SNN the largest tensors are a conv layer's spike map ``[T, B, C, H, W]`` and, in backward, its
gradient: both exist only to be pooled (forward) or to receive the pooled gradient (backward). When a
``SpikingNeuron`` is directly followed by ``TimeDistributed(avg pool)`` with tiling windows (kernel =
stride, no padding, H and W multiples of the kernel), ``SpikingSequential`` calls
``neurons.fused.fused_multistep(x, params, pool=(kh, kw))`` instead: the kernel writes the pooled spikes
``[T, B, C, H/kh, W/kw]`` and spreads their gradient back itself, so neither the spike map nor its gradient
is ever allocated. When a convolution comes next and the pooled map has at least 64 pixels (8x8), the pooled map is
written channels-last (at no extra cost): oneDNN's float32 channels-last convolutions were faster on such maps on
the AMD EPYC of session 14, and that convolution's output, its neurons and their pooling then stay channels-last. A
smaller pooled map before a convolution with contiguous weights is made contiguous (one copy of the pooled map;
under ``train.channels_last`` the weights are channels-last and the map stays so): on small maps with many channels
oneDNN's channels-last convolutions are slower (session 44, a 2-core Intel Xeon, one profiled VGG-11 step at T = 4,
``benchmarks/results/session44/ab_layout.log``: the 512->512 convs at 2x2, batch 128, 23.7 and 18.6 against 8.3 ms
forward, 51.5 and 50.2 against 33.9 and 33.3 ms backward; at 16x16 and 8x8 channels-last was 29-44% slower forward
and 6-22% faster backward, about even). A bfloat16 map (autocast) stays in its own layout: there oneDNN's
channels-last convolutions are slower on small maps (VGG-11's 256->512 conv at 4x4, batch 128: 6.4 against 3.7 ms
forward, 14.2 against 10.7 ms backward on a 2-core AMD EPYC), and VGG-11's forward convolutions took 49 against 37
ms with the channels-last relayout (``benchmarks/RESULTS.md``, session 19). Values are exactly those of the two
modules run one after the other (the next convolution's up to float32 summation order); gradients agree to float32
summation order (``tests/layers/test_spiking_sequential.py``).

A ``TimeDistributed`` batch-norm in training mode directly before such a neuron joins the run
(``layers.batchnorm_neuron``: one autograd node that saves the batch-norm's input and not the neuron's membrane,
one ``[T, B, ...]`` float32 tensor less per conv-BN-neuron layer from forward to backward), with or without the
pooling after the neuron, when a gradient is computed and the neuron is outside ``neurons.carry.temporal_carry``
(the node starts from rest and its final membrane carries no gradient: time in segments runs unfused).

Every neuron's spikes (pooled or not) are marked (``layers.spike_storage``): the convolution or linear layer
that reads them saves them for backward as ``uint8``, exactly.

The modules stay where they are (same ``state_dict`` keys, same ``named_modules``, exporters and cost
counters see the usual neuron and pooling layers). The pair runs unfused whenever either module (or the
pooling inside the wrapper) has hooks, as the analysis monitors install, when the fused kernels cannot run
(``fused_supported``: CPU float32, numba, a known surrogate) or the windows do not tile the input.
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.layers.batchnorm_neuron import NeuronRun, batch_norm_neuron, fusable
from deepspike.layers.lean_avg_pool import pool_window
from deepspike.layers.neuron_kinds import is_spiking_neuron
from deepspike.layers.spike_storage import mark_spikes
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons.fused import fused_multistep, fused_supported, poolable
from deepspike.neurons.learnable import LearnableLIF
from deepspike.neurons.modules import SpikingNeuron

CHANNELS_LAST_MIN_PIXELS = 64  # a pooled map before a convolution is written channels-last from 8x8 on (docstring)


def hooked(module: nn.Module) -> bool:
    """Whether forward (pre-)hooks watch ``module`` itself, as the analysis monitors do: it must then run its own
    ``forward``, call by call, for them to see."""
    return bool(module._forward_hooks or module._forward_pre_hooks)


def tiling_kernel(module: nn.Module) -> tuple[int, int] | None:
    """``(kh, kw)`` when ``module`` is ``TimeDistributed`` of an average pooling whose windows tile its input
    (kernel = stride, no padding, no divisor override) and nothing hooks either of them; else None."""
    if not isinstance(module, TimeDistributed) or hooked(module):
        return None
    pool = module.module
    if not isinstance(pool, nn.AvgPool2d) or hooked(pool) or pool.divisor_override is not None:
        return None
    kernel, stride, padding = pool_window(pool)
    return (kernel[0], kernel[1]) if kernel == stride and padding == [0, 0] else None


def fusable_neuron(module: nn.Module) -> bool:
    """A plain ``SpikingNeuron`` (IF/LIF; its ``forward`` not overridden) without hooks."""
    return isinstance(module, SpikingNeuron) and type(module).forward is SpikingNeuron.forward and not hooked(module)


def _pooled_pixels(x: torch.Tensor, kernel: tuple[int, int]) -> int:
    """Pixels of one channel of ``x [..., H, W]`` pooled by tiling windows ``(kh, kw)``: ``(H / kh) (W / kw)``."""
    return (x.shape[-2] // kernel[0]) * (x.shape[-1] // kernel[1])


def _wraps_conv(module: nn.Module) -> bool:
    return isinstance(module, TimeDistributed) and isinstance(module.module, nn.Conv2d)


class SpikingSequential(nn.Sequential):
    """``nn.Sequential`` whose (batch-norm,) neuron(, tiling average pool) runs are fused (module docstring).

    forward: ``x [T, B, ...]`` through the modules in order, exactly as ``nn.Sequential`` would compute it.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            fused = self._fused_run(modules, i, x)
            if fused is not None:
                x, i = fused
                continue
            neuron = modules[i]
            x = neuron(x)
            if is_spiking_neuron(neuron) and isinstance(x, torch.Tensor):
                mark_spikes(x, 1)
            i += 1
        return x

    @staticmethod
    def _fused_run(modules: list[nn.Module], i: int, x: torch.Tensor) -> tuple[torch.Tensor, int] | None:
        """``(output, index of the next module)`` when the modules from ``i`` on are a fusable batch-norm + neuron
        (+ tiling pool), batch-norm + learnable neuron, or neuron + tiling pool run on ``x``; None otherwise."""
        bn = _batch_norm_of(modules[i])
        start = i + 1 if bn is not None else i
        if bn is not None and start < len(modules) and _plain_learnable(modules[start]):
            return _batch_norm_learnable(bn, modules[start], x, start)
        if start >= len(modules) or not fusable_neuron(modules[start]):
            return None
        neuron, v0 = modules[start], modules[start].carried()
        kernel = tiling_kernel(modules[start + 1]) if start + 1 < len(modules) else None
        kernel = kernel if kernel is not None and poolable(x, kernel) else None
        end = start + (2 if kernel is not None else 1)
        conv_next = end < len(modules) and _wraps_conv(modules[end]) and x.dtype != torch.bfloat16  # docstring
        small = (kernel is not None and conv_next and _pooled_pixels(x, kernel) < CHANNELS_LAST_MIN_PIXELS
                 and modules[end].module.weight.is_contiguous())  # not under train.channels_last (docstring)
        channels_last = kernel is not None and conv_next and not small
        run = NeuronRun(neuron.params, None if kernel is None else (*kernel, channels_last))
        if bn is not None and neuron.carry is None and fusable(bn, x, run):
            s, v = batch_norm_neuron(x, bn, run)
        elif bn is None and kernel is not None and fused_supported(x, neuron.params, v0):
            s, v = fused_multistep(x, neuron.params, v0, inplace=neuron.inplace, pool=kernel,
                                   pool_channels_last=channels_last)
        else:
            return None
        area = 1 if kernel is None else kernel[0] * kernel[1]
        s = s.contiguous() if small else s
        return _kept_and_counted(neuron, s, v, area), end


def _plain_learnable(module: nn.Module) -> bool:
    """A ``LearnableLIF`` (its ``forward`` not overridden) without hooks."""
    return isinstance(module, LearnableLIF) and type(module).forward is LearnableLIF.forward and not hooked(module)


def _batch_norm_learnable(bn: nn.Module, neuron: LearnableLIF, x: torch.Tensor, at: int):
    """``(spikes, index after the neuron)`` of batch-norm + learnable neuron fused, or None where they cannot be."""
    run = NeuronRun(neuron.fixed, learnable=True, decay_input=neuron.decay_input)
    if neuron.carry is not None or not fusable(bn, x, run):
        return None
    decay, threshold = neuron.decay_and_threshold(x)
    s, v = batch_norm_neuron(x, bn, run, decay, threshold)
    return _kept_and_counted(neuron, s, v, 1), at + 1


def _kept_and_counted(neuron: nn.Module, s: torch.Tensor, v: torch.Tensor, area: int) -> torch.Tensor:
    """Keep the neuron's final membrane, report its spikes to an active tally (a tiling pooled map times the
    window area counts them) and mark ``s`` as multiples of ``1 / area`` (saved as uint8 by the next layer)."""
    neuron.keep(v)
    if neuron.tally is not None:
        neuron.report_spikes(s.sum(dtype=torch.float32) * area)  # in float32: bf16 spikes sum to 256 at most exactly
    return mark_spikes(s, area)


def _batch_norm_of(module: nn.Module) -> nn.Module | None:
    """The batch-norm that ``module`` (a ``TimeDistributed`` without hooks) wraps, or None."""
    if not isinstance(module, TimeDistributed) or hooked(module):
        return None
    return module.module if isinstance(module.module, nn.modules.batchnorm._BatchNorm) else None
