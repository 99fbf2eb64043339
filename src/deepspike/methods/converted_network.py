"""The converted spiking network: signed Poisson (or direct) input -> IF body on ``[T, B, ...]`` -> IF output layer.

Input (sengupta2019 section 4.1): pixel ``x`` (mean-subtracted) becomes spikes
``s_t = sign(x) 1[U_t < |x| / c]``
with ``U_t ~ Uniform(0, 1)``, so the rate is ``|x| / c`` (``c = input_scale``, the largest ``|x|`` of the
calibration set; rates above 1 are clipped). Only the input layer carries negative spikes; every neuron
after it emits 0/1 spikes (or ``th``-valued spikes, ``neurons.chunked_if``). Or direct input
(``DirectEncoder``): the analog image at every step. Output: the spike count ``n_k = sum_t s_t,k`` of the
output IF neurons, or the integrated input current ``sum_t x_t,k`` (``readout="membrane"``: a non-spiking
integrator, ``CurrentIntegrator``, takes the output IF layer's place, as stbp's membrane readout; the IF layer
does not run, so it adds no spikes and its update is priced as the integrator's one addition); the score is
that sum divided by T.

Time runs in chunks of ``chunk`` steps (neurons carry their membrane across chunks, see ``neuron``), with
``chunk = max(1, chunk_elements // (B * largest per-sample activation))``, so T = 2500 fits in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from deepspike.coding import rate_bipolar
from deepspike.coding.rate import check_steps, direct
from deepspike.core.errors import ConfigError
from deepspike.methods.rate_network import as_weight_dtype
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.chunked_if import ChunkedIF
from deepspike.neurons.update_cost import kept_sum_ops

READOUTS = ("spike", "membrane")


class StopForward(Exception):
    """Raised by a hook to end the current chunk's forward pass early (balancing stops at layer l)."""


class SignedPoissonEncoder(nn.Module):
    """``x [B, ...] -> s [T, B, ...]``, ``s_t = a sign(x) 1[U_t < min(|x| / scale, 1)]``, values ``-a, 0, a``.

    The spike value ``a`` is 1 (sengupta2019) or ``scale`` (``weighted``: the expected input equals ``x``).
    """

    kind = "bipolar"  # the encoder's name in exported graphs and the chip reports' input notes

    def __init__(self, scale: float = 1.0, weighted: bool = False) -> None:
        super().__init__()
        if not scale > 0:
            raise ConfigError(f"input_scale must be > 0, got {scale}")
        self.scale, self.weighted = float(scale), bool(weighted)

    def forward(
        self, x: torch.Tensor, timesteps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        spikes = rate_bipolar(x / self.scale, timesteps, generator)
        return spikes.mul_(self.scale) if self.weighted else spikes

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}" + (", weighted" if self.weighted else "")


class DirectEncoder(nn.Module):
    """Direct (analog) input: ``x [B, ...] -> [T, B, ...]``, the image itself at every step; the first layer's
    neurons turn it into spikes (Rueckauer 2017; Bu et al. 2022). ``generator`` is unused."""

    kind = "direct"  # the encoder's name in exported graphs and the chip reports' input notes

    def forward(
        self, x: torch.Tensor, timesteps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return direct(x, timesteps)  # a stride-0 view: the first layer runs once where nothing hooks it


class CurrentIntegrator(nn.Module):
    """The membrane readout's non-spiking output neurons: ``x [Tc, B, K] -> x`` (the currents they integrate,
    ``V_t = V_{t-1} + x_t``; ``ConvertedNetwork.trace`` sums them). Not a spiking neuron: no spikes, no raster or
    trace; priced by the activity recorder as one addition per neuron and step (``update_ops``), as stbp's
    ``layers.readout.MembraneReadout``."""

    prices_own_updates = True  # non-spiking output neurons whose updates are priced (layers.activity_recorder)

    def update_ops(self) -> tuple[int, int]:
        """(MACs, ACs) per output neuron and step: ``V_t = V_{t-1} + x_t``, one addition (``kept_sum_ops(1)``)."""
        return kept_sum_ops(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class ConvertedNetwork(nn.Module):
    """``scores [B, K] = (1/T) sum_t readout_t`` of ``output(body(encoder(x)))`` over ``T`` steps, in chunks.

    encoder: ``SignedPoissonEncoder`` or ``DirectEncoder``; body: the spec built with ``TimeDistributed``
    layers and ``ChunkedIF`` neurons, ``[T, B, ...] -> [T, B, K]`` currents; output: the output layer's ``ChunkedIF``
(run for ``readout="spike"``; for ``"membrane"`` the ``integrator`` runs in its place, its threshold is kept for
exports that make the output layer spike, e.g. Speck).
    ``max_numel``: the largest per-sample activation size in the body (sets the chunk length).
    """

    def __init__(
        self,
        encoder: SignedPoissonEncoder | DirectEncoder,
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
        self.integrator = CurrentIntegrator()  # the membrane readout (no parameters: checkpoints are unchanged)
        self.timesteps = int(timesteps)
        self.eval_timesteps = self.timesteps
        self.readout = readout
        self.max_numel = int(max_numel)
        self.chunk_elements = int(chunk_elements)

    def chunk_size(self, batch: int, timesteps: int) -> int:
        """Steps per chunk: ``clamp(chunk_elements // (batch * max_numel), 1, timesteps)``."""
        return max(1, min(timesteps, self.chunk_elements // max(1, batch * self.max_numel)))

    def stream(
        self,
        x: torch.Tensor,
        timesteps: int,
        generator: torch.Generator | None = None,
        cuts: Sequence[int] = (),
    ) -> Iterator[tuple[int, torch.Tensor | None, torch.Tensor | None]]:
        """Yield ``(t0, outputs [Tc, B, K], currents [Tc, B, K])`` per chunk starting at step ``t0``: the output IF
        layer's spikes (``readout="spike"``) or the currents the membrane readout's ``integrator`` passed on.

        A chunk also ends after each step in ``cuts`` (so counts can be read there). Membranes carry over
        between chunks; a ``StopForward`` raised by a hook yields ``(t0, None, None)``.
        """
        if timesteps < 1:
            raise ConfigError(f"timesteps must be >= 1, got {timesteps}")
        size = self.chunk_size(x.shape[0], timesteps)
        ends = sorted({*range(size, timesteps, size), *(t for t in cuts if 0 < t < timesteps), timesteps})
        with temporal_carry(self):
            t0 = 0
            for end in ends:
                try:
                    currents = self.body(self.encoder(x, end - t0, generator))  # [Tc, B, K]
                    spikes = self.output(currents) if self.readout == "spike" else self.integrator(currents)
                except StopForward:
                    yield t0, None, None
                    t0 = end
                    continue
                yield t0, spikes, currents
                t0 = end

    def trace(
        self,
        x: torch.Tensor,
        timesteps: int,
        checkpoints: Sequence[int],
        generator: torch.Generator | None = None,
        on_checkpoint: Callable[[int], None] | None = None,
    ) -> torch.Tensor:
        """Scores after each of ``checkpoints`` (steps, 1..T, ascending): ``[len(checkpoints), B, K]``.

        The score after ``t`` steps is ``(1/t) sum_{u<=t} r_u`` with ``r`` the output spikes (or currents).
        ``on_checkpoint(t)`` is called once the network has run exactly ``t`` steps, for each checkpoint.
        """
        marks = torch.as_tensor(list(checkpoints), dtype=torch.long)
        if len(marks) == 0 or marks.min() < 1 or marks.max() > timesteps:
            raise ConfigError(f"checkpoints must lie in 1..{timesteps}, got {list(checkpoints)}")
        total, picked = None, []
        cuts = marks.tolist() if on_checkpoint is not None else ()
        for t0, spikes, currents in self.stream(x, timesteps, generator, cuts):
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
            if on_checkpoint is not None and int(steps[-1]) in cuts:
                on_checkpoint(int(steps[-1]))
        return torch.stack(picked)  # [C, B, K]

    def forward(self, x: torch.Tensor, timesteps: int | None = None) -> torch.Tensor:
        """Scores ``[B, K]`` after ``timesteps`` steps (default: ``timesteps`` / ``eval_timesteps``); float64 images
        of a float32 net are cast to it first (``rate_network.as_weight_dtype``: they stopped in the first conv)."""
        default = self.timesteps if self.training else self.eval_timesteps
        steps = default if timesteps is None else check_steps(timesteps)  # 0 is an error, not the default
        return self.trace(as_weight_dtype(self, x), steps, [steps])[0]
