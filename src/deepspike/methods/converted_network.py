"""The converted spiking network: signed Poisson input -> IF body on ``[T, B, ...]`` -> IF output layer.

Input (sengupta2019 section 4.1): pixel ``x`` (mean-subtracted) becomes spikes
``s_t = sign(x) 1[U_t < |x| / c]``
with ``U_t ~ Uniform(0, 1)``, so the rate is ``|x| / c`` (``c = input_scale``, the largest ``|x|`` of the
calibration set; rates above 1 are clipped). Only the input layer carries negative spikes; every neuron
after it emits 0/1 spikes. Output: the spike count ``n_k = sum_t s_t,k`` of the output IF neurons, or the
integrated input current ``sum_t x_t,k`` (``readout="membrane"``); the score is that sum divided by T.

Time runs in chunks of ``chunk`` steps (neurons carry their membrane across chunks, see ``neuron``), with
``chunk = max(1, chunk_elements // (B * largest per-sample activation))``, so T = 2500 fits in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from deepspike.coding import rate_bipolar
from deepspike.core.errors import ConfigError
from deepspike.neurons.chunked_if import ChunkedIF, carry_state

READOUTS = ("spike", "membrane")


class StopForward(Exception):
    """Raised by a hook to end the current chunk's forward pass early (balancing stops at layer l)."""


class SignedPoissonEncoder(nn.Module):
    """``x [B, ...] -> s [T, B, ...]``, ``s_t = sign(x) 1[U_t < min(|x| / scale, 1)]`` (values -1, 0, 1)."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        if not scale > 0:
            raise ConfigError(f"input_scale must be > 0, got {scale}")
        self.scale = float(scale)

    def forward(
        self, x: torch.Tensor, timesteps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return rate_bipolar(x / self.scale, timesteps, generator)

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"


class ConvertedNetwork(nn.Module):
    """``scores [B, K] = (1/T) sum_t readout_t`` of ``output(body(encoder(x)))`` over ``T`` steps, in chunks.

    encoder: ``SignedPoissonEncoder``; body: the spec built with ``TimeDistributed`` layers and ``ChunkedIF``
    neurons, ``[T, B, ...] -> [T, B, K]`` currents; output: the output layer's ``ChunkedIF``.
    ``max_numel``: the largest per-sample activation size in the body (sets the chunk length).
    """

    def __init__(
        self,
        encoder: SignedPoissonEncoder,
        body: nn.Module,
        output: ChunkedIF,
        timesteps: int,
        readout: str = "spike",
        max_numel: int = 1,
        chunk_elements: int = 2**24,
    ) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ConfigError(f"bad readout {readout!r}; valid: {', '.join(READOUTS)}")
        self.encoder = encoder
        self.body = body
        self.output = output
        self.timesteps = int(timesteps)
        self.eval_timesteps = self.timesteps
        self.readout = readout
        self.max_numel = int(max_numel)
        self.chunk_elements = int(chunk_elements)

    def chunk_size(self, batch: int, timesteps: int) -> int:
        """Steps per chunk: ``clamp(chunk_elements // (batch * max_numel), 1, timesteps)``."""
        return max(1, min(timesteps, self.chunk_elements // max(1, batch * self.max_numel)))

    def stream(
        self, x: torch.Tensor, timesteps: int, generator: torch.Generator | None = None
    ) -> Iterator[tuple[int, torch.Tensor | None, torch.Tensor | None]]:
        """Yield ``(t0, spikes [Tc, B, K], currents [Tc, B, K])`` per chunk starting at step ``t0``.

        Membranes carry over between chunks; a ``StopForward`` raised by a hook yields ``(t0, None, None)``.
        """
        if timesteps < 1:
            raise ConfigError(f"timesteps must be >= 1, got {timesteps}")
        size = self.chunk_size(x.shape[0], timesteps)
        with carry_state(self):
            for t0 in range(0, timesteps, size):
                steps = min(size, timesteps - t0)
                try:
                    currents = self.body(self.encoder(x, steps, generator))  # [Tc, B, K]
                    spikes = self.output(currents)
                except StopForward:
                    yield t0, None, None
                    continue
                yield t0, spikes, currents

    def trace(
        self,
        x: torch.Tensor,
        timesteps: int,
        checkpoints: Sequence[int],
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Scores after each of ``checkpoints`` (steps, 1..T, ascending): ``[len(checkpoints), B, K]``.

        The score after ``t`` steps is ``(1/t) sum_{u<=t} r_u`` with ``r`` the output spikes (or currents).
        """
        marks = torch.as_tensor(list(checkpoints), dtype=torch.long)
        if len(marks) == 0 or marks.min() < 1 or marks.max() > timesteps:
            raise ConfigError(f"checkpoints must lie in 1..{timesteps}, got {list(checkpoints)}")
        total, picked = None, []
        for t0, spikes, currents in self.stream(x, timesteps, generator):
            if spikes is None or currents is None:
                continue
            r = spikes if self.readout == "spike" else currents
            running = torch.cumsum(r, dim=0)  # [Tc, B, K] cumulative within the chunk
            if total is not None:
                running = running + total
            total = running[-1]
            steps = torch.arange(t0 + 1, t0 + 1 + r.shape[0])
            for i in torch.nonzero(torch.isin(steps, marks)).flatten().tolist():
                picked.append(running[i] / float(steps[i]))
        return torch.stack(picked)  # [C, B, K]

    def forward(self, x: torch.Tensor, timesteps: int | None = None) -> torch.Tensor:
        """Scores ``[B, K]`` after ``timesteps`` steps (default: ``timesteps`` / ``eval_timesteps``)."""
        steps = timesteps or (self.timesteps if self.training else self.eval_timesteps)
        return self.trace(x, steps, [steps])[0]
