"""Does a third-party tool give the same output spikes as deepspike for an exported graph?

``compare(ours, theirs)`` -> the difference of two spike tensors ``[T, B, K]``: ``equal``, the number and
fraction of differing entries, the first step that differs, and the output spike counts of both.
``check_tool(tool, model, x, dt)`` exports ``model`` (:func:`to_nir`), loads it in ``tool`` and compares
its spikes with deepspike's on ``x [T, B, ...]``; an exception in the tool is reported, not raised. With
``round_delays`` a net with learnable synaptic delays is rounded first (``layers.delays.round_all_delays_`` on a
copy), and both the graph and deepspike's spikes are the rounded net's.
``check_run(run_dir, steps, dt)`` does it for a trained run with every installed tool (``export --check``), and
adds to a tool's differing result the cause ``peers.known_issues`` knows for nets of its kind (``known_issue``; for a
net with a quantised membrane, ``QUANTISED``, when no rule names another; for learnt neurons that differ within a
layer, ``UNEVEN_NEURONS``, before the rules).
``check_import(tool, x)``: the other direction, a tool's own exported net run by deepspike's ``from_nir``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.deploy.families import reference_spikes
from deepspike.deploy.neurons import has_quantised_membrane
from deepspike.deploy.nir_export import DEFAULT_DT, check_dt, to_nir
from deepspike.deploy.nir_import import from_nir
from deepspike.deploy.nir_ttfs import is_ttfs_model
from deepspike.deploy.nir_window import is_window_model
from deepspike.deploy.peers import TOOLS, installed, version
from deepspike.deploy.peers.known_issues import FAITHFUL, QUANTISED, UNEVEN_NEURONS, known_issue
from deepspike.deploy.peers.producers import PRODUCERS
from deepspike.layers.containers import ResidualBlock
from deepspike.layers.delays import DelayedLinear, round_all_delays_
from deepspike.layers.recurrent import RecurrentSpiking
from deepspike.layers.sew import SewBlock
from deepspike.neurons.heterogeneous import HeterogeneousLIF
from deepspike.neurons.learnable import LearnableLIF
from deepspike.neurons.modules import SpikingNeuron
from deepspike.neurons.spikebp_lif import LeakCorrectedLIF
from deepspike.training.reload import check_delays_to_round, load_run


def compare(ours: torch.Tensor, theirs: torch.Tensor) -> dict:
    """The difference between two spike tensors of the same shape ``[T, B, ...]`` (module docstring); the spike
    counts are the non-zero entries (spike events), whatever value a spike carries (a converted net's carry its
    threshold)."""
    if tuple(ours.shape) != tuple(theirs.shape):
        return {"equal": False, "error": f"output shape {tuple(theirs.shape)} != {tuple(ours.shape)}"}
    diff = ours.float() != theirs.float()
    steps = diff.flatten(1).any(dim=1).nonzero()
    return {"equal": not bool(diff.any()), "differing": int(diff.sum()), "fraction": float(diff.float().mean()),
            "first_step": int(steps[0]) if len(steps) else None, "spikes_ours": int(ours.count_nonzero()),
            "spikes_theirs": int(theirs.count_nonzero())}


def check_tool(tool: str, model, x: torch.Tensor, dt: float = DEFAULT_DT, round_delays: bool = False) -> dict:
    """Export ``model`` at ``dt``, run it in ``tool`` on ``x [T, B, *input_shape]``, compare with deepspike;
    ``round_delays``: the net with its synaptic delays rounded to whole steps (a copy; module docstring)."""
    if round_delays:
        model = copy.deepcopy(model)
        round_all_delays_(model)
    graph = to_nir(model, tuple(x.shape[2:]), dt=dt, round_delays=round_delays)
    ours = reference_spikes(model, x)
    try:
        run = TOOLS[tool].load(graph, dt, x.shape[0], x.shape[1])
        theirs = run(x)
    except Exception as e:  # noqa: BLE001 - a tool's failure is a finding to report
        return {"equal": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"}
    return compare(ours, theirs.reshape(ours.shape) if theirs.numel() == ours.numel() else theirs)


def sample_spikes(shape: tuple[int, ...], steps: int, batch: int = 2, rate: float = 0.2, seed: int = 0):
    """Bernoulli input spikes ``[steps, batch, *shape]`` at ``rate`` per step (a run's sample input)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((steps, batch, *shape), generator=g) < rate).float()


def check_run(run_dir, steps: int = 1000, dt: float = DEFAULT_DT, round_delays: bool = False) -> dict:
    """``deepspike export RUN --check``: the run's rate-coded net exported and run by every installed tool on
    sample input spikes for ``steps`` steps; per tool :func:`compare`'s result (or the tool's error).
    ``round_delays`` (``--round-delays``): a net with synaptic delays is rounded, and the tools are compared with
    the rounded net (a run without delays is a one-line ``ConfigError``)."""
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    check_dt(dt)  # before the tools: each would report the refusal as its own error
    _, parts, _ = load_run(run_dir, device="cpu")
    if round_delays:  # check_tool rounds its copy
        check_delays_to_round(run_dir, parts.model)
    if is_ttfs_model(parts.model) or is_window_model(parts.model):
        raise ConfigError("--check compares rate-coded nets step by step; this run is a TTFS net (a ttfs_window "
                          "graph replays with deepspike.deploy.nir_window_replay.replay_window_graph)")
    tools = installed()
    if not tools:
        return {"tools": {}, "message": f"no NIR tool installed ({', '.join(TOOLS)}); `make test-nir` installs them "
                                        "into .nir-venv"}
    x = sample_spikes(tuple(parts.arch.input_shape), steps)
    kind, quantised = issue_kind(parts.model), has_quantised_membrane(parts.model)
    uneven = has_uneven_neurons(parts.model)
    results = {t: {"version": version(t), **check_tool(t, parts.model, x, dt, round_delays)} for t in tools}
    for tool, result in results.items():
        reason = None if result["equal"] else (uneven and UNEVEN_NEURONS.get(tool)) or known_issue(tool, *kind) or (
            QUANTISED if quantised and tool not in FAITHFUL else None)
        if reason:
            result["known_issue"] = reason
    return {"steps": steps, "dt": dt, "tools": results}


def issue_kind(model: nn.Module) -> tuple[str, str, str]:
    """``(family, neuron, reset)`` of a net as ``peers.known_issues`` indexes differences: the family its most
    particular layer gives (delayed, recurrent, residual, pool, conv, dense, in that order), ``IF`` or ``LIF`` and the
    reset of its first neuron written as a NIR ``IF`` / ``LIF`` node: a plain one, a trained PLIF / learnt-threshold
    neuron (``LearnableLIF``: ``IF`` where it does not leak) or spikebp's ``LeakCorrectedLIF`` (a PLIF rsnn was
    ``("recurrent", "", "")``, so snnTorch's differing spikes came without the known cause); ``("", "")`` for other
    neurons (``CubaLIF``)."""
    modules = list(model.modules())
    checks = (("delayed", DelayedLinear), ("recurrent", RecurrentSpiking), ("residual", ResidualBlock | SewBlock),
              ("pool", nn.AvgPool2d), ("conv", nn.Conv2d))
    family = next((name for name, kind in checks if any(isinstance(m, kind) for m in modules)), "dense")
    neuron = next((m for m in modules if isinstance(m, SpikingNeuron | LearnableLIF | LeakCorrectedLIF)), None)
    if isinstance(neuron, SpikingNeuron):
        return family, "IF" if neuron.params.decay == 1.0 else "LIF", neuron.params.reset
    if isinstance(neuron, LearnableLIF):
        with torch.no_grad():
            leaks = bool((neuron.decay() != 1.0).any())
        return family, "LIF" if leaks else "IF", neuron.fixed.reset
    return (family, "LIF", "zero") if neuron is not None else (family, "", "")


def has_uneven_neurons(model: nn.Module) -> bool:
    """Whether a trained PLIF / learnt-threshold layer (``LearnableLIF``, per channel or per neuron) or a layer
    imported with a constant per neuron (``HeterogeneousLIF``: its ``threshold`` and membrane ``decay``; snnTorch
    takes a per-neuron synaptic decay) of ``model`` holds thresholds or decays that differ between its channels or
    neurons (``known_issues.UNEVEN_NEURONS``)."""
    def tensors(m: nn.Module) -> tuple:
        if isinstance(m, LearnableLIF):
            return m.threshold, m.w
        return (m.threshold, m.decay) if isinstance(m, HeterogeneousLIF) else ()

    with torch.no_grad():
        return any(bool((p != p.reshape(-1)[0]).any()) for m in model.modules() for p in tensors(m)
                   if p is not None and p.numel() > 1)


def check_import(tool: str, x: torch.Tensor) -> dict:
    """The import direction: ``tool`` exports its own dense net (:mod:`peers.producers`), deepspike's
    ``from_nir`` (at the tool's dt) runs the graph on ``x [T, B, 64]``; compared with the tool's own run."""
    try:
        graph, run, dt = PRODUCERS[tool](x.shape[1])
        theirs = run(x)
        with torch.no_grad():
            ours = from_nir(graph, dt=dt)(x)
    except Exception as e:  # noqa: BLE001 - a failure on either side is the finding
        return {"equal": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"}
    return compare(ours.reshape(theirs.shape) if ours.numel() == theirs.numel() else ours, theirs.float())
