"""A rate-coded classifier: encoder -> spiking body on ``[T, B, ...]`` -> readout -> scores ``[B, K]``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from deepspike.coding.encoder import InputEncoder
from deepspike.coding.rate import check_steps
from deepspike.core.errors import ConfigError
from deepspike.neurons.carry import neuron_without_carry, read_state, temporal_carry, write_state


def as_weight_dtype(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Floating-point ``x`` in the dtype of ``net``'s weights (its first parameter's) outside autocast, as
    ``deploy.from_nir`` takes it: float64 images of a float32 net stopped in its first layer ("expected scalar type
    Double but found Float"); under autocast, and for anything else, ``x`` as it is (the encoder refuses what it
    cannot code)."""
    weight = first_parameter(net)
    if (weight is None or not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dtype == weight.dtype
            or torch.is_autocast_enabled(x.device.type)):
        return x
    return x.to(weight.dtype)


def first_parameter(module: nn.Module) -> nn.Parameter | None:
    """``next(module.parameters(), None)`` without its generators: the first non-None parameter of a pre-order walk
    of the submodules, 5x faster on a 4-layer net (about 3 us against 15-20 us), which ``as_weight_dtype`` pays on
    every forward and every streamed step. A module met twice holds no parameter (else the walk had stopped), so
    walking it again finds none, as ``parameters()`` skipping it; a cycle of modules (which ``.train()`` and ``.to()``
    cannot walk either) ends in ``RecursionError`` and falls back to ``parameters()``."""
    try:
        return _first_parameter(module)
    except RecursionError:
        return next(module.parameters(), None)


def _first_parameter(module: nn.Module) -> nn.Parameter | None:
    for p in module._parameters.values():
        if p is not None:
            return p
    for child in module._modules.values():
        if child is not None and (p := _first_parameter(child)) is not None:
            return p
    return None


class RateNetwork(nn.Module):
    """``scores = readout(body(encoder(x, T)))``.

    x: images ``[B, C, H, W]``; ``encoder(x, T)`` gives the input spike trains (or analog currents)
    ``[T, B, C, H, W]``; the body runs on ``[T, B, ...]``; the readout reduces ``[T, B, K]`` to ``[B, K]``.
    ``timesteps`` is used in training, ``eval_timesteps`` (default: the same) in evaluation; a call may
    pass ``timesteps=`` to override both, e.g. to sweep accuracy against T.

    ``time_segment = S`` (checkpointed BPTT, ``train.temporal_grad=checkpoint``): in training the body runs on
    segments of S steps, each but the last under ``torch.utils.checkpoint``, with its neurons' state carried
    from the one before (``neurons.carry``): only the segment inputs and the states at segment starts are kept
    for the backward pass, which recomputes each segment's forward from them (the last segment's graph is kept:
    backward starts with it, so it would be rebuilt at once). Outputs and gradients are exactly those of one
    call on all T steps when the body has no batch-norm (a batch-norm in training mode normalises each segment
    with that segment's statistics, ``[S*B]`` values per channel instead of ``[T*B]``; the backward replay
    leaves its running statistics alone); peak memory is about S/T of it plus the states.

    ``step_inputs`` and ``score_step`` run the network one step at a time (online training, ``training.online``).

    ``per_step = True`` (a per-step loss, e.g. TET): in training the network returns the readout's per-step
    scores ``[T, B, K]`` (``readout.steps``) instead of their mean ``[B, K]``; evaluation still returns ``[B, K]``.
    ``whole_window_loss``: None, or why the loss needs all T steps' scores at once (e.g. a spike count), which the
    online temporal-gradient modes (one step at a time) refuse when the run is set up (``training.temporal_grad``).
    """

    def __init__(
        self,
        encoder: nn.Module,
        body: nn.Module,
        readout: nn.Module,
        timesteps: int,
        eval_timesteps: int | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.body = body
        self.readout = readout
        self.timesteps = timesteps
        self.eval_timesteps = eval_timesteps or timesteps
        self.time_segment: int | None = None
        self.per_step = False
        self.whole_window_loss: str | None = None

    def forward(self, x: torch.Tensor, timesteps: int | None = None) -> torch.Tensor:
        default = self.timesteps if self.training else self.eval_timesteps
        steps = default if timesteps is None else check_steps(timesteps)  # 0 is an error, not the default
        inputs = self.encoder(as_weight_dtype(self, x), steps)
        segment = self.time_segment
        if segment and segment < steps and self.training and torch.is_grad_enabled():
            outputs = self._segmented_body(inputs, segment)
        else:
            outputs = self.body(inputs)  # [T, B, K]
        return self.readout.steps(outputs) if self.per_step and self.training else self.readout(outputs)

    def _segmented_body(self, inputs: torch.Tensor, segment: int) -> torch.Tensor:
        """``body(inputs)`` for ``inputs [T, B, ...]``, S steps at a time under activation checkpointing."""

        forward_done = [False]

        def run(chunk: torch.Tensor, states: list | None) -> tuple[torch.Tensor, list]:
            # its own carry block: the replay in backward runs outside the forward's, from the segment's start;
            # the replay must not move batch-norm running statistics a second time
            with temporal_carry(self.body), frozen_running_stats(self.body) if forward_done[0] else nullcontext():
                if states is not None:
                    write_state(self.body, states)
                return self.body(chunk), read_state(self.body)

        outputs, states = [], None
        starts = range(0, inputs.shape[0], segment)
        for start in starts:
            chunk = inputs[start:start + segment]
            if start == starts[-1]:  # backward begins here at once: keeping its graph costs no extra peak memory
                out, states = run(chunk, states)
            else:
                out, states = checkpoint(run, chunk, states, use_reentrant=False)
            outputs.append(out)
        forward_done[0] = True
        return torch.cat(outputs)  # [T, B, K]

    def step_inputs(self, x: torch.Tensor, steps: int):
        """The encoded input one step at a time: ``steps`` tensors ``[1, B, ...]``. Rate encoders draw each step
        on its own (nothing of size T is made); event frames are sliced. ``x`` is cast as ``forward`` casts it
        (``as_weight_dtype``): float64 images of a float32 net stopped the online modes in the first layer ("expected
        m1 and m2 to have the same dtype") where BPTT took them."""
        x = as_weight_dtype(self, x)
        if isinstance(self.encoder, InputEncoder):
            return (self.encoder(x, 1) for _ in range(steps))
        frames = self.encoder(x, steps)
        return (frames[t:t + 1] for t in range(steps))

    def score_step(self, x_t: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, K]`` of one step ``x_t [1, B, ...]`` (inside ``temporal_carry``, from the carried state)."""
        return self.readout(self.body(x_t))


def check_runs_in_pieces(net: nn.Module, who: str, advice: str = "") -> None:
    """``ConfigError`` unless ``net`` is a ``RateNetwork`` whose spiking neurons all carry their state from one
    call to the next (``neurons.carry``) and none of whose layers needs the whole sequence (``whole_sequence``,
    ``layers.delays``): what running time in pieces needs (``who``: checkpointed BPTT, SLTT,
    OTTT, streaming; ``advice`` ends the message), and no module says why it cannot now (``pieces_refusal()``, a
    reason or None: the masked PSN before its masking reached 1)."""
    if not isinstance(net, RateNetwork):
        raise ConfigError(f"{who} needs a time-stepped rate-coded network (method stbp); got "
                          f"{type(net).__name__}{advice}")
    check_neurons_carry(net, who, advice)
    whole = next((m for m in net.modules() if getattr(m, "whole_sequence", False)), None)
    if whole is not None:
        raise ConfigError(f"{who}: the layer {type(whole).__name__} needs the whole sequence at once (its "
                          f"delays reach back over earlier steps){advice}")
    reason = next(filter(None, (m.pieces_refusal() for m in net.modules() if hasattr(m, "pieces_refusal"))), None)
    if reason is not None:
        raise ConfigError(f"{who}: {reason}{advice}")


def check_neurons_carry(net: nn.Module, who: str, advice: str = "") -> None:
    """``check_runs_in_pieces``'s refusal of a spiking neuron of ``net`` that does not carry its state from one call
    to the next (``neurons.carry.neuron_without_carry``)."""
    neuron = neuron_without_carry(net)
    if neuron is not None:
        raise ConfigError(f"{who}: the neuron {type(neuron).__name__} cannot carry its state from step to step "
                          f"(neurons.carry.CarriesState){advice}")


@contextmanager
def frozen_running_stats(model: nn.Module) -> Iterator[None]:
    """In the block the batch-norms of ``model`` normalise as usual but leave their running statistics (and
    batch counters) unchanged: momentum 0 keeps ``r <- (1 - m) r + m s`` at ``r``."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, count) in zip(norms, saved, strict=True):
            m.momentum = momentum
            m.num_batches_tracked.copy_(count)
