"""Streaming inference: a rate-coded network fed one time step at a time, e.g. frames of a live event camera.

``Stream(net)`` holds the network's temporal state itself (every neuron's membrane, NeuNorm traces; read with
``neurons.carry.read_state``) between calls, so the model stays an ordinary module that any other code may call
meanwhile. Each ``step(x)`` runs one step from that state:

    input    x: one step before encoding, ``[B, C, H, W]``: the image for a rate encoder (``direct`` feeds it,
             ``poisson`` draws this step's spikes from it) or one event frame for a ``frames`` network; for a
             ``population`` encoder the image, frame or sequence step ``[B, F]``, population-coded on its own
    output   the body's output of this step ``[B, K]`` (the last layer's currents or spikes)

and ``scores()`` is the readout of all steps so far, ``[B, K]``: after T steps it equals ``net(x, timesteps=T)``
for deterministic inputs (direct encoding, event frames), since the neurons' update from a carried membrane is the
same arithmetic and the readout runs on the same ``[T, B, K]`` outputs. It is bit for bit where a step's layers sum
in the same order as the whole call's (the convolutional nets of the tests); a linear layer multiplies ``B`` rows
in a step and ``T B`` rows in the whole call, which torch's BLAS may sum in another order: the scores then agree to
float rounding (measured, a digits-sized mlp at T = 5: 2.4e-7 to 3.6e-7 for B = 3 to 8, 0 for B = 1, 16 and 64;
a conv net with one sample: 2.4e-7), and a membrane readout may differ in its last bits. Memory: the state plus
the ``[t, B, K]`` outputs so far (K numbers per sample and step).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from deepspike.coding.encoder import InputEncoder
from deepspike.core.errors import ConfigError
from deepspike.layers.event_frames import FrameEncoder
from deepspike.layers.population_encoder import PopulationEncoder
from deepspike.methods.rate_network import RateNetwork, as_weight_dtype, check_runs_in_pieces
from deepspike.neurons.carry import carrying, stateful_modules

STEP_DIMS = (2, 4)
"""The axes of one step of an event-frame or population-coded network's input: ``[B, F]`` or ``[B, C, H, W]`` (its
whole samples ``[B, T', F]`` / ``[B, T', C, H, W]`` have one more)."""


class Stream:
    """Step-by-step inference of a ``RateNetwork`` (module docstring). Runs without gradients, in eval mode (a net
    in training mode is put back in it after each call).

    ``step(x [B, C, H, W]) -> o_t [B, K]`` (the body's output of step t, from the state step t-1 left);
    ``scores() -> readout([o_1, ..., o_t]) [B, K]``, equal to ``net(x, timesteps=t)`` for deterministic input.
    """

    def __init__(self, net: RateNetwork) -> None:
        check_runs_in_pieces(net, "streaming")
        if not isinstance(net.encoder, InputEncoder | PopulationEncoder | FrameEncoder):
            raise ConfigError(f"streaming feeds one step at a time through a rate or population encoder or as event "
                              f"frames; the encoder {type(net.encoder).__name__} is none of them")
        self.net = net
        self.carriers = stateful_modules(net.body)  # found once: the net's layers are fixed while it streams
        self.reset()

    def reset(self) -> None:
        """Start a new stream: fresh membranes, no outputs."""
        self.states: list | None = None
        self.outputs: list[torch.Tensor] = []

    @property
    def steps(self) -> int:
        """Steps run since the last ``reset``."""
        return len(self.outputs)

    @torch.no_grad()
    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One step: ``x [B, C, H, W]`` (module docstring) -> the body's output ``[B, K]``."""
        self._check_step(x)
        net = self.net
        x = as_weight_dtype(net, x)  # float64 frames of a float32 net (``RateNetwork.forward``)
        coded = isinstance(net.encoder, InputEncoder | PopulationEncoder)
        with evaluating(net):
            encoded = net.encoder(x, 1) if coded else x.unsqueeze(0)  # [1, B, ...]
            # (an event frame [B, C, H, W] is step t of the FrameEncoder's [T, B, C, H, W])
            with carrying(self.carriers, self.states):
                out = net.body(encoded)  # [1, B, K]
                self.states = [m.state for m in self.carriers]
        self.outputs.append(out)
        return out[0]

    def _check_step(self, x: torch.Tensor) -> None:
        """A one-line ``ConfigError`` unless ``x`` is a tensor that is one step (``STEP_DIMS`` axes where the encoder
        is not a rate encoder: a whole sample ``[B, T', F]`` ran as one step, and a recurrent net's scores came out
        ``[B, T', K]``) of as many samples as the steps before (another batch size was a broadcasting error of a
        conv net's neurons, a traceback)."""
        if not isinstance(x, torch.Tensor):
            raise ConfigError(f"a stream step is a tensor [B, ...], got {type(x).__name__}")
        if not isinstance(self.net.encoder, InputEncoder) and x.dim() not in STEP_DIMS:
            raise ConfigError(f"a stream step of a {type(self.net.encoder).__name__} network is one step, [B, F] or "
                              f"[B, C, H, W]; got shape {tuple(x.shape)} (a whole sample [B, T, ...] goes to net(x))")
        if self.outputs and x.shape[:1] != self.outputs[-1].shape[1:2]:
            raise ConfigError(f"this stream runs {self.outputs[-1].shape[1]} samples (its state holds each one's "
                              f"membranes); a step of {x.shape[0] if x.dim() else 0} came: reset() to start another "
                              f"stream")

    @torch.no_grad()
    def scores(self) -> torch.Tensor:
        """The readout of every step so far: class scores ``[B, K]`` (as ``net`` gives after that many steps)."""
        if not self.outputs:
            raise ConfigError("no step has run yet: call step(x) first")
        with evaluating(self.net):
            return self.net.readout(torch.cat(self.outputs))


@contextmanager
def evaluating(net: nn.Module) -> Iterator[None]:
    """``net`` in eval mode in the block and each of its modules in its own mode again afterwards: a stream step
    taken between a training loop's batches left the net in eval mode, and the loop trained on with dropout off and
    frozen batch-norm statistics. A net already in eval mode is not walked (``eval()`` visits every module)."""
    if not net.training:
        yield
        return
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode
