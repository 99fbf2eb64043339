"""Run a stateless layer on all time steps at once."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepspike.coding.rate import direct, time_invariant
from deepspike.core.errors import ConfigError
from deepspike.core.precision import LOW_PRECISION
from deepspike.layers.cpu_linear import linear
from deepspike.layers.lean_avg_pool import LeanAvgPool2d, pool_window
from deepspike.layers.spike_storage import compact_saved_input, mark_spikes, spike_codes, spike_quantum
from deepspike.layers.trace_gradient import TRACE_LAYERS, trace_gradient_step
from deepspike.neurons.carry import CarriesState

# Layers whose output for one step depends on that step's input alone, with no state, randomness or batch
# statistics: a time-invariant input gives a time-invariant output.
_PER_STEP = (nn.Conv2d, nn.Linear, nn.AvgPool2d, LeanAvgPool2d, nn.MaxPool2d, nn.Flatten, nn.Identity)
# Layers that save their input for the weight gradient: a spike input is saved as uint8 (``layers.spike_storage``).
_SAVES_INPUT = (nn.Conv2d, nn.Linear)
# Batch-norms (and their parametrised subclasses, tdBN) whose training-mode statistics are those of the batch in
# hand: ``_batch_norm_once`` and ``layers.batchnorm_neuron`` reproduce them (not SyncBatchNorm, no subclass of
# these: it gathers statistics across processes).
PLAIN_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# The fewest dimensions of a time-first input [T, B, ...] of a wrapped layer: a linear layer's [T, B, F], a 2-d
# convolution's [T, B, C, H, W] (exactly: torch takes a 4-d [T*B, C, H] as one unbatched image); 2 for any other.
_MIN_DIMS = ((nn.Conv2d, 5), (nn.Linear, 3))
_CHECKED = tuple(kind for kind, _ in _MIN_DIMS)


def check_time_first(module: nn.Module, x: object) -> None:
    """A one-line ``ConfigError`` unless ``x`` is a tensor ``[T, B, ...]`` that ``module`` can take step by step
    (``_MIN_DIMS``): an image batch ``[B, 64]`` given without its encoding ran as ``[B*64]``, one sample of 256
    features ("mat1 and mat2 shapes cannot be multiplied"), and a conv's ``[B, C, H, W]`` as unbatched images.
    The common cases pass first, on the dimension count alone (every forward of every wrapped layer runs this)."""
    n = x.dim() if isinstance(x, torch.Tensor) else -1
    if n == 5 or (n >= 3 and not isinstance(module, nn.Conv2d)) or (n == 2 and not isinstance(module, _CHECKED)):
        return
    dims = next((d for kind, d in _MIN_DIMS if isinstance(module, kind)), 2)
    if not isinstance(x, torch.Tensor) or x.dim() < dims or (dims == 5 and x.dim() != 5):
        got = f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        need = "[T, B, C, H, W]" if dims == 5 else "[T, B, F]" if dims == 3 else "[T, B, ...]"
        raise ConfigError(f"TimeDistributed({type(module).__name__}) takes a time-first tensor {need} (an encoder "
                          f"such as ds.rate_poisson(x, T) makes one of images [B, ...]); got {got}")


class TimeDistributed(CarriesState, nn.Module):
    """Apply ``module`` to ``[T, B, ...]`` as one ``[T*B, ...]`` batch (a view, no copy when contiguous).

    Convolutions, linear layers and pooling have no state across time, so running them once on the
    flattened batch is exact and does the ANN's work T times in one call.

    A time-invariant input (``coding.time_invariant``: direct encoding feeds the same image at every step as a
    stride-0 view) through such a layer (``_PER_STEP``, or batch-norm) runs the layer once on ``[B, ...]`` and
    returns its output expanded over T (again stride 0): the same values, T times less work and memory;
    autograd sums the gradient over T before the layer's backward. Not done while the layer has forward hooks
    (the analysis monitors count a layer's work per call and per step).

    Batch-norm in training mode normalises with the statistics of the whole ``[T*B]`` batch; for T identical
    copies of ``[B, ...]`` those are the copy's own mean and (biased) variance, so the output is the
    normalised copy, again time-invariant (``_batch_norm_once``; not for a copy of one value per channel, which
    torch's batch-norm refuses on its own: the T copies are normalised as one batch). Only the running variance's
    unbiased correction counts the ``T*B*H*W`` values per channel that the unfused layer would see.

    A convolution or linear layer whose input a spiking layer marked (``layers.spike_storage.mark_spikes``) saves that
    input for backward as ``uint8`` codes, exactly (4x less memory; ``layers.spike_storage``).

    Inside ``neurons.carry.temporal_carry(..., trace_decay=lambda)`` (OTTT) a linear or convolutional layer keeps
    the trace ``a_t = lambda a_{t-1} + x_t`` of its input and takes its weight gradient from it
    (``layers.trace_gradient``; e-prop's bias traces and random feedback too); the output is unchanged.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):  # an int was kept and failed only when called: "'int' ... not callable"
            raise ConfigError(f"TimeDistributed wraps a torch.nn.Module (a layer); got {type(module).__name__}")
        self.module = module

    def _runs_once(self, x: torch.Tensor) -> bool:
        m = self.module
        batch_norm = isinstance(m, nn.modules.batchnorm._BatchNorm) and (
            not m.training or (isinstance(m, PLAIN_BATCH_NORMS) and x[0].numel() > x.shape[2]))  # > 1 value / channel
        per_step = isinstance(m, _PER_STEP) or batch_norm
        return per_step and time_invariant(x) and not (m._forward_hooks or m._forward_pre_hooks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [T, B, ...]`` -> ``[T, B, ...]``, the layer on every step (``check_time_first``: else one line)."""
        check_time_first(self.module, x)
        t, b = x.shape[:2]
        if self.carry is not None and self.carry.trace_decay is not None and isinstance(self.module, TRACE_LAYERS):
            return self._with_trace(x, self.carry.trace_decay)
        if self._runs_once(x):
            m = self.module
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training:
                return direct(_batch_norm_once(m, x[0], t), t)
            return direct(m(x[0]), t)  # [B, ...] -> [T, B, ...], stride 0 in T
        flat = batch_strides(x.flatten(0, 1))  # [T*B, ...]
        quantum = spike_quantum(x)
        if quantum is not None and isinstance(self.module, _SAVES_INPUT) and torch.is_grad_enabled():
            # codes made once per spike tensor (with the spikes, by layers.batchnorm_neuron, or by the first layer
            # that reads them), shared by every layer that saves it and by a SEW junction after it
            codes = spike_codes(x) if quantum == 1 and _learns(self.module) else None
            with compact_saved_input(flat, quantum, None if codes is None else codes.flatten(0, 1)):
                y = self._module_on(flat)
        else:
            y = self._module_on(flat)
        y = y.unflatten(0, (t, b))  # [T, B, ...]
        out_quantum = _quantum_after(self.module, quantum)
        return mark_spikes(y, out_quantum) if out_quantum is not None else y

    def _module_on(self, flat: torch.Tensor) -> torch.Tensor:
        """The wrapped layer on ``[T*B, ...]``; a linear layer through ``cpu_linear.linear`` (oneDNN where torch's
        BLAS is slow)."""
        if type(self.module) is nn.Linear:
            return linear(self.module, flat)
        return self.module(flat)

    def _with_trace(self, x: torch.Tensor, decay: float) -> torch.Tensor:
        """Step by step: ``a_t = decay a_{t-1} + x_t`` and the bias's ``c_t = decay c_{t-1} + 1`` (carried across
        calls as ``(a, c)``), ``y_t = layer(x_t)`` with the weight gradient from ``a_t``, the bias gradient scaled by
        ``c_t`` when the block says so (e-prop) and the input gradient through the fixed ``feedback`` buffer when
        there is one (``layers.random_feedback``). The trace of a bfloat16 / float16 ``x`` (under autocast) is
        float32, as the neurons keep their state: summed in bfloat16, ``a_t`` of decay 0.99 drifted up to 6.7% from
        the exact trace of the same spikes over 64 steps."""
        trace, c = self.carried() or (None, 0.0)
        feedback, out = self._buffers.get("feedback"), []
        for x_t in x.unbind(0):  # [B, ...]
            wide = x_t.detach().float() if x_t.dtype in LOW_PRECISION else x_t.detach()
            trace = wide if trace is None else decay * trace + wide
            c = decay * c + 1.0
            out.append(trace_gradient_step(self.module, x_t, trace, c if self.carry.bias_trace else 1.0, feedback))
        self.keep((trace, c))
        return torch.stack(out)  # [T, B, ...]

    def presynaptic_trace(self) -> tuple[torch.Tensor, float] | None:
        """The carried ``(a_t [B, ...], c_t)`` of the last step run with traces (``_with_trace``), else None."""
        return self.carried()


def batch_strides(flat: torch.Tensor) -> torch.Tensor:
    """``flat [N, ...]`` with the stride of a dense layout on its batch axis when ``N = 1``: a view, the same values.

    Flattening ``[1, 1, C, H, W]`` that is channels-last within a step gives the size-1 batch axis the stride ``C``
    (any stride addresses the same elements); torch 2.13's CPU batch-norm backward then misreads the layout and
    returns wrong weight and input gradients (off by more than their size), as a channels-last net at ``T B = 1``
    showed. Giving the axis the stride ``C H W`` of a dense tensor avoids it."""
    if flat.dim() < 2 or flat.shape[0] != 1 or flat.stride(0) == flat[0].numel():
        return flat
    return flat.as_strided(flat.shape, (flat[0].numel(), *flat.stride()[1:]), flat.storage_offset())


def _learns(module: nn.Module) -> bool:
    """Whether a parameter of ``module`` needs a gradient (a convolution then saves its input)."""
    return any(p.requires_grad for p in module.parameters(recurse=False))


def _quantum_after(module: nn.Module, quantum: int | None) -> int | None:
    """The spike quantum (``layers.spike_storage``) of ``module``'s output for an input of ``quantum``: the same
    through a flatten, ``quantum kh kw`` through an average pool that divides by its window area (``kh x kw``
    averages of multiples of ``1/q`` are multiples of ``1/(q kh kw)``); None otherwise."""
    if quantum is None:
        return None
    if isinstance(module, nn.Flatten):
        return quantum
    if isinstance(module, nn.AvgPool2d) and module.divisor_override is None:
        kernel, _, padding = pool_window(module)
        if module.count_include_pad or padding == [0, 0]:
            return quantum * kernel[0] * kernel[1]
    return None


def _batch_norm_once(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, copies: int) -> torch.Tensor:
    """``bn`` in training mode on ``copies`` stacked copies of ``x [B, C, ...]``, computed on ``x`` alone.

    The batch statistics of identical copies are those of one copy, so ``y = (x - mean) / sqrt(var + eps) *
    weight + bias`` with ``x``'s own per-channel mean and biased variance (``F.batch_norm`` in training mode,
    gradients included). The running statistics move as the full batch would move them:
    ``r <- (1 - m) r + m s`` with the mean and the unbiased variance ``var * n / (n - 1)``, ``n = copies *
    numel / C`` values per channel (``m = momentum``, or ``1 / num_batches_tracked`` when it is None). The statistics of
    a bfloat16 / float16 ``x`` (autocast) are taken in float32, as torch's batch-norm takes them: in bfloat16 they
    moved the running mean and variance by ~0.3% of their values at each update.
    """
    y = F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
    if bn.track_running_stats and bn.running_mean is not None:
        with torch.no_grad():
            dims = [0, *range(2, x.dim())]
            n = copies * x.numel() // x.shape[1]
            var, mean = torch.var_mean(x.float() if x.dtype in LOW_PRECISION else x, dims, correction=0)
            bn.num_batches_tracked += 1
            m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.mul_(1 - m).add_(mean, alpha=m)
            bn.running_var.mul_(1 - m).add_(var * (n / max(n - 1, 1)), alpha=m)
    return y
