"""The modules an imported NIR graph is made of, besides deepspike's layers and neurons (``nir_import.from_nir``
builds them; ``nir_export.to_nir`` writes them back): ``NirNetwork`` (the imported net, ``[T, B, *input_shape] ->
[T, B, ...]``), ``GraphBody`` (a branching graph's nodes in topological order), ``Scale`` (an elementwise gain:
NIR's ``Scale`` node, or a neuron node's input scale ``r``, ``w_in``) and ``Integrator`` (a non-spiking output:
NIR's ``LI`` / ``I``; also the marker ``to_nir`` and the chip checks walk a run's membrane readout as;
``PerNeuronIntegrator`` for an ``LI`` whose ``tau`` differs between neurons).
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError, one_line
from deepspike.core.precision import LOW_PRECISION
from deepspike.neurons.dynamics import membrane_readout
from deepspike.neurons.update_cost import kept_sum_ops


class Scale(nn.Module):
    """``y = scale * x`` (elementwise, ``scale`` broadcast over the leading ``[T, B]`` axes).

    ``priced``: the activity recorder counts its products, one MAC per value and step (``update_ops``; a NIR
    ``Scale`` node); False for a neuron's or an integrator's input gain, which that module's own price counts
    (``input_gain_ops``, ``neurons.update_cost``)."""

    def __init__(self, scale: torch.Tensor, priced: bool = True) -> None:
        super().__init__()
        self.register_buffer("scale", scale)
        self.prices_own_updates = priced  # layers.activity_recorder

    def update_ops(self) -> tuple[int, int]:
        """(MACs, ACs) per value and step: one product."""
        return 1, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class Integrator(nn.Module):
    """Non-spiking output layer: membrane trace ``v_t = decay v_{t-1} + x_t``, ``[T, B, K] -> [T, B, K]``;
    ``decay`` in [0, 1] (0: an LI node with ``tau = dt``, whose trace is its input, ``v_t = x_t``)."""

    prices_own_updates = True  # non-spiking output neurons whose updates are priced (layers.activity_recorder)

    def __init__(self, decay: float) -> None:
        super().__init__()
        self.decay = decay

    def update_ops(self) -> tuple[int, int]:
        """(MACs, ACs) per output neuron and step (``neurons.update_cost``), as the readout it stands for:
        ``v_t = decay v_{t-1} + x_t``."""
        return kept_sum_ops(self.decay)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone() if self.decay == 0.0 else membrane_readout(x, self.decay)


class PerNeuronIntegrator(nn.Module):
    """Non-spiking output layer whose neurons decay each at its own rate: ``v_t = decay * v_{t-1} + x_t``
    (elementwise, ``decay`` of the neurons' shape, each in [0, 1]), ``[T, B, *shape] -> [T, B, *shape]``; an ``LI``
    node whose ``tau`` differs between neurons (``nir_import``). On bfloat16 / float16 ``x`` the running ``v`` and the
    decays are float32 and each ``v_t`` is rounded once to ``x``'s dtype, as :func:`membrane_readout` does (summed in
    bfloat16, ``0.999 v + 0.0011`` stalled at ``v = 0.5``, 1.04 in float64); ``.to(dtype)`` leaves ``decay``'s dtype."""

    prices_own_updates = True  # non-spiking output neurons whose updates are priced (layers.activity_recorder)

    def __init__(self, decay: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("decay", decay)

    def _apply(self, fn, recurse=True):
        """``fn`` (``.to()``, ``.cuda()``, ``.half()`` ...) moves ``decay`` to its device but keeps its dtype: rounded
        to bfloat16 by a net-wide ``.to(torch.bfloat16)``, decay 0.999 ran as 1."""
        decay = self.decay
        super()._apply(fn, recurse)
        self.decay = decay.to(self.decay.device)
        return self

    def update_ops(self) -> tuple[float, float]:
        """(MACs, ACs) per output neuron and step, the mean over the neurons of ``kept_sum_ops`` of each decay."""
        ops = [kept_sum_ops(float(k)) for k in self.decay.flatten()]
        return sum(o[0] for o in ops) / len(ops), sum(o[1] for o in ops) / len(ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = torch.float32 if x.dtype in LOW_PRECISION else x.dtype
        decay = self.decay.to(dtype)
        v, out = torch.zeros_like(x[0], dtype=dtype), torch.empty_like(x)
        for t in range(x.shape[0]):
            v = decay * v + x[t].to(dtype)
            out[t] = v  # (rounded to x's dtype)
        return out


class NirNetwork(nn.Module):
    """An imported NIR chain: ``forward(x [T, B, *input_shape]) -> [T, B, *output_shape]`` (output spikes,
    or the integrator's membrane trace). ``metadata`` is the graph's metadata (dt, coding, decoding)."""

    takes_coded_input = True  # x is [T, B, ...]: one sample for analysis.raster / traces is [T, 1, ...]

    def __init__(self, body: nn.Module, metadata: dict, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.body = body
        self.metadata = metadata
        self.input_shape = input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [T, B, *input_shape]``, cast to the float dtype of the weights (float32 as imported) when it has another
        dtype: integer or boolean input (spike counts, event frames), float64 (rounded to float32), bfloat16 and
        float16 (exact in float32) all ended in torch's "Input type (double) and bias type (float) should be the same";
        so is an array-like that is no tensor (a numpy array, nested lists: an AttributeError on ``.dim``). One that
        does not convert (text, ragged lists) and complex input are a one-line ``ConfigError``."""
        tensors = (*self.parameters(), *self.buffers())
        dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.get_default_dtype())
        if not isinstance(x, torch.Tensor):
            try:
                x = torch.as_tensor(x, dtype=dtype, device=next((t.device for t in tensors), None))
            except (TypeError, ValueError, RuntimeError) as e:
                raise ConfigError(f"NIR network input must be a tensor or an array of numbers [T, B, ...], got "
                                  f"{type(x).__name__} ({one_line(e)})") from None
        if x.dim() < 2 or tuple(x.shape[2:]) != tuple(self.input_shape):
            raise ConfigError(f"NIR network input must be [T, B, {', '.join(map(str, self.input_shape))}], "
                              f"got {tuple(x.shape)}")
        if x.is_complex():
            raise ConfigError(f"NIR network input must be real numbers [T, B, ...], got a {x.dtype} tensor")
        if x.dtype != dtype:
            x = x.to(dtype)
        return self.body(x)


class GraphBody(nn.Module):
    """A branching graph (e.g. residual blocks): each node's modules run, in topological order, on the sum of its
    predecessors' outputs ``[T, B, ...]`` (NIR sums a node's inputs); returns what reaches the Output node."""

    def __init__(self, stages: dict[str, nn.Module], order: list[str], preds: dict[str, list[str]]) -> None:
        super().__init__()
        # keyed by the node's place in ``order``: NIR names may hold "." (an inlined subgraph's "block.lif"),
        # which torch refuses in a module's name
        self.stage_keys = {name: str(order.index(name)) for name in stages}
        self.stages = nn.ModuleDict({self.stage_keys[name]: module for name, module in stages.items()})
        self.order, self.preds = order, preds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = {self.order[0]: x}
        for name in self.order[1:]:
            inputs = [outs[p] for p in self.preds[name]]
            total = inputs[0] if len(inputs) == 1 else torch.stack(torch.broadcast_tensors(*inputs)).sum(0)
            key = self.stage_keys.get(name)
            outs[name] = self.stages[key](total) if key is not None else total
        return outs[self.order[-1]]
