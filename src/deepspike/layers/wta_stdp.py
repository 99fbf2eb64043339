"""Diehl & Cook (2015)'s unsupervised network: Poisson inputs, competitive STDP, adaptive thresholds, label voting.

``CompetitiveStdpLayer(inputs, neurons, classes, constants, presentation, init_scale, theta_init, delay_steps)``
holds the input -> excitatory weights ``W [I, N]`` and the threshold offsets ``theta [N]`` (float64 buffers: nothing
here takes gradients), the fixed synaptic delays ``D [I, N]`` (uint8 steps, uniform over ``0 .. delay_steps - 1``:
Diehl & Cook's 0-10 ms), the label of each excitatory neuron and the responses the labels are drawn from. The
simulation of one presentation is ``layers.wta_kernels``' (its docstring has the equations).

Presenting a sample ``x`` (intensities in [0, 1], flattened to ``[I]``): every input fires as a Poisson process of
rate ``x_i * rate`` Hz, ``rate = rate_max`` (Diehl & Cook: 63.75 Hz), for ``S = present_ms / dt`` steps (per step
with probability ``x_i * rate * dt / 1000``), drawn by ``wta_kernels.poisson_rasters`` from one seed per sample that
torch's global generator gives (seeded and checkpointed by the trainer). When the excitatory layer fires fewer than
``min_spikes`` times, the sample is shown again with ``rate + rate_step`` (Diehl & Cook: +32 Hz at full intensity),
at most ``max_presentations`` times in all; its response is the last presentation's spike counts ``[N]``.

Learning (``learn``), sample by sample in the batch's order: the columns of ``W`` are scaled to sum to
``weight_sum`` (Diehl & Cook: 78 over 784 inputs), the sample is presented with STDP and threshold adaptation on,
and after each presentation ``theta`` decays over the rest period, ``theta *= exp(-rest_ms / tau_theta)``: the
paper's 150 ms of rest between samples, during which every other state returns close to rest, is taken as a full
return to rest (the next presentation starts from it). While learning, labels come in blocks of ``label_window``
samples (the authors' code: 10,000): each response is added to its class's sum ``[K, N]``; when a block is full,
every neuron takes the class of its highest mean response over the block (``-1``: it never fired in it) and the next
block starts; ``assign_labels`` labels a block not yet full together with the block before it. The paper's labels
are ``label_by_responses(batches)``: the mean responses, learning off, to one more presentation of the training
set.

Scoring (``forward``, learning off, samples presented in parallel on torch's thread count): the score of class
``k`` is the mean count of the neurons labelled ``k`` (0 for a class no neuron has), ``[B, K]``; the prediction is
its argmax, none where every score is 0 (``WtaStdpMethod.predict``). ``responses(x, tally)`` also adds what the
scoring cost to a ``PresentationTally`` (every show counted, repeats included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.threads import run_numba_kernel
from deepspike.layers import wta_kernels
from deepspike.layers.wta_kernels import WtaConstants

EVAL_CHUNK = 16  # samples whose rasters are drawn at once when scoring ([16, S, I] uint8) ...
RASTER_BYTES = 2**28  # ... at most 256 MiB of them (one sample at least)


@dataclass(frozen=True)
class Presentation:
    """How samples are shown: ``steps`` of ``dt`` ms; Poisson rate ``rate_max`` Hz at intensity 1, raised by
    ``rate_step`` Hz per repeat while fewer than ``min_spikes`` spikes answer, at most ``max_presentations`` shows;
    ``rest_ms`` of rest after each show (``theta`` decays over it); columns of ``W`` sum to ``weight_sum``; labels
    in blocks of ``label_window`` samples."""

    steps: int
    rest_ms: float
    rate_max: float
    rate_step: float
    min_spikes: int
    max_presentations: int
    weight_sum: float
    label_window: int


@dataclass
class PresentationTally:
    """Totals over the samples scored with it (``CompetitiveStdpLayer.responses``): ``samples``, ``shows`` (repeats
    included), and over every show the input spikes, the excitatory and the inhibitory spikes; ``active_*``: the
    neurons that fired in a sample's response (its last show), summed over the samples."""

    samples: int = 0
    shows: int = 0
    input_spikes: int = 0
    excitatory_spikes: int = 0
    inhibitory_spikes: int = 0
    active_excitatory: int = 0
    active_inhibitory: int = 0

    def add_shows(self, rasters: np.ndarray, counts: np.ndarray) -> None:
        """One show of ``b`` samples: ``rasters [b, S, I]`` uint8, their spike counts ``counts [b, 2, N]``."""
        self.shows += len(rasters)
        self.input_spikes += int(rasters.sum(dtype=np.int64))
        self.excitatory_spikes += int(counts[:, 0].sum())
        self.inhibitory_spikes += int(counts[:, 1].sum())

    def add_responses(self, counts: np.ndarray) -> None:
        """The responses ``counts [b, 2, N]`` (last shows) of ``b`` samples."""
        self.samples += len(counts)
        self.active_excitatory += int((counts[:, 0] > 0).sum())
        self.active_inhibitory += int((counts[:, 1] > 0).sum())


class CompetitiveStdpLayer(nn.Module):
    """The network (module docstring): ``[B, C, H, W]`` (or ``[B, I]``) intensities -> class scores ``[B, K]``."""

    weight_output_axis = 1  # W [inputs, neurons]: a neuron's weights are a column (per-channel quantisation)

    def __init__(self, inputs: int, neurons: int, classes: int, constants: WtaConstants, presentation: Presentation,
                 init_scale: float, theta_init: float, delay_steps: int) -> None:
        super().__init__()
        self.inputs, self.neurons, self.classes = inputs, neurons, classes
        self.constants, self.presentation = constants, presentation
        weight = (torch.rand(inputs, neurons, dtype=torch.float64) + 0.01) * init_scale  # Diehl & Cook's start
        self.register_buffer("weight", weight)
        delays = (torch.rand(inputs, neurons, dtype=torch.float64) * delay_steps).floor()  # uniform 0 .. steps - 1
        self.register_buffer("delays", delays.to(torch.uint8))
        self.register_buffer("theta", torch.full((neurons,), float(theta_init), dtype=torch.float64))
        self.register_buffer("assignments", torch.full((neurons,), -1, dtype=torch.int64))
        self.register_buffer("block_sums", torch.zeros(2, classes, neurons, dtype=torch.float64))  # [previous, this]
        self.register_buffer("block_samples", torch.zeros(2, classes, dtype=torch.int64))
        self.register_buffer("learned", torch.zeros((), dtype=torch.int64))

    def extra_repr(self) -> str:
        return f"inputs={self.inputs}, neurons={self.neurons}, classes={self.classes}"

    def update_ops(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """(MACs, ACs) per neuron and step of an excitatory and of an inhibitory neuron (``neurons.update_cost``'s
        rule), counted in the forward-Euler form a digital chip would step (the kernel's exponential Euler costs an
        exponential more): ``v += (dt / tau) [(E_rest - v) + g_e (E_e - v) + g_i (E_i - v)]`` is 3 ACs and 3 MACs,
        the decays of ``g_e`` and ``g_i`` 2 MACs, ``v > v_th + theta`` 2 ACs: (5, 5); the inhibitory neuron, without
        ``g_i`` and ``theta``: (3, 3)."""
        return (5, 5), (3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``[B, K]`` of the responses with learning off (on ``x``'s device)."""
        return self.class_scores(self.responses(x)).to(x.device)

    def _apply(self, fn, recurse=True):
        """The buffers stay float64 on the CPU whatever ``.to()``/``.cuda()``/``.half()`` asks: the simulation is a
        CPU loop over numpy views of them (inputs are moved to the CPU, scores back to the input's device)."""
        return self

    def _chunk_size(self) -> int:
        """Samples whose rasters are drawn at once when scoring: up to ``EVAL_CHUNK``, within ``RASTER_BYTES``."""
        per_sample = self.presentation.steps * self.inputs  # the uint8 raster
        return max(1, min(EVAL_CHUNK, RASTER_BYTES // per_sample))

    def responses(self, x: torch.Tensor, tally: PresentationTally | None = None) -> torch.Tensor:
        """Excitatory spike counts ``[B, N]`` (int64) of samples ``x``, learning off, in parallel; what they cost is
        added to ``tally`` when one is given."""
        intensity = self._intensities(x)
        w, theta, delays = self._kernel_arrays()
        size = self._chunk_size()
        counts = [self._scored_chunk(w, theta, delays, intensity[i:i + size], tally) for i in range(0, len(x), size)]
        return torch.from_numpy(np.concatenate(counts)) if counts else torch.zeros(0, self.neurons, dtype=torch.int64)

    def _scored_chunk(self, w: np.ndarray, theta: np.ndarray, delays: np.ndarray, intensity: torch.Tensor,
                      tally: PresentationTally | None) -> np.ndarray:
        """Excitatory counts ``[b, N]`` of a chunk of samples (``intensity [b, I]``): each sample shown until it
        answers (module docstring), every show added to ``tally``."""
        p = self.presentation
        counts = np.zeros((len(intensity), 2, self.neurons), np.int64)
        weak = np.arange(len(intensity))
        for show in range(p.max_presentations):
            rasters = self._rasters(intensity[weak], show)
            counts[weak] = run_numba_kernel(wta_kernels.present_batch, w, theta, delays, rasters, self.constants)
            if tally is not None:
                tally.add_shows(rasters, counts[weak])
            weak = weak[counts[weak, 0].sum(1) < p.min_spikes]
            if not len(weak):
                break
        if tally is not None:
            tally.add_responses(counts)
        return counts[:, 0]

    def learn(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Learn from the samples ``x`` with labels ``y [B]`` one after the other (module docstring); returns their
        class scores ``[B, K]`` under the labels each sample met."""
        intensity, labels = self._intensities(x), [int(v) for v in y]
        w, theta, delays = self._kernel_arrays()
        scores = []
        for sample, label in zip(intensity, labels, strict=True):
            counts = torch.from_numpy(self._learn_one(w, theta, delays, sample))
            scores.append(self.class_scores(counts[None])[0])
            self._remember(counts, label)
        return (torch.stack(scores) if scores else torch.zeros(0, self.classes)).to(x.device)

    def _learn_one(self, w: np.ndarray, theta: np.ndarray, delays: np.ndarray, intensity: torch.Tensor) -> np.ndarray:
        """Present ``intensity [I]`` with learning on until enough spikes answer, ``W``'s columns normalised before
        each show (as the authors' code does, repeats included)."""
        p, c = self.presentation, self.constants
        rest_decay = math.exp(-p.rest_ms / c.tau_theta)
        for show in range(p.max_presentations):
            wta_kernels.normalise_columns(w, p.weight_sum)
            counts = wta_kernels.present(w, theta, delays, self._rasters(intensity[None], show)[0], True, c)[0]
            theta *= rest_decay
            if counts.sum() >= p.min_spikes:
                break
        return counts

    def _remember(self, counts: torch.Tensor, label: int) -> None:
        """Add ``counts [N]`` to the block's sums of class ``label``; label the neurons when the block is full."""
        self.block_sums[1, label] += counts.to(torch.float64)
        self.block_samples[1, label] += 1
        self.learned += 1
        if int(self.learned) % self.presentation.label_window == 0:
            self._label_from(self.block_sums[1], self.block_samples[1])
            self.block_sums[0], self.block_samples[0] = self.block_sums[1], self.block_samples[1]
            self.block_sums[1], self.block_samples[1] = 0.0, 0

    def label_by_responses(self, batches) -> None:
        """Label every neuron by its mean responses, learning off, to the samples of ``batches`` (``(x, y)`` pairs):
        the paper's labelling, one presentation of the training set with thresholds fixed."""
        sums = torch.zeros(self.classes, self.neurons, dtype=torch.float64)
        samples = torch.zeros(self.classes, dtype=torch.int64)
        with torch.no_grad():
            for x, y in batches:
                y = y.cpu()
                sums.index_add_(0, y, self.responses(x).to(torch.float64))
                samples += torch.bincount(y, minlength=self.classes)
        if int(samples.sum()):
            self._label_from(sums, samples)

    def assign_labels(self) -> None:
        """Label the neurons from the block being filled together with the one before it (module docstring);
        nothing to do right after a full block (labelled then) or before any sample."""
        if int(self.block_samples[1].sum()):
            self._label_from(self.block_sums.sum(0), self.block_samples.sum(0))

    def _label_from(self, sums: torch.Tensor, samples: torch.Tensor) -> None:
        """Every neuron takes the class of its highest mean response ``sums [K, N] / samples [K]`` (ties: the lower
        class; -1 where it never fired)."""
        best, cls = (sums / samples.clamp(min=1)[:, None]).max(dim=0)
        self.assignments.copy_(torch.where(best > 0, cls, torch.full_like(cls, -1)))

    def class_scores(self, counts: torch.Tensor) -> torch.Tensor:
        """``[B, K]`` float32: per class, the mean count (of ``counts [B, N]``) over the neurons labelled with it."""
        votes = torch.zeros(self.classes, self.neurons, dtype=torch.float32)
        labelled = self.assignments >= 0
        votes[self.assignments[labelled], labelled.nonzero().flatten()] = 1.0
        per_class = votes.sum(1).clamp(min=1.0)
        return counts.to(torch.float32) @ votes.T / per_class

    def _intensities(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as ``[B, I]`` float64 intensities on the CPU; a one-line error for another input size or for
        intensities outside [0, 1]."""
        flat = x.detach().reshape(len(x), -1).to("cpu", torch.float64)
        if flat.shape[1] != self.inputs:
            raise ConfigError(f"wta_stdp: a sample has {flat.shape[1]} inputs, the network {self.inputs}")
        if len(flat) and not (flat.min() >= 0 and flat.max() <= 1):
            raise ConfigError("wta_stdp reads intensities in [0, 1] as Poisson rates: got values from "
                              f"{float(flat.min()):g} to {float(flat.max()):g} (data.normalize must be false)")
        return flat

    def _rasters(self, intensity: torch.Tensor, show: int) -> np.ndarray:
        """Poisson rasters ``[b, S, I]`` uint8 of ``intensity [b, I]`` at show ``show`` (0-based): a spike per step
        with probability ``intensity * (rate_max + show * rate_step) * dt / 1000`` (``wta_kernels.poisson_rasters``,
        one seed per sample from torch's global generator)."""
        p = self.presentation
        rate = p.rate_max + show * p.rate_step
        probability = (intensity * (rate * self.constants.dt / 1000.0)).clamp(max=1.0).to(torch.float64)
        seeds = torch.randint(0, 2**63 - 1, (len(intensity),), dtype=torch.int64).numpy().view(np.uint64)
        return run_numba_kernel(wta_kernels.poisson_rasters, probability.numpy(), p.steps, seeds)

    def _kernel_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``W``, ``theta`` and ``D`` as numpy arrays sharing the buffers' memory (the kernels update the first two
        in place)."""
        return self.weight.numpy(), self.theta.numpy(), self.delays.numpy()
