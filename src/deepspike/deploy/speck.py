"""Does a rate-coded conv net fit SynSense's Speck (DYNAP-CNN cores)? Mapped with Sinabs' own layer and
core-assignment code, offline (no chip, no samna).

Speck runs a chain of up to 9 layers, each on one core: ``conv (or linear as a conv) -> IAF neurons -> sum
pool``. Per layer Sinabs' ``DynapcnnLayer.memory_summary`` gives the memory the core must hold:
kernel ``c * 2^(ceil log2(k_h k_w) + ceil log2 f)``, neurons ``f * 2^(ceil log2 h_out + ceil log2 w_out)``,
bias ``f`` (c input, f output channels), with weights and thresholds discretised to the chip's 8/16-bit
integers (``discretize=True``); Sinabs' ``get_valid_mapping`` (max-flow) assigns layers to distinct cores
whose memories hold them. The cores' memories are Speck's (per core 0-8, in words):
kernel 16K,16K,16K,32K,32K,64K,64K,16K,16K; neurons 64K,64K,64K,32K,32K,16K,16K,16K,16K; bias 1K each.

A batch-norm right after a conv/linear layer (BN, tdBN) is folded into it (``layers.batchnorm_fold``, exact in eval
mode), as the NIR export does; TEBN (a scale per time step) cannot be. What cannot map (a one-line
:class:`ConfigError`): leaky neurons (Speck's are IAF), low-latency converted neurons
(``deploy.neurons.refuse_low_latency_on_chip``), neurons firing several spikes a step (``method.max_spikes``,
:func:`_check_neuron`), lee2020's pooling neurons, a membrane readout, a layer type without
a Speck equivalent, TEBN, and a layer beyond a core's settings
(SynSense's Speck figures: a square kernel of at most 16 x 16 (Sinabs' configuration writes one size), stride 1, 2,
4 or 8 and padding 0 to 7 per axis, no dilation, groups or other padding mode, input maps of at most 128 x 128,
sum pooling 1, 2 or 4; a linear layer is a conv whose kernel is its input map). Average pooling is mapped as sum
pooling with the next layer's weights divided by ``k_h k_w`` (the same net).

The ``samna`` package (only Sinabs' configuration writer and hardware I/O use it) is not on PyPI (its PyPI
name is a placeholder that downloads the real one from SynSense's own index on import); when it is missing,
Sinabs' pure-Python modules ``dynapcnn_layer`` and ``mapping`` are loaded without their package's
``__init__`` (which imports samna).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.deploy.neurons import chip_input_note, chip_membrane_note, refuse_low_latency_on_chip
from deepspike.deploy.nir_export import chip_chain, folded_chain
from deepspike.deploy.nir_modules import Integrator, PerNeuronIntegrator
from deepspike.layers.dropout import TimeFixedDropout
from deepspike.layers.spiking_pool import SpikingAvgPool
from deepspike.neurons.modules import SpikingNeuron

KERNEL_MEMORY = [16, 16, 16, 32, 32, 64, 64, 16, 16]  # Ki words per core
NEURON_MEMORY = [64, 64, 64, 32, 32, 16, 16, 16, 16]
BIAS_MEMORY = 1024
CORES = len(KERNEL_MEMORY)
MAX_KERNEL, STRIDES, MAX_PADDING, MAX_INPUT, POOLS = 16, (1, 2, 4, 8), 7, 128, (1, 2, 4)
"""A core's settings (module docstring): kernel side, strides, padding, input map side, sum-pooling sizes."""


def sinabs_dynapcnn() -> tuple[types.ModuleType, types.ModuleType]:
    """Sinabs' ``(dynapcnn_layer, mapping)`` modules; ``ConfigError`` when sinabs is not installed."""
    if importlib.util.find_spec("sinabs") is None:
        raise ConfigError("--target speck needs sinabs (pip install sinabs; `make test-nir` installs it)")
    try:
        return _dynapcnn_modules()
    except ImportError as error:  # installed, but a dependency of its own is missing
        raise ConfigError(f"--target speck: sinabs is installed but does not import ({error}); reinstall it with "
                          "its dependencies") from None


def _dynapcnn_modules() -> tuple[types.ModuleType, types.ModuleType]:
    name = "sinabs.backend.dynapcnn"
    if name not in sys.modules and importlib.util.find_spec("samna") is None:
        backend = importlib.util.find_spec("sinabs.backend")
        package = types.ModuleType(name)  # the package without its __init__ (which imports samna)
        package.__path__ = [str(Path(backend.origin).parent / "dynapcnn")]
        sys.modules[name] = package
    return importlib.import_module(f"{name}.dynapcnn_layer"), importlib.import_module(f"{name}.mapping")


def speck_modules(model: nn.Module) -> tuple[list[nn.Module], str | None, list[int]]:
    """The net's modules in order, of a copy with each batch-norm (BN, tdBN) folded into the conv/linear layer
    before it (``nir_export.folded_copy``: exact in eval mode; the model is not changed), a note: a converted
    net read out by its output layer's membrane runs on Speck with that layer spiking (its IF neurons; decode by
    spike counts, no membrane readout), and each module's layer number in the user's net (``folded_chain``)."""
    mods, info, numbers = folded_chain(model, "speck")
    return mods, info.get("chip_note"), numbers


def speck_layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[dict]:
    """The net as Speck layers: ``[{"conv", "threshold", "reset", "pool", "in_shape"}]`` (module docstring)."""
    mods, _, numbers = speck_modules(model)
    layers: list[dict] = []
    shape, scale, weighted = tuple(input_shape), 1.0, None
    grid = shape if len(shape) == 3 else (shape[0], 1, 1)  # (C, H, W) a linear layer sees as a conv input
    for i, m in zip(numbers, mods):  # i: the layer's number in the user's net (before folding its batch-norms)
        what = f"layer {i} ({type(m).__name__})"
        if isinstance(m, nn.Dropout | TimeFixedDropout | nn.Identity | nn.Flatten):
            shape = tuple(m(torch.zeros(1, *shape)).shape[1:]) if isinstance(m, nn.Flatten) else shape
        elif isinstance(m, nn.Conv2d | nn.Linear):
            if weighted is not None:  # two synaptic layers in a row: the first one was overwritten, unseen
                raise ConfigError(f"speck: {what} follows another conv/linear layer with no neurons between; a Speck "
                                  "layer is one conv/linear feeding IF neurons")
            _check_core_settings(m, grid, what)
            weighted = _scaled_copy(m, scale)
            weighted_in, scale = grid, 1.0
            shape = tuple(m(torch.zeros(1, *shape)).shape[1:])
            grid = shape if len(shape) == 3 else (shape[0], 1, 1)
        elif isinstance(m, SpikingNeuron):
            if weighted is None:
                raise ConfigError(f"speck: {what} has no conv or linear layer before it")
            _check_neuron(m, what, len(layers))
            layers.append({"conv": weighted, "threshold": float(m.params.threshold), "reset": m.params.reset,
                           "pool": 1, "in_shape": weighted_in})
            weighted = None
        elif isinstance(m, nn.AvgPool2d) and layers and weighted is None:
            k = _square(m, shape, what)
            layers[-1]["pool"] *= k
            if layers[-1]["pool"] not in POOLS:
                raise ConfigError(f"speck: {what}: Speck sum-pools by {', '.join(map(str, POOLS))}, this layer's "
                                  f"pooling is {layers[-1]['pool']}")
            scale /= m.divisor_override or k * k  # the average's divisor: k^2 unless overridden
            shape = grid = tuple(m(torch.zeros(1, *shape)).shape[1:])
        elif isinstance(m, SpikingAvgPool | Integrator | PerNeuronIntegrator):
            raise ConfigError(f"speck: {what} cannot map: Speck has no pooling neurons and no membrane readout")
        else:
            raise ConfigError(f"speck: {what} has no Speck equivalent (conv/linear -> IF -> avg pool only)")
    if weighted is not None:  # dropped, the layers before it taken for the net
        raise ConfigError(f"speck: the net ends with a {type(weighted).__name__} layer and no IF neurons after it: a "
                          "Speck layer is one conv/linear feeding IF neurons")
    if not layers:  # an empty imported net was reported to fit
        raise ConfigError("speck: the net has no layer to map (Speck runs conv/linear -> IF -> avg pool layers)")
    return layers


def _check_neuron(m: SpikingNeuron, what: str, layer: int) -> None:
    """A one-line ``ConfigError`` unless ``m`` (of Speck layer ``layer``) runs as Speck's IAF neurons: no leak, reset
    to zero or by subtraction, one spike a step. A ``method.max_spikes`` neuron (``neurons.multi_spike``, up to N
    spikes a step) is refused: Speck's DYNAP-CNN neurons are event-driven, and how many spikes the chip emits when one
    input event lifts the membrane past several thresholds is not documented in Sinabs (its ``DynapcnnLayer`` takes
    any ``IAFSqueeze`` spike function, its ``specksim`` runs samna's binary IAF filter; Sinabs' own ``IAF`` defaults
    to ``MultiSpike`` in software only)."""
    refuse_low_latency_on_chip(m, "speck", what)
    if m.params.decay != 1.0:
        raise ConfigError(f"speck: {what} is leaky (decay {m.params.decay}); Speck's neurons are IAF "
                          "(no leak): train with IF neurons or convert an ANN")
    if m.params.reset not in ("zero", "subtract"):
        raise ConfigError(f"speck: {what} has reset {m.params.reset!r}; Speck's neurons reset to zero or "
                          "by subtraction")
    most = getattr(m, "max_spikes", 1)
    if most > 1:
        raise ConfigError(f"speck: layer {layer} fires up to {most} spikes a step (method.max_spikes); deepspike maps "
                          "one spike a step to Speck")


def _check_core_settings(m: nn.Module, grid: tuple[int, ...], what: str) -> None:
    """A one-line ``ConfigError`` unless conv/linear layer ``m`` on input map ``grid`` ``(C, H, W)`` fits a core's
    settings (:data:`MAX_KERNEL` ... :data:`MAX_INPUT`; a linear layer is a conv with an ``H x W`` kernel)."""
    if isinstance(m, nn.Linear):
        kernel, stride, padding, dilation, groups, mode = tuple(grid[1:]), (1, 1), (0, 0), (1, 1), 1, "zeros"
    else:
        kernel, stride, padding, dilation, groups, mode = (m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                                                           m.padding_mode)
    problems = []
    if max(grid[1:]) > MAX_INPUT:
        problems.append(f"input map {grid[1]} x {grid[2]} (at most {MAX_INPUT} x {MAX_INPUT})")
    if kernel[0] != kernel[1] or kernel[0] > MAX_KERNEL:
        problems.append(f"kernel {kernel[0]} x {kernel[1]} (square, at most {MAX_KERNEL} x {MAX_KERNEL})")
    if any(v not in STRIDES for v in stride):
        problems.append(f"stride {tuple(stride)} (each {', '.join(map(str, STRIDES))})")
    if isinstance(padding, str) or any(not 0 <= v <= MAX_PADDING for v in padding) or mode != "zeros":
        problems.append(f"padding {padding!r} of mode {mode!r} (0 to {MAX_PADDING} per axis, of zeros)")
    if tuple(dilation) != (1, 1) or groups != 1:
        problems.append(f"dilation {tuple(dilation)}, groups {groups} (Speck has neither)")
    if problems:
        raise ConfigError(f"speck: {what} does not fit a Speck core: {'; '.join(problems)}")


def _square(pool: nn.AvgPool2d, shape: tuple[int, ...], what: str) -> int:
    """The side ``k`` of a square ``k x k`` pool of stride ``k`` on map ``shape`` ``(C, H, W)``; a one-line
    ``ConfigError`` for other windows, padding, or ``ceil_mode`` partial windows at the edge (Speck's sum pooling
    drops the last ``H mod k`` rows and ``W mod k`` columns; an average over a partial window divides by its size)."""
    k, s = pool.kernel_size, pool.stride
    k = k if isinstance(k, int) else k[0] if k[0] == k[1] else None
    if k is None or s not in (k, (k, k)) or pool.padding not in (0, (0, 0)):
        raise ConfigError(f"speck: {what}: Speck pools with square k x k windows, stride k, no padding")
    if pool.ceil_mode and any(side % k for side in shape[-2:]):
        raise ConfigError(f"speck: {what}: ceil_mode pools the partial windows at the edge of the {shape[-2]} x "
                          f"{shape[-1]} map; Speck's {k} x {k} sum pooling drops them (use ceil_mode=False)")
    return k


def _scaled_copy(m: nn.Module, scale: float) -> nn.Module:
    """A float32 copy of a conv/linear layer with its weights times ``scale`` (avg -> sum pooling before it)."""
    copy = type(m)(*(m.in_features, m.out_features) if isinstance(m, nn.Linear) else
                   (m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups),
                   bias=m.bias is not None)
    copy.load_state_dict(m.state_dict())
    with torch.no_grad():
        copy.weight.mul_(scale)
    return copy.float()


def _bias_note(layers: dict) -> str | None:
    """Which layers' biases the chip adds on its slow clock: Sinabs' config builder sets a layer's ``leak_enable``
    when its discretised bias is not all 0 (``chips/dynapcnn.py``: ``leak_enable = biases.bool().any()``), and the
    chip adds a leak-enabled layer's bias on each tick of its slow clock (``DynapcnnNetwork.to(...,
    slow_clk_frequency)``), not each time step as deepspike's neurons do."""
    biased = [str(i) for i, layer in layers.items() if layer.conv.bias is not None and bool(layer.conv.bias.any())]
    if not biased:
        return None
    return (f"layer{'s' * (len(biased) > 1)} {', '.join(biased)} ha{'ve' if len(biased) > 1 else 's'} a bias: "
            "Sinabs switches on their leak (leak_enable), so the chip adds the bias on each tick of its slow clock "
            "(its rate set apart: slow_clk_frequency), not once per time step as deepspike does")


def speck_report(model: nn.Module, input_shape: tuple[int, ...]) -> dict:
    """Fit report: per layer its memories, its discretised threshold and weight range (int16/int8), the cores that
    could hold it and the one assigned; ``fits`` (false too when a layer's weights or threshold round to 0:
    :func:`_rounding_reason`) and, when it does not fit, ``reason``. Raises ``ConfigError`` (one line) for nets that
    cannot map at all."""
    dl, mapping = sinabs_dynapcnn()
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, MembraneSubtract

    specs = speck_layers(model, input_shape)
    layers, rows = {}, []
    for i, s in enumerate(specs):
        # min_v_mem -threshold: Sinabs scales weights, bias and threshold by one factor that fits each in its bits;
        # None (the chip's floor -2^15) would enter that scale as -2^15 float units and cap it at 1 (weights < 0.5
        # rounded to 0, a threshold of 0.5 to 0); the floor is set back to the chip's -2^15 after discretising
        spk = sl.IAFSqueeze(batch_size=1, spike_threshold=torch.tensor(s["threshold"]), min_v_mem=-s["threshold"],
                            reset_fn=MembraneReset() if s["reset"] == "zero" else MembraneSubtract())
        layers[i] = dl.DynapcnnLayer(s["conv"], spk, s["in_shape"], [[s["pool"], s["pool"]]], discretize=True)
        layers[i].spk.min_v_mem = None
        mem = {k: int(v) for k, v in layers[i].memory_summary().items()}
        weight = layers[i].conv.weight
        rows.append({"layer": i, "in_shape": list(s["in_shape"]), "out_channels": int(layers[i].conv.out_channels),
                     "pool": s["pool"], "reset": s["reset"], **{f"{k}_memory": v for k, v in mem.items()},
                     "threshold_int": int(layers[i].spk.spike_threshold),
                     "weights_int8_range": [int(weight.min()), int(weight.max())]})
    constraints = [mapping.LayerConstraints(k * 1024, n * 1024, BIAS_MEMORY)
                   for k, n in zip(KERNEL_MEMORY, NEURON_MEMORY)]
    for row, layer in zip(rows, layers.values()):
        row["cores_possible"] = mapping.find_chip_layers(layer, constraints)
    report = {"target": "speck", "layers": rows, "cores": CORES, "fits": False}
    notes = [n for n in (chip_chain(model, "speck")[1].get("chip_note"), chip_input_note(model),
                         chip_membrane_note(model), _bias_note(layers)) if n]
    if notes:
        report["note"] = "; ".join(notes)
    too_big = [r for r in rows if not r["cores_possible"]]
    if len(rows) > CORES:
        report["reason"] = f"{len(rows)} layers > {CORES} cores"
    elif too_big:
        r = too_big[0]
        report["reason"] = (f"layer {r['layer']} needs kernel {r['kernel_memory']}, neuron {r['neuron_memory']}, "
                            f"bias {r['bias_memory']} words: more than any core holds (max kernel "
                            f"{max(KERNEL_MEMORY)}Ki, neuron {max(NEURON_MEMORY)}Ki, bias {BIAS_MEMORY})")
    else:
        try:
            cores = mapping.get_valid_mapping(layers, constraints)
        except ValueError as e:
            report["reason"] = str(e).splitlines()[0]
        else:
            report["fits"] = True
            for row in rows:
                row["core"] = int(cores[row["layer"]])
    rounded = _rounding_reason(rows, specs)
    if rounded and report["fits"]:  # as Xylo's report: not a deployment of this net
        report["fits"], report["reason"] = False, rounded
    return report


def _rounding_reason(rows: list[dict], specs: list[dict]) -> str | None:
    """Why the discretised net is not the net (None where it is): layers whose weights all round to 0 (the chip's net
    ignores its input), or whose positive threshold rounds to 0 (below half an int8 weight step: such a layer's
    neurons fire from rest, ``v = 0 >= 0``, whatever their input)."""
    zeroed = [str(r["layer"]) for r, s in zip(rows, specs)
              if r["weights_int8_range"] == [0, 0] and s["conv"].weight.any()]
    if zeroed:
        return (f"the weights of layer {', '.join(zeroed)} all round to 0 on the chip (int8 weights sharing a scale "
                "with the int16 threshold)")
    no_threshold = [str(r["layer"]) for r in rows if r["threshold_int"] <= 0]
    if no_threshold:
        return (f"the threshold of layer {', '.join(no_threshold)} rounds to 0 on the chip (below half an int8 weight "
                "step): its neurons fire whatever their input")
    return None
