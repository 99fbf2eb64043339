"""Robustness perturbations: weight noise at an SNR, spike deletion (rate), spike-time jitter (TTFS).

- Weight noise (zhou2021 Fig. 3): per synaptic layer, ``w' = w + n``, ``n ~ N(0, sigma^2)`` with
  ``sigma^2 = mean(w^2) / 10^(SNR/10)``, so ``10 log10(mean(w^2) / E[n^2]) = SNR`` dB.
- Spike deletion (rate nets): every spike of the input and of every spiking layer is dropped with
  probability ``p``: ``s' = s * m``, ``m ~ Bernoulli(1 - p)``; a spike of any value (binary, signed,
  threshold-valued ``th_c`` as converted nets with ``spike_value: threshold`` emit) is one event. The encoder's
  output is read by the activity recorder's rule (``layers.activity_recorder.encoder_output_kind``): spikes when
  every entry is 0 or +-m_c, one magnitude per index c of axis 1 (``is_spike_valued``: binary, signed, a converted
  net's weighted Poisson spikes ``+-input_scale``); event frames of counts (``FrameEncoder``, whole numbers >= 0, a
  count of ``k`` being ``k`` input events as the activity recorder counts them) lose each event alike:
  ``k' ~ Binomial(k, 1 - p)``; analog direct input is left as it is.
- Spike-time jitter (TTFS nets): every finite spike time of the input, of every TTFS neuron layer and of every
  average pool's neurons (zhou2021: one neuron per window, firing its own spike, a layer of ``analyze``'s) becomes
  ``t' = t + sigma * e`` (absolute) or ``t (1 + sigma * e)`` (relative, zhou2021's "jitter %"), ``e ~ N(0, 1)``;
  ``+inf`` (no spike) stays ``+inf``. Times are not clamped (closed-form output times may be negative). A max pool
  relays the earliest input spike, already jittered: it is left as it is.
Deletion and jitter are forward hooks that replace the module outputs while the context is active.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from deepspike.analysis.quantize import weighted_modules
from deepspike.core.errors import ConfigError
from deepspike.layers.activity_recorder import emits_counts, encoder_output_kind
from deepspike.layers.neuron_kinds import is_ttfs_neuron_layer, is_ttfs_pool_neurons


@torch.no_grad()
def add_weight_noise(model: nn.Module, snr_db: float, generator: torch.Generator | None = None) -> nn.Module:
    """A copy of ``model`` with Gaussian noise at ``snr_db`` added to every synaptic weight (module doc).

    ``sigma = rms(w) 10^(-SNR/20)`` is worked out in float64, so a large SNR is (almost) no noise (4000 dB was an
    OverflowError in ``10.0 ** 400``); noise that makes a weight infinite in float32 (an SNR far below 0 dB, e.g.
    -1000, silently gave infinite weights) is a one-line ``ConfigError``."""
    model = copy.deepcopy(model)
    for name, m in weighted_modules(model):
        w = m.weight
        power = w.detach().double().pow(2).mean()  # mean(w^2)
        ratio = torch.tensor(10.0, dtype=torch.float64).pow(-snr_db / 20.0)  # 10^(-SNR/20); inf, never an error
        sigma = float(power.sqrt() * ratio) if power > 0 else 0.0
        noise = torch.randn(w.shape, generator=generator, dtype=w.dtype).to(w.device)
        noisy = w + sigma * noise
        if bool(torch.isinf(noisy).any()):
            raise ConfigError(f"weight noise at SNR {snr_db} dB (--snr) overflows float32 in layer {name!r} (sigma "
                              f"{sigma:.3g} against an rms weight of {float(power.sqrt()):.3g}); give a larger SNR")
        w.copy_(noisy)
    return model


class _OutputHooks:
    """Base: a context manager hooking ``targets(model)`` and replacing each one's output by
    ``perturb(output, module)``."""

    def __init__(self, model: nn.Module, generator: torch.Generator | None = None) -> None:
        self.model, self.generator, self._handles = model, generator, []

    def targets(self) -> list[nn.Module]:
        raise NotImplementedError

    def perturb(self, x: torch.Tensor, module: nn.Module) -> torch.Tensor:
        raise NotImplementedError

    def __enter__(self):
        def hook(module, args, output):
            return self.perturb(output, module)

        self._handles = [m.register_forward_hook(hook) for m in self.targets()]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _encoder(self) -> list[nn.Module]:
        encoder = getattr(self.model, "encoder", None)
        return [encoder] if isinstance(encoder, nn.Module) else []


class SpikeDeletion(_OutputHooks):
    """Drop each spike (input encoder and every ``is_spiking_neuron`` module) with probability ``p``."""

    def __init__(self, model: nn.Module, p: float, generator: torch.Generator | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"spike deletion probability must be in [0, 1], got {p}")
        super().__init__(model, generator)
        self.p = p

    def targets(self) -> list[nn.Module]:
        spiking = [m for m in self.model.modules() if getattr(type(m), "is_spiking_neuron", False)]
        return self._encoder() + spiking

    def perturb(self, x: torch.Tensor, module: nn.Module) -> torch.Tensor:
        """``x * m``, ``m ~ Bernoulli(1 - p)`` of ``x``'s shape; a spiking layer's output is spikes whatever their
        value, the encoder's when ``encoder_output_kind`` says so (the recorder's rule: one magnitude per index of
        axis 1; one magnitude overall was asked here, so spikes the recorder counted were never deleted); event-count
        frames ``k`` become ``Binomial(k, 1 - p)``, and so do a multi-spike neuron's counts (``emits_counts``: a count
        of ``k`` is ``k`` spikes, each dropped on its own); other encoder output is analog input, returned as it is."""
        kind = "spikes" if getattr(type(module), "is_spiking_neuron", False) else encoder_output_kind(module, x)
        if kind == "counts" or emits_counts(module):
            kept = torch.binomial(x.detach().cpu().float(), torch.full(x.shape, 1.0 - self.p),
                                  generator=self.generator)
            return kept.to(x.device, x.dtype)
        if kind != "spikes":
            return x  # analog input (direct encoding): nothing to delete
        keep = torch.rand(x.shape, generator=self.generator).to(x.device) >= self.p
        return x * keep.to(x.dtype)


class SpikeJitter(_OutputHooks):
    """Jitter every finite spike time of the input (encoder), of every TTFS neuron layer and of every TTFS average
    pool's neurons (``is_ttfs_pool_neurons``) by ``sigma``."""

    def __init__(
        self, model: nn.Module, sigma: float, relative: bool = False, generator: torch.Generator | None = None
    ) -> None:
        if not sigma >= 0:
            raise ConfigError(f"jitter sigma must be >= 0, got {sigma}")
        super().__init__(model, generator)
        self.sigma, self.relative = sigma, relative

    def targets(self) -> list[nn.Module]:
        fire = [m for m in self.model.modules() if is_ttfs_neuron_layer(m) or is_ttfs_pool_neurons(m)]
        return self._encoder() + fire

    def perturb(self, t: torch.Tensor, module: nn.Module) -> torch.Tensor:
        return jitter_times(t, self.sigma, self.relative, self.generator)


def jitter_times(
    t: torch.Tensor, sigma: float, relative: bool = False, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``t' = t + sigma e`` or ``t (1 + sigma e)`` (relative) for finite ``t``, ``e ~ N(0, 1)``; inf stays.

    A finite time moved out of ``t``'s float range is a one-line ``ConfigError`` naming ``--jitter``: the relative
    jitter multiplies every layer's times again, so a huge sigma (1e16 on a two-layer net) gave a ``-inf`` time that
    the next TTFS layer blamed on the data ("spike times contain NaN or -inf") and a ``+inf`` one read as no spike."""
    e = torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device)
    finite = torch.isfinite(t)
    base = torch.where(finite, t, torch.zeros_like(t))
    moved = base * (1.0 + sigma * e) if relative else base + sigma * e
    if bool((finite & ~torch.isfinite(moved)).any()):
        kind = "relative " if relative else ""
        raise ConfigError(f"{kind}spike-time jitter sigma={sigma!r} (--jitter) moves a spike time out of {t.dtype}'s "
                          f"range (|t| <= {torch.finfo(t.dtype).max:.4g}); give a smaller jitter")
    return torch.where(finite, moved, t)
