"""Membrane traces: the membrane potential of a few neurons of each spiking layer, step by step, for one input.

``record_traces(model, x, max_neurons)`` runs one sample ``x [1, ...]`` through a time-stepped network (as
``analysis.raster`` does: an ``eval_pass`` at the evaluation seed, hooks on every module marked
``is_spiking_neuron``, which also keeps fused kernels from replacing the neurons) and keeps each neuron layer's input
currents ``[T, 1, ...]`` and where it spiked (in host memory). It then replays each layer alone on its device, in
float32 (the precision in which the fused kernels keep the membrane of bfloat16 input), one step at a time inside
``neurons.carry.temporal_carry`` (the neuron starts each step from the state the previous step ended with, exactly
as in one call on all T steps), and reads after each step the neuron's membrane ``v_t`` (after the reset, what
SpikingJelly calls ``v_seq``; a neuron that fires at every step and resets to zero stays at 0) and the threshold
its charge met at that step (the adaptive threshold ``th + beta a_{t-1}`` of an ``AdaptiveLIF``, per channel for
per-channel thresholds), keeping those of the shown neurons. Their replayed spikes must equal the ones the network
produced; a layer where they do not (a layer whose bfloat16 state rounds differently step by step, e.g. a synaptic
LIF's current), or whose neuron does not carry its state from call to
call (PSN) or lacks ``membrane`` / ``threshold_at`` (a neuron of one's own), is
listed with the reason instead of a trace.

Shown neurons, per layer: ``ceil(max_neurons / 2)`` of those that fired and the rest of those that stayed silent,
each evenly spaced in index order (a silent neuron's trace says how far below its threshold it stayed, which is
what one looks at in a dead layer); where one group has too few, the other fills the places. Per layer::

    {"layer": module name, "neurons": n (the layer's size), "timesteps": T,
     "shown": [i_0 < i_1 < ...] (indices into the layer's flattened output), "fired": [bool per shown neuron],
     "membrane": [[v_t of each shown neuron] for t in 0..T-1], "threshold": the same shape,
     "spikes": [[t, r], ...] (neuron shown[r] spiked at step t)}

or ``{"layer": name, "skipped": reason}``. Recording changes neither the scores nor the model.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepspike.analysis.raster import check_one_sample, evenly_spaced, spike_events
from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.neurons.carry import CarriesState, temporal_carry
from deepspike.training.evaluate import EVAL_SEED, eval_pass


def record_traces(model: nn.Module, x: torch.Tensor, max_neurons: int = 4, seed: int = EVAL_SEED) -> list[dict]:
    """The membrane traces of every spiking layer of ``model`` for the one sample ``x [1, ...]`` (``[T, 1, ...]`` for
    an imported NIR net, which takes its input coded; module docstring)."""
    check_one_sample(model, x, "membrane traces are")
    if not is_whole(max_neurons, 1):
        raise ConfigError(f"--traces must be >= 1 neurons per layer (0 turns the traces off), got {max_neurons!r}")
    neurons = {name: m for name, m in model.named_modules() if getattr(m, "is_spiking_neuron", False)}
    runs: dict[str, list[list[torch.Tensor]]] = {name: [[], []] for name in neurons}  # inputs, outputs per call
    hooks = []
    for name, m in neurons.items():
        hooks.append(m.register_forward_pre_hook(_keep_input(runs[name][0])))
        hooks.append(m.register_forward_hook(_keep_output(runs[name][1])))
    try:
        with eval_pass(model, seed):  # the replays too: in evaluation mode, as the network ran
            model(x)
            _remove(hooks)
            return [_layer_traces(name, neurons[name], *runs[name], max_neurons) for name in neurons if runs[name][0]]
    finally:
        _remove(hooks)


def _remove(hooks: list) -> None:
    while hooks:
        hooks.pop().remove()


def _keep_input(calls: list[torch.Tensor]):
    def hook(module: nn.Module, args) -> None:
        if args and isinstance(args[0], torch.Tensor):  # a copy in host memory (in-place neurons write over it)
            calls.append(args[0].detach().to("cpu", copy=True))
    return hook


def _keep_output(calls: list[torch.Tensor]):
    def hook(module: nn.Module, args, out) -> None:
        if isinstance(out, torch.Tensor):
            calls.append((out.detach() != 0).cpu())  # where it spiked (signed and weighted spikes alike)
    return hook


def _layer_traces(name: str, neuron: nn.Module, inputs: list, outputs: list, max_neurons: int) -> dict:
    """The trace dict of one layer from its calls' inputs and outputs (``[T_i, 1, ...]`` each; module docstring)."""
    if not isinstance(neuron, CarriesState):
        return {"layer": name, "skipped": f"{type(neuron).__name__} does not carry its state from step to step"}
    if not (hasattr(neuron, "membrane") and hasattr(neuron, "threshold_at")):
        return {"layer": name, "skipped": f"{type(neuron).__name__} has no membrane() / threshold_at()"}
    x, spiked = torch.cat(inputs), torch.cat(outputs)  # [T, 1, ...] currents, where the layer spiked
    if x.dim() < 2 or x.shape[1] != 1 or spiked.shape != x.shape:
        return {"layer": name, "skipped": f"input {tuple(x.shape)} and output {tuple(spiked.shape)} are not "
                                          f"[T, 1, ...] steps of one sample"}
    spiked = spiked.reshape(spiked.shape[0], -1)  # [T, N]
    fired = spiked.any(0)  # [N]
    shown = shown_neurons(fired, max_neurons)
    replayed = replay(neuron, x, shown)
    if replayed is None or not torch.equal(replayed[0], spiked[:, shown]):
        return {"layer": name, "skipped": "one step at a time, the neuron did not reproduce its spikes" +
                (f" (its input was {x.dtype}: the replay runs in float32)" if x.dtype != torch.float32 else "")}
    return {"layer": name, "neurons": int(fired.numel()), "timesteps": int(x.shape[0]), "shown": shown,
            "fired": fired[shown].tolist(), "membrane": replayed[1].tolist(), "threshold": replayed[2].tolist(),
            "spikes": spike_events(replayed[0])}


@torch.no_grad()
def replay(neuron: CarriesState, x: torch.Tensor, shown: list[int]
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Run ``neuron`` on ``x [T, 1, ...]`` (host memory) one step at a time on its own device, in float32 without
    autocast (as the fused kernels keep the membrane of low-precision input), carrying its state:
    ``(spiked, membrane, threshold)`` of the ``shown`` neurons (indices into a step's ``N`` neurons), each
    ``[T, len(shown)]``: where they spiked (bool), the membrane after each step's reset and the threshold their
    charge met (float32). None where a step's spikes are not of the step's shape."""
    device = next((t.device for t in [*neuron.parameters(), *neuron.buffers()]), torch.device("cpu"))
    index = torch.tensor(shown, dtype=torch.long, device=device)
    spiked, membrane, threshold = [], [], []
    with temporal_carry(neuron), torch.autocast(device.type, enabled=False):
        for t in range(x.shape[0]):
            step = x[t : t + 1].to(device, torch.float32, copy=True)  # a copy: in-place neurons write over it
            th = neuron.threshold_at(step, neuron.state)
            s = neuron(step)
            if s.shape != step.shape:
                return None
            v = neuron.membrane(neuron.state)
            spiked.append((s != 0).flatten()[index].cpu())
            membrane.append(v.float().flatten()[index].cpu())
            threshold.append(torch.as_tensor(th, dtype=torch.float32, device=device).expand(v.shape)
                             .flatten()[index].cpu())
    return torch.stack(spiked), torch.stack(membrane), torch.stack(threshold)


def shown_neurons(fired: torch.Tensor, max_neurons: int) -> list[int]:
    """The indices shown for a layer whose neurons ``fired [N]`` (bool): about half fired, half silent, each group
    evenly spaced in index order (module docstring), in index order."""
    groups = [torch.nonzero(fired).flatten(), torch.nonzero(~fired).flatten()]
    wanted = math.ceil(max_neurons / 2)
    take = [min(wanted, len(groups[0])), 0]
    take[1] = min(max_neurons - take[0], len(groups[1]))
    take[0] = min(max_neurons - take[1], len(groups[0]))  # fired neurons fill places the silent ones leave
    picked = [evenly_spaced(g, n) for g, n in zip(groups, take, strict=True) if n]
    return sorted(torch.cat(picked).tolist()) if picked else []
