"""Per-layer parameter and multiply-accumulate (MAC) counts, read off an architecture spec.

For a convolution with ``C_in`` input and ``C_out`` output channels, kernel ``k`` and output map
``H' x W'``: ``params = C_out C_in k^2`` and ``MACs = C_out C_in R`` per sample, ``R`` the (output position, real
input) pairs of one channel, ``k^2 H' W'`` without padding and fewer with it: a tap on padding multiplies a zero
that is no input, as the SNN's synaptic operations (``layers.fan_out``: padding is no input) leave it out (a 3x3
kernel with padding 1 on a 3x3 map: 7 x 7 = 49 MACs, not 81). A linear layer
``N -> M``: ``params = MACs = N M``; a recurrent one (``Linear.recurrent``) adds its ``M x M`` feedback weight:
``params = (N + M) M``, ``fan_in = N + M``, and ``(N + M) M`` MACs per time step (an RNN has no one-pass ANN
inference; its MACs here are those of one step, and ``analyze`` compares an SNN with recurrent layers against
an RNN of its shape over the T steps, T times these); a delayed one (``Linear.delays``) has ``N M`` MACs per step
and ``2 N M`` parameters: each synapse's weight and its learnable delay. Average pooling counts one accumulate per real
input of each window (it is a fixed-weight layer on hardware): ``k^2`` per output value without padding, fewer at the
borders of a padded pool (padding is no input); max pooling, flatten and dropout cost nothing. Spiking self-attention
(``Attention``) on ``L`` tokens of ``C`` channels in heads of ``d``: its four ``C x C`` projections,
``params = 4 C^2``, ``fan_in = C``, and ``MACs = 4 C^2 L`` plus, for SSA (kind ``attention``), ``2 C d L`` for the
products ``K^T V`` and ``Q (K^T V)``, for SDSA (kind ``sdsa``) ``2 C L``: the column sums of ``K * V`` and the mask
of ``Q``; Q-K attention (kinds ``qk_token``, ``qk_channel``) has three projections (``3 C^2``, no V) and ``2 C L``:
the sums of ``Q`` and the mask of ``K``. A lone ``Activation`` costs nothing (its neurons are priced from their
spikes). Biases add one parameter and one accumulate per output. These are ANN costs per inference; SNN accumulates are
counted from actual spikes elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepspike.models.layer_specs import Attention, Conv, Linear, Pool, Shape
from deepspike.models.spec import Architecture
from deepspike.models.walk import Visit


@dataclass(frozen=True)
class LayerCost:
    """Cost of one weighted/pooling layer: ``name`` is a dotted path like ``"3.body.0"``."""

    name: str
    kind: str
    input_shape: Shape
    output_shape: Shape
    params: int
    macs: int
    fan_in: int


def layer_costs(arch: Architecture) -> list[LayerCost]:
    """Costs of every layer of ``arch`` in execution order (containers are expanded)."""
    return [cost for visit in arch.visits() if (cost := _layer_cost(visit)) is not None]


def count_parameters(arch: Architecture) -> int:
    """The weights and biases of ``arch``'s conv, linear and attention layers, and the delays of its delayed synapses
    (from the spec; independent of the method). Batch-norm's per-channel scale and shift are not in it (they depend on
    the method's ``norm``), nor a neuron's own parameters (PLIF's time constants, PSN's weights): a built model's
    ``sum(p.numel())`` counts those (a run's summary reports it as ``trainable_parameters``)."""
    return sum(c.params for c in layer_costs(arch))


def count_macs(arch: Architecture) -> int:
    """Total MACs of one ANN inference of ``arch`` (per sample)."""
    return sum(c.macs for c in layer_costs(arch))


def _layer_cost(visit: Visit) -> LayerCost | None:
    """The cost of a conv, linear, attention or average-pool layer (module docstring); None for any other layer."""
    layer, shape, out = visit.layer, visit.input_shape, visit.output_shape
    if isinstance(layer, Conv):
        fan_in = shape[0] * layer.kernel_size**2
        positions = out[1] * out[2]
        params = out[0] * fan_in + (out[0] if layer.bias else 0)
        taps = _real_taps(layer, shape[1], out[1]) * _real_taps(layer, shape[2], out[2])  # padding is no input
        macs = out[0] * shape[0] * taps + (out[0] * positions if layer.bias else 0)
        return LayerCost(visit.path, "conv", shape, out, params, macs, fan_in)
    if isinstance(layer, Linear):
        fan_in = shape[0] + (out[0] if layer.recurrent else 0)
        macs = out[0] * fan_in + (out[0] if layer.bias else 0)
        params = macs + (out[0] * shape[0] if layer.delayed else 0)  # a delayed synapse's position is a parameter
        return LayerCost(visit.path, "linear", shape, out, params, macs, fan_in)
    if isinstance(layer, Attention):
        channels, tokens = shape[0], shape[1] * shape[2]
        params = (3 if layer.mixing.startswith("qk_") else 4) * channels**2
        mixing = 2 * channels * tokens * (channels // layer.heads if layer.mixing == "ssa" else 1)
        kind = "attention" if layer.mixing == "ssa" else layer.mixing
        return LayerCost(visit.path, kind, shape, out, params, params * tokens + mixing, channels)
    if isinstance(layer, Pool) and layer.kind == "avg":
        macs = out[0] * _real_taps(layer, shape[1], out[1]) * _real_taps(layer, shape[2], out[2])
        return LayerCost(visit.path, "avgpool", shape, out, 0, macs, layer.kernel_size**2)
    return None


def _real_taps(layer: Pool | Conv, size: int, out_size: int) -> int:
    """Along one axis: ``sum_o #{i in window o : 0 <= i < size}``, window o = ``[o s - p, o s - p + k)`` of a pool or
    a convolution (a window wholly on a convolution's padding counts 0).

    The 2-D count of (window, real input) pairs is the product of the two axes' counts (the window is a
    product of intervals); without padding it is ``out_size * k``.
    """
    k, s, p = layer.kernel_size, layer.step if isinstance(layer, Pool) else layer.stride, layer.padding
    return sum(max(0, min(o * s - p + k, size) - max(o * s - p, 0)) for o in range(out_size))
