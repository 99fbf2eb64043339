"""How the gradient goes through time (``train.temporal_grad``): BPTT, checkpointed BPTT, SLTT, OTTT or e-prop.

* ``bptt``: backpropagation through all T steps (autograd through the fused neuron kernels); memory grows
  with T.
* ``checkpoint``: the same gradients, exactly; the body runs in segments of ``train.time_segment`` steps
  (default ``ceil(sqrt(T))``) whose forward is recomputed in backward (``methods.rate_network``).
* ``sltt`` (Meng et al., "Towards memory- and time-efficient backpropagation for training spiking neural
  networks", ICCV 2023): one step at a time, the membrane carried *detached* from step to step, so each step's
  gradient takes the spatial path only; each step's loss is backpropagated at once and its graph freed, and the
  weight gradients accumulate over the T steps before one optimizer step. ``train.sltt_steps = K``
  backpropagates at K time steps drawn at random per batch (SLTT-K) and runs the others forward only.
* ``ottt`` (Xiao et al., "Online training through time for spiking neural networks", NeurIPS 2022): SLTT's
  spatial-only step, with every synaptic layer's weight gradient taken from its presynaptic trace
  ``a_t = lambda a_{t-1} + x_t`` instead of its input (``layers.trace_gradient``); lambda is the neurons' leak,
  the one fixed decay they all share (LIF neurons, learnt thresholds included; a net with any other neuron is refused).
  The trace follows the forward dynamics: a LIF with ``leak_grad=False`` (lee2020's BPTT Jacobian
  ``dh_t/dv_{t-1} = 1``, ``neurons.dynamics``) keeps the decay k here, as the papers' traces (OTTT's
  ``a_t = lambda a_{t-1} + s_t``, e-prop's ``eps_t = alpha eps_{t-1} + z_t``) are those of the membrane's leak
  whatever the backward pass does with it; so its online gradient differs from its BPTT gradient by more than the
  dropped reset.

* ``eprop`` (Bellec et al., "A solution to the learning dilemma for recurrent networks of spiking neurons", Nat.
  Commun. 2020): OTTT's step and traces, with a layer's bias taken as a synapse from a constant input (its own
  trace), adaptive-threshold neurons (alif) admitted with their adaptation eligibility (``training.eprop``), and
  ``train.eprop_feedback=random`` sending the error back through fixed random matrices instead of the weights
  (``layers.random_feedback``). The learning signal of step t is that step's loss gradient through the spatial
  path. By default the readout is memoryless (``kappa = 0``: step t's loss scores ``o_t``);
  ``train.eprop_readout_decay = kappa`` in (0, 1) gives the paper's leaky readout (its eq. 2 and the low-pass
  filter ``F_kappa`` of its eligibility traces)::

      y_t = kappa y_{t-1} + o_t   (y_0 = 0),      loss = (1/T) sum_t loss(y_t, y)
      dE/dW_ji = sum_t L_j^t ebar_ji^t,            ebar_t = kappa ebar_{t-1} + e_t

  ``o_t`` the step's readout ``W_out z_t + b`` (or the output spikes of a spike-rate readout), ``L_j^t`` the
  gradient of step t's loss at neuron j's spikes through the spatial path and ``e_t`` the eligibility of
  ``training.eprop`` (``psi_t eps_t`` for a LIF neuron). The layers that feed the readout take the trace of their
  input with decay ``kappa`` (their exact gradient through ``y``), the others keep ``ebar`` per synapse and sample
  (``training.eprop``; so every neuron must be fed straight by a linear layer). For a net whose one spiking layer
  has no recurrence this is the exact gradient of the loss through the leaky readout (the reset not
  differentiated). The reported output and the evaluation score stay the net's readout (the mean of the ``o_t``).

The online modes score every step: the loss is ``(1/T) sum_t loss(o_t, y)`` (``1/K`` over the K chosen steps
for SLTT-K, where the official SLTT code divides by T: its gradient is K/T times ours, docs/methods/temporal-grad.md),
``o_t`` the readout of step t alone (a spike-rate readout: that step's output spikes; a membrane readout: that step's
output current), as both papers train (e-prop's leaky readout scores ``y_t`` instead, above); the reported training
output is the mean of the ``o_t``. Memory holds one step's graph and the carried state
whatever T is. Under data parallelism the gradients are accumulated locally (``no_sync``) and averaged over the
ranks once per batch, which is what DistributedDataParallel's own averaging gives.

Batch-norm in training mode normalises over the time steps a call sees: all T (bptt), one segment
(checkpoint), one step (sltt, ottt, eprop; as in a framework that loops over time, e.g. snnTorch). The running
statistics move once per call. Between a traced layer and its neurons (ottt, eprop) it makes the trace approximate:
step t's statistics differ from those that normalised the past inputs the trace carries (exact without batch-norm or
with its statistics frozen; 29% off in a float64 check, docs/methods/temporal-grad.md); admitted, not refused.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from deepspike.config.schema import ONLINE_GRADS, TEMPORAL_GRADS, RunConfig
from deepspike.core.errors import ConfigError, UserError
from deepspike.core.precision import at_least_float32
from deepspike.data.mixing import mixed_loss
from deepspike.data.registry import declared_shape
from deepspike.layers.random_feedback import attach_random_feedback
from deepspike.layers.readout import MaxMembraneReadout, MembraneReadout
from deepspike.methods.base import Method
from deepspike.methods.rate_network import RateNetwork, check_neurons_carry, check_runs_in_pieces
from deepspike.methods.registry import method_from_options
from deepspike.neurons.adaptive import AdaptiveLIF
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.learnable import LearnableLIF
from deepspike.training.eprop import adaptive_synapses, check_filterable, eprop_batch
from deepspike.training.run_setup import method_and_architecture
from deepspike.training.runtime import autocast

ONLINE = ONLINE_GRADS  # sltt, ottt, eprop
TRACED = ("ottt", "eprop")  # the online modes with presynaptic traces
__all__ = ["ONLINE", "TEMPORAL_GRADS", "TRACED", "chosen_steps", "online_step", "prepare_temporal_grad",
           "trace_decay"]


def prepare_temporal_grad(net: nn.Module, mode: str, time_segment: int | None, method_name: str,
                          eprop_feedback: str | None = None, seed: int = 0,
                          eprop_readout_decay: float | None = None, sltt_steps: int | None = None) -> None:
    """Check that ``net`` can train with ``mode`` (one-line ``ConfigError`` otherwise: SLTT-K's ``sltt_steps`` more
    than the net's time steps, which would be clamped to all of them without a word, or checkpoint's
    ``time_segment`` more than them, one segment, BPTT's memory without a word; a net whose
    ``trains_on_whole_sequences`` gives a reason, or one of whose modules does, e.g. STDP layers and spikebp's
    neurons, trains with bptt only; the online modes' refusals, ``_check_online``) and set it up: checkpoint's
    segment of ``time_segment`` steps, e-prop's random feedback matrices drawn from ``seed``
    (``train.eprop_feedback=random``) and its readout leak ``kappa``
    (``train.eprop_readout_decay``, kept as ``net.eprop_readout_decay``)."""
    if mode == "bptt":
        return
    _check_whole_sequences(net, mode)
    check_runs_in_pieces(net, f"train.temporal_grad={mode}", _pieces_advice(method_name))
    check_steps_within(time_segment, sltt_steps, net.timesteps)
    if mode in ONLINE:
        _check_online(net, mode)
    if mode == "checkpoint":
        net.time_segment = time_segment or math.ceil(math.sqrt(net.timesteps))
    elif mode in TRACED:
        trace_decay(net, mode)  # refuse mixed leaks now, not at the first batch
    if mode == "eprop":
        net.eprop_readout_decay = eprop_readout_decay or 0.0
        adaptive_synapses(net, net.eprop_readout_decay)  # refuse neurons whose eligibility is not kept
        if eprop_feedback == "random":
            attach_random_feedback(net, seed)


def _check_whole_sequences(net: nn.Module, mode: str) -> None:
    """One-line ``ConfigError`` when ``net`` or one of its modules trains on whole sequences
    (``trains_on_whole_sequences`` gives the reason: STDP layers, spikebp's neurons), which ``mode`` runs in pieces."""
    reason = next(filter(None, (getattr(m, "trains_on_whole_sequences", None) for m in net.modules())), None)
    if reason:
        raise ConfigError(f"train.temporal_grad={mode} runs time in pieces, but {reason}: use "
                          "train.temporal_grad=bptt")


def _pieces_advice(method_name: str) -> str:
    """The end of ``check_runs_in_pieces``'s refusal of a temporal-gradient mode."""
    return f" (method {method_name!r}): use train.temporal_grad=bptt"


def check_steps_within(time_segment: int | None, sltt_steps: int | None, timesteps: object) -> None:
    """One-line ``ConfigError`` for checkpoint's ``time_segment`` (one segment: plain BPTT's memory without a word)
    or SLTT-K's ``sltt_steps`` (clamped to all of them) more than the ``timesteps`` of training (nothing to check
    where that is no number: a method without time steps, refused by ``prepare_temporal_grad``)."""
    if not isinstance(timesteps, int):
        return
    if time_segment is not None and time_segment > timesteps:
        raise ConfigError(f"train.time_segment={time_segment} is more than the {timesteps} time steps "
                          f"(method.timesteps) it splits: use at most {timesteps}, or null for "
                          f"ceil(sqrt(T)) = {math.ceil(math.sqrt(timesteps))}")
    if sltt_steps is not None and sltt_steps > timesteps:
        raise ConfigError(f"train.sltt_steps={sltt_steps} is more than the {timesteps} time steps SLTT-K draws "
                          f"from (method.timesteps): use at most {timesteps}, or null for all of them")


def check_settings_before_data(config: RunConfig) -> None:
    """What ``prepare_temporal_grad`` refuses that the settings alone decide, before the data is read (a download
    of it included): ``check_steps_within`` against ``method.timesteps``; for a method whose options alone decide
    its neurons, readout and loss (``options_probe``, e.g. stbp's one-neuron net), a net that trains on whole
    sequences (``_check_whole_sequences``: STDP) under any mode but bptt, and under an online mode: a neuron
    that cannot carry its state (``check_neurons_carry``), the readout, loss and ``method.rate_reg`` of
    ``_check_online``, for ottt and eprop a neuron without one fixed decay (``trace_decay``), and e-prop's leaky readout
    over a neuron whose eligibility it does not keep (``check_filterable``); then all of ``prepare_temporal_grad``
    on the model built at the shape the data set declares (``_check_declared_model``: learnable delays, TEBN, e-prop's
    feeding rules); each with the message the built net would give."""
    t = config.train
    check_steps_within(t.time_segment, t.sltt_steps, getattr(config.method.options, "timesteps", None))
    mode = t.temporal_grad
    method = method_from_options(config.method.name, config.method.options) if mode != "bptt" else None
    probe = getattr(method, "options_probe", None)
    if probe is not None:
        _check_probe(probe(), config)
    if method is not None and not method.learns_locally:  # whose own refusal comes first (training_setup)
        _check_declared_model(config)


def _check_declared_model(config: RunConfig) -> None:
    """``prepare_temporal_grad``'s refusals of the model itself (learnable delays, TEBN, e-prop's feeding rules, a
    method whose net is no rate network, ...), before the data is read: on the model built at the input shape and
    class count the data set declares (``data.registry.declared_shape``), first without its weights (the meta
    device), then on the CPU where a check reads a value (the masked PSN's lambda), the generators put back; nothing
    where the data set declares none (an image folder), where the late check stays. A build that fails otherwise
    than with a ``UserError`` is left to the real one."""
    declared = declared_shape(config.data.name, config.data.args)
    t = config.train
    for device in ("meta", "cpu") if declared is not None else ():
        try:
            with torch.device(device), torch.random.fork_rng(devices=[]):
                method, arch = method_and_architecture(config, declared[1], declared[0])
                net = method.build(arch)  # no random feedback matrices below (they refuse nothing)
                prepare_temporal_grad(net, t.temporal_grad, t.time_segment, config.method.name, None, t.seed,
                                      t.eprop_readout_decay, t.sltt_steps)
            return
        except UserError:
            raise
        except Exception:  # noqa: BLE001  (meta: a value read; cpu: a layer that needs the data; the build tells)
            continue


def _check_probe(net: RateNetwork, config: RunConfig) -> None:
    """``check_settings_before_data``'s refusals from the net ``options_probe`` gave."""
    t = config.train
    mode = t.temporal_grad
    _check_whole_sequences(net, mode)
    if mode not in ONLINE:
        return
    # not all of check_runs_in_pieces: a module's pieces_refusal() may change in training
    check_neurons_carry(net, f"train.temporal_grad={mode}", _pieces_advice(config.method.name))
    _check_online(net, mode)
    if mode in TRACED:
        trace_decay(net, mode)
    if mode == "eprop":
        check_filterable(net, t.eprop_readout_decay or 0.0)


def _check_online(net: RateNetwork, mode: str) -> None:
    """One-line ``ConfigError`` for what online ``mode`` cannot train, at setup rather than at the first batch: a
    readout whose score is not the mean of the steps' outputs (``_check_step_scores``), a loss on all T steps' scores
    (``net.whole_window_loss``) and ``method.rate_reg``, whose penalty takes the hidden rates of all T steps
    (``net.hidden_rates``, ``layers.rate_penalty``)."""
    _check_step_scores(net.readout, mode)
    if getattr(net, "whole_window_loss", None):
        raise ConfigError(f"{net.whole_window_loss}; train.temporal_grad={mode} scores one step at a time: use "
                          "bptt or checkpoint")
    if getattr(net, "hidden_rates", None) is not None:
        raise ConfigError(f"method.rate_reg penalises the hidden firing rates over all T steps of a batch; "
                          f"train.temporal_grad={mode} runs one step at a time: use bptt or checkpoint, or "
                          "method.rate_reg: none")


def _check_step_scores(readout: nn.Module, mode: str) -> None:
    """One-line ``ConfigError`` for a leaky membrane readout (``method.membrane_decay`` below 1) or a max-membrane
    one: the online modes train ``(1/T) sum_t loss(o_t)`` (module docstring), the loss of the score only where the
    score is the steps' mean, and ``V_T / T`` weights step t by ``decay^(T-t)`` (refused with TET for the same
    reason). Such a net trained as if there were no leak and was scored with the leaky readout it had not trained.
    ``max_t V_t`` is no mean of the steps either: its gradient reaches the steps up to the maximum's, weighted
    ``decay^(t* - s)``, where the online loss scored every ``x_t`` alone (``V_1 = x_t``)."""
    if isinstance(readout, MaxMembraneReadout):
        raise ConfigError(f"train.temporal_grad={mode} trains each step's output on its own, (1/T) sum_t loss(o_t), "
                          "but method.readout=max_membrane scores max_t V_t of the leaky integrator, which is no "
                          "mean of the steps: use train.temporal_grad=bptt or checkpoint, or method.readout rate or "
                          "membrane")
    if isinstance(readout, MembraneReadout) and readout.decay != 1.0:
        raise ConfigError(f"train.temporal_grad={mode} trains each step's output on its own, (1/T) sum_t loss(o_t), "
                          f"the score's loss only where the score is their mean, but the membrane readout leaks "
                          f"(method.membrane_decay={readout.decay:g}): its score V_T / T weights step t by "
                          "decay^(T-t): use train.temporal_grad=bptt or checkpoint")


def _fixed_decay(neuron: nn.Module, mode: str) -> float | None:
    """The one fixed first-order decay of a spiking neuron: its ``params.decay`` (also with ``leak_grad=False``: the
    forward leak, module docstring), that of a ``LearnableLIF`` that
    learns its threshold only (``h_t = k v_{t-1} + x_t`` with the fixed ``k``), or for e-prop that of an adaptive
    LIF; None for any other."""
    if hasattr(neuron, "params"):
        return neuron.params.decay
    if isinstance(neuron, AdaptiveLIF) and mode == "eprop":
        return neuron.fixed.decay
    return neuron.fixed.decay if isinstance(neuron, LearnableLIF) and not neuron.decay_input else None


def trace_decay(net: nn.Module, mode: str = "ottt") -> float:
    """The leak lambda of the presynaptic traces of ``mode`` (ottt, eprop): the one decay all the net's spiking
    neurons share (a one-line ``ConfigError`` when one of them has none: the traces would be another neuron's)."""
    neurons = [m for m in net.modules() if getattr(m, "is_spiking_neuron", False)]
    decays = {_fixed_decay(m, mode) for m in neurons}
    other = next((m for m in neurons if _fixed_decay(m, mode) is None), None)
    start = f"train.temporal_grad={mode} needs one neuron decay for the traces; the net"
    if other is not None and decays != {None}:
        raise ConfigError(f"{start}'s {type(other).__name__} has no fixed first-order decay (params.decay)")
    decays.discard(None)
    if not decays:
        adaptive = "" if mode == "eprop" else ", an adaptive one (alif)"
        raise ConfigError(f"{start} has no neuron with one fixed first-order decay (params.decay): a learnt one "
                          f"(plif), a synaptic one (a second decay){adaptive} or neurons of its own")
    if len(decays) != 1:
        raise ConfigError(f"{start} has {sorted(decays)}")
    return decays.pop()


def online_step(
    model: nn.Module,
    net: RateNetwork,
    method: Method,
    x: torch.Tensor,
    y: torch.Tensor,
    mode: str,
    loss_scale: float = 1.0,
    sltt_steps: int | None = None,
    precision: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run batch ``x [B, ...]``, ``y [B]`` one step at a time and leave the accumulated gradient in ``.grad``
    (module docstring); returns ``(mean output [B, K], loss)``, both detached, the mean in float32 at least.
    ``model``: the bare ``net`` or its DDP wrapper; ``loss_scale``: the data-parallel scaling of the loss
    (``training.loop``)."""
    steps = net.timesteps
    ddp = isinstance(model, DistributedDataParallel)
    chosen = chosen_steps(steps, sltt_steps, x.device, ddp)
    weight = 1.0 / len(chosen)
    loss, out_sum = torch.zeros((), device=x.device), None
    decay = trace_decay(net, mode) if mode in TRACED else None
    kappa = getattr(net, "eprop_readout_decay", 0.0) if mode == "eprop" else 0.0
    carry = temporal_carry(net, detach=True, trace_decay=decay, bias_trace=mode == "eprop")
    leaky = None  # y_{t-1} of the leaky readout (kappa > 0), detached
    with (model.no_sync() if ddp else nullcontext(), carry,
          eprop_batch(net, kappa) if mode == "eprop" else nullcontext()):
        for t, x_t in enumerate(net.step_inputs(x, steps)):
            with torch.set_grad_enabled(t in chosen), autocast(x.device, precision):
                out_t = net.score_step(x_t)  # [B, K]
                scored = out_t if leaky is None else kappa * leaky + out_t
                leaky = scored.detach() if kappa else None
                loss_t = mixed_loss(method.loss, scored, y) * weight if len(y) else out_t.sum() * 0.0
            if t in chosen:
                (loss_t * loss_scale).backward()
                loss = loss + loss_t.detach()
            out_t = out_t.detach().to(at_least_float32(out_t.dtype))  # bf16 sums of 1 stop at 256
            out_sum = out_t if out_sum is None else out_sum + out_t
    penalty = method.penalty(net)
    if penalty is not None:
        (penalty * loss_scale).backward()
        loss = loss + penalty.detach()
    if ddp:
        _average_gradients(net)
    return out_sum / steps, loss


def chosen_steps(steps: int, k: int | None, device: torch.device, shared: bool) -> set[int]:
    """The steps an online batch backpropagates at: all ``steps``, or SLTT-K's ``k`` drawn at random; ``shared``
    (data parallelism): rank 0's draw on every rank, so that all ranks backpropagate the global batch at the same
    steps as one process would (each drew its own from its own generator: a 2-rank ``sltt_steps=1`` run ended 1.3e-2
    from one process)."""
    if not k:
        return set(range(steps))
    picks = torch.randperm(steps)[:min(k, steps)]
    if shared:
        picks = picks.to(device)
        dist.broadcast(picks, src=0)
    return set(picks.tolist())


def _average_gradients(net: nn.Module) -> None:
    """Average every parameter gradient over the ranks (DistributedDataParallel's reduction, done by hand)."""
    world = dist.get_world_size()
    for p in net.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(world)
