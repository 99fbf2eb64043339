"""Mapping onto a YOSO-like mesh of processing elements (zhang2021 section IV.B).

A layer with ``m`` inputs, ``n`` neurons and ``w`` stored weights needs
``C = max(ceil(n / N), ceil(w / W))`` PEs, where a PE holds at most ``N`` neurons and ``W`` weights
(zhang2021: ``C = MAX(n/N, m n/W)`` for an ``m x n`` fully connected layer, whose weights are ``m n``; a
convolution stores its shared kernel, ``w`` = its parameter count). The PEs sit on a
``ceil(sqrt(C_total))`` square grid. Routed spikes: every input spike of a layer is sent to each of the
layer's PEs (multicast, worst case), ``packets = sum_l spikes_in_l * C_l``. A layer's input spikes are the events
its synaptic record counts (``layers.activity_records``), those its operations are priced on: after an average pool
without neurons (stbp's ``LeanAvgPool2d``, converted nets' ``AvgPool2d``) the pool's non-zero averages, each one
graded packet (the average is formed before it is sent, as the MACs those averages are priced in assume; a 2x2
window of 4 spikes is one packet; likewise a SEW ``add`` junction's sum of 2); of event frames of counts
(``FrameEncoder``) a count of ``k`` as ``k`` spikes (``k`` packets: the sensor sent ``k`` events), and so of a
multi-spike neuron's counts (``neurons.multi_spike``: ``k`` spikes fired in one step); in a windowed TTFS
net, whose pool folds into the next layer, the spikes entering the pool; after a pool with neurons (spikebp's, TTFS
pools) those neurons' spikes. Defaults: ``N = 256`` (zhang2021: every PE serves at least 256 neurons) and
``W = 256 * 256`` (our assumption: 256 neurons of 256 inputs each).

Spiking self-attention (``Attention`` on ``L`` tokens of ``C`` channels) is one layer with four ``C x C`` projections
(``w = 4 C^2``). Spikformer's SSA has five neuron populations (query, key, value, attention, output: ``n = 5 C L``);
the Spike-driven Transformer's SDSA has query, key and value and one attention neuron per channel (``n = 3 C L + C``;
its output projection feeds the membrane shortcut, no neuron). QKFormer's Q-K attention has three projections
(``w = 3 C^2``), query, key and output populations and one attention neuron per head and token (``qk_token``:
``n = 3 C L + heads L``) or per channel (``qk_channel``: ``3 C L + C``). Its input spikes are the block's input, the
spikes the mixing reads (SSA's product: query, key and value; SDSA's column sum: key and value; Q-K attention's sums:
the queries) and the spikes the output projection reads (the synaptic records ``analyze`` keeps for it, in that
order: five, four without V). A recurrent linear layer (``Linear(recurrent=True)``, its ``w`` the feed-forward and the
``M x M`` feedback weights) has two synaptic records, feed-forward then feedback: the layer's input spikes and its
neurons' own spikes of the step before, both routed to its PEs. A convolution without a neuron after it (``act=False``:
membrane-shortcut nets, QKFormer's patch embeddings) is priced with the neurons its currents reach: one per output,
or, where a pool follows it directly, one per pooled output.
"""

from __future__ import annotations

import math

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.models.costs import LayerCost, layer_costs
from deepspike.models.energy import EnergyPreset, energy_pj
from deepspike.models.spec import Architecture, Conv, Pool

RECORDS_PER_KIND = {"conv": 1, "linear": 1, "attention": 5, "sdsa": 5, "qk_token": 4, "qk_channel": 4}  # per layer
INPUT_RECORDS = {"conv": (0,), "linear": (0,), "attention": (0, 3, 4), "sdsa": (0, 3, 4), "qk_token": (0, 2, 3),
                 "qk_channel": (0, 2, 3)}  # the records whose events are the layer's input spikes
POOL_TYPES = ("AvgPool2d", "LeanAvgPool2d", "SpikingAvgPool", "TTFSAvgPool2d")  # pools: not mapped layers


def pes_for_layer(neurons: int, weights: int, pe_neurons: int = 256, pe_weights: int = 65_536) -> int:
    """``C = max(ceil(n / N), ceil(w / W))``; ``N`` and ``W`` must be integers >= 1 (a PE holds whole neurons and
    weights: N = 2.5 was taken, and W = inf mapped every layer's weights onto no PE)."""
    check_pe_capacities(pe_neurons, pe_weights)
    return max(math.ceil(neurons / pe_neurons), math.ceil(weights / pe_weights))


def check_pe_capacities(pe_neurons: int, pe_weights: int) -> None:
    """A one-line ``ConfigError`` unless the PE capacities ``N`` and ``W`` are integers >= 1."""
    if not (is_whole(pe_neurons, 1) and is_whole(pe_weights, 1)):
        raise ConfigError(f"PE capacities must be integers >= 1, got N={pe_neurons!r}, W={pe_weights!r}")


def _pooled_currents(visits: list) -> dict[str, int]:
    """``{path: size}`` of each ``act=False`` convolution among the spec's ``visits`` followed directly by a pool in
    its own branch: its currents reach neurons only after the pool, ``size`` of them."""
    return {v.path: math.prod(after.output_shape) for v, after in zip(visits, visits[1:])
            if isinstance(v.layer, Conv) and not v.layer.act and isinstance(after.layer, Pool)
            and after.nesting == v.nesting}


def _records(kind: str, layer) -> tuple[int, tuple[int, ...]]:
    """How many synaptic records ``analyze`` keeps for a mapped layer of ``kind`` (its spec ``layer``) and which of
    them hold its input spikes: a recurrent linear layer's feed-forward and feedback records (its neurons' own spikes
    of the step before reach its PEs too), else ``RECORDS_PER_KIND`` and ``INPUT_RECORDS``."""
    if kind == "linear" and getattr(layer, "recurrent", False):
        return 2, (0, 1)
    return RECORDS_PER_KIND[kind], INPUT_RECORDS[kind]


def _neurons(cost: LayerCost, specs: dict, pooled: dict[str, int]) -> int:
    """The neurons of a mapped layer (module docstring): one per output (per pooled output, ``pooled``), SSA's five
    populations, SDSA's and Q-K attention's three and their attention neurons (per channel; Q-K token attention's per
    head and token). ``specs``: the architecture's layer specs by path (Q-K token attention's head count)."""
    if cost.name in pooled:
        return pooled[cost.name]
    size = math.prod(cost.output_shape)
    if cost.kind == "attention":
        return 5 * size
    if cost.kind == "qk_token":
        return 3 * size + specs[cost.name].heads * size // cost.output_shape[0]
    return 3 * size + cost.output_shape[0] if cost.kind in ("sdsa", "qk_channel") else size


def map_to_mesh(
    arch: Architecture,
    activity: dict | None = None,
    pe_neurons: int = 256,
    pe_weights: int = 65_536,
    preset: EnergyPreset | None = None,
) -> dict:
    """PEs per conv/linear/attention layer, the grid, routed spike packets and energy per inference.

    activity: a ``NetworkMonitor.summary()``; its synaptic layers other than pools are matched to the
    architecture's conv/linear layers in order (for the spikes each layer receives). Without it (or when
    the layers do not match) packets are None.
    """
    visits = arch.visits()
    layers, specs, pooled = [], {visit.path: visit.layer for visit in visits}, _pooled_currents(visits)
    for c in layer_costs(arch):
        if c.kind not in RECORDS_PER_KIND:
            continue
        n = _neurons(c, specs, pooled)
        pes = pes_for_layer(n, c.params, pe_neurons, pe_weights)
        layers.append(
            {
                "name": c.name,
                "kind": c.kind,
                "inputs": math.prod(c.input_shape),
                "neurons": n,
                "weights": c.params,
                "pes": pes,
                "grid_side": math.ceil(math.sqrt(pes)),
            }
        )
    synapses = [s for s in (activity or {}).get("synapses", []) if s["type"] not in POOL_TYPES]
    kept = [_records(layer["kind"], specs[layer["name"]]) for layer in layers]
    matched = activity is not None and len(synapses) == sum(count for count, _ in kept)
    packets = 0.0 if matched else None
    first = 0
    for layer, (count, inputs) in zip(layers, kept, strict=True) if matched else []:
        records = synapses[first:first + count]
        first += count
        spikes_in = sum(records[i]["events_per_sample"] for i in inputs)
        layer["spikes_in_per_sample"] = spikes_in
        layer["packets_per_sample"] = spikes_in * layer["pes"]
        packets += layer["packets_per_sample"]
    return mesh_summary(layers, packets, pe_neurons, pe_weights, preset, activity)


def mesh_summary(layers: list[dict], packets: float | None, pe_neurons: int, pe_weights: int,
                 preset: EnergyPreset | None, activity: dict | None) -> dict:
    """The mapping of mapped ``layers`` (each with its ``pes``): the PEs in all, the square grid's side, the routed
    ``packets`` per inference and, with a ``preset`` and an ``activity``, the energy per inference it prices."""
    total = sum(layer["pes"] for layer in layers)
    out = {
        "pe_neurons": pe_neurons,
        "pe_weights": pe_weights,
        "layers": layers,
        "total_pes": total,
        "grid_side": math.ceil(math.sqrt(total)),
        "packets_per_sample": packets,
    }
    if preset is not None and activity is not None:
        out["energy_preset"] = preset.name
        out["energy_pj"] = energy_pj(
            preset,
            activity["macs_per_sample"],
            activity["acs_per_sample"],
            activity["neuron_spikes_per_sample"],
        )
    return out
