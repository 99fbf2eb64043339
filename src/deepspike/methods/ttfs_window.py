"""Method ``ttfs_window``: single-spike TTFS networks of windowed ReL-PSP neurons, exact images of ReLU nets.

Every layer fires once, in its own time window, by the closed form of ``ttfs.window`` (after Stanojevic et
al., Nat. Commun. 2024): neuron ``j`` of layer ``n`` fires at offset ``T_n - a_j / alpha`` into its window,
with ``a_j = sum_i w_ji x_i + b_j`` and ``x_i = T_{n-1} - tau_i`` what layer ``n - 1``'s spikes code; no
spike for ``a_j <= 0``. The network computes ``clip(ReLU(a) / alpha, 0, T_n)`` layer by layer, so a trained
ANN maps onto it exactly (``deepspike convert RUN --to ttfs``), and training it uses the exact spike-time
gradients ``d tau_j / d a_j = -1 / alpha`` (0 where the window clips or the neuron is silent).

Options: ``alpha`` (ramp slope); ``margin`` (a window is ``margin`` x the largest value of its layer on the
first training batch when no calibration set it); ``init_from``: an ``ann`` run (weights mapped, batch-norms
folded) or a ``ttfs_window`` run, e.g. a conversion (weights and windows); ``loss``: ``ce`` or ``mse`` on the
output potentials; ``latency_cost``: weight of ``mean_b relu(T_out - max_k z_bk / alpha) / T_out``, the
first output spike's offset in its window (rewards early decisions); ``spike_cost``: weight of the mean coded
value per neuron relative to its window (an L1 surrogate of the spike count: values at 0 are silent neurons);
``spike_cost_cap``: when set (``c`` in (0, 1], at least float32's smallest normal number), ``spike_cost`` weighs
the capped-L1 surrogate of the spikes per neuron instead, ``sum_j min(x_j / (c T_j), 1) / N`` over all ``N`` hidden
neurons (it equals the fraction that fires as ``c -> 0``): only neurons coding less than ``c`` of their window are
pushed to silence, the strongly active ones are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import FLOAT32_MAX, check_ranges, check_unused
from deepspike.methods.base import INIT_FROM_EXPECTED, Method
from deepspike.methods.losses import LOSSES, classification_loss
from deepspike.methods.registry import register_method
from deepspike.methods.window_measures import window_measures
from deepspike.methods.window_network import WindowNetwork, build_window_network, windowed_modules
from deepspike.models.spec import Architecture


@dataclass
class TtfsWindowOptions:
    alpha: float = 1.0
    margin: float = 1.0
    init_from: str | None = None
    loss: str = "ce"
    latency_cost: float = 0.0
    spike_cost: float = 0.0
    spike_cost_cap: float | None = None
    measures: bool = True
    measure_batches: int | None = 20

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"bad value {self.loss!r} for method.loss; valid: {', '.join(LOSSES)}")
        tiny = torch.finfo(torch.float32).tiny  # a normal float32 alpha: a subnormal one flushed to 0 (0 / 0 = NaN)
        checks = ((tiny <= self.alpha <= FLOAT32_MAX, "alpha", f"a number in float32's range ({tiny:.4g} to "
                   f"{FLOAT32_MAX:.4g})"),
                  (0 < self.margin <= FLOAT32_MAX, "margin", f"> 0 and at most {FLOAT32_MAX:.4g}"),
                  (0 <= self.latency_cost <= FLOAT32_MAX, "latency_cost", f">= 0 and at most {FLOAT32_MAX:.4g}"),
                  (0 <= self.spike_cost <= FLOAT32_MAX, "spike_cost", f">= 0 and at most {FLOAT32_MAX:.4g}"),
                  (self.spike_cost_cap is None or tiny <= self.spike_cost_cap <= 1, "spike_cost_cap",
                   f"in [{tiny:.4g}, 1] (x / cap in float32: a subnormal cap is 0 there) or null"),
                  (self.measure_batches is None or self.measure_batches >= 1, "measure_batches", ">= 1 or null"),
                  (self.init_from is None or self.init_from.strip() != "", "init_from", INIT_FROM_EXPECTED))
        check_ranges(self, checks)


def check_exact_alpha(alpha: float, setting: str) -> None:
    """A one-line ``ConfigError`` unless ``alpha`` is 1: a neuron codes ``x = ReLU(a) / alpha``, so with the ANN's
    weights unchanged the next layer's potential is ``W a / alpha + b`` instead of the ANN's ``W a + b`` (the bias
    mis-scaled at every layer, the logits shrunk by alpha per layer). ``setting`` names it in the message."""
    if alpha != 1.0:
        raise ConfigError(f"{setting}: a ReLU ANN maps exactly onto TTFS neurons with alpha = 1 only (they code "
                          f"ReLU(a) / alpha, which the ANN's weights do not undo); convert at alpha 1")


def spike_surrogate(values: list[torch.Tensor], cap: float | None) -> torch.Tensor:
    """The spike-count surrogate of ``values`` (per layer ``[B, ...]``, each value relative to its window, in
    [0, 1]): without ``cap`` the mean over layers of each layer's mean value (L1); with ``cap`` the capped L1
    ``sum_j min(x_j / cap, 1) / N`` over all neurons of all layers, per sample (-> spikes per neuron as cap -> 0)."""
    if cap is None:
        return torch.stack([v.mean() for v in values]).mean()
    batch = values[0].shape[0]
    capped = sum((v / cap).clamp(max=1.0).sum() for v in values)
    return capped / (batch * sum(v[0].numel() for v in values))


@register_method
class TtfsWindowMethod(Method):
    """ReLU-exact single-spike TTFS nets (windowed ReL-PSP neurons); conversion target and fine-tuning."""

    name = "ttfs_window"
    Options = TtfsWindowOptions
    description = "single-spike TTFS, windowed ReL-PSP neurons: exact image of a ReLU net (Stanojevic 2024)"
    init_sources = ("ann", "ttfs_window")

    def build(self, arch: Architecture) -> nn.Module:
        o = self.options
        net = build_window_network(arch, o.alpha)
        for m in windowed_modules(net):
            m.margin = o.margin
        for m in net.neuron_layers():
            m.keep_values = o.spike_cost > 0
        net.readout.keep_values = o.latency_cost > 0
        return net

    def init_from_run(self, model: nn.Module, method_name: str, source: nn.Module) -> None:
        """An ``ann`` run (ReLU): its parameters and batch-norm statistics, module for module (the windows, which
        the ANN lacks, then come from calibration or the first batch; the start is the ANN's exact image only at
        ``alpha`` 1, see ``check_exact_alpha``, and training goes on from it at any alpha); a ``ttfs_window`` run:
        everything."""
        state = source.state_dict()
        if method_name == "ann":
            state = {f"body.{key}": value for key, value in state.items()}  # the ANN is the bare body
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as e:  # shapes differ
            detail = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
            raise ConfigError(f"method.init_from: not the same model ({detail})") from None
        if unexpected or any(not (method_name == "ann" and key.endswith("window")) for key in missing):
            raise ConfigError(f"method.init_from: the {method_name} net does not map onto {self.name}: "
                              f"{', '.join(unexpected or missing)[:200]} (a ReLU ANN of the same model is needed)")

    def check_options_used(self) -> None:
        """``method.spike_cost_cap`` without a ``spike_cost`` or ``measure_batches`` with ``measures: false``: settings
        the run would ignore (``core.options.check_unused``); ``check_new_run`` (the base's) calls it."""
        o = self.options
        check_unused(o, ((("spike_cost_cap",), o.spike_cost > 0, "method.spike_cost is above 0"),
                         (("measure_batches",), o.measures, "method.measures=true")))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return classification_loss(self.options.loss, output, target)

    def class_scores(self, output: torch.Tensor) -> torch.Tensor:
        """The decoded output values ``[B, K]`` the loss takes as logits."""
        return output

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        """``latency_cost`` x the decision offset and ``spike_cost`` x the mean coded value (module docstring)."""
        o = self.options
        terms = []
        if o.latency_cost and model.readout.last_values is not None:
            window = model.readout.window
            first = (window - model.readout.last_values.max(dim=1).values / o.alpha).clamp(min=0) / window
            terms.append(o.latency_cost * first.mean())
        if o.spike_cost:
            values = [m.last_values / m.window for m in model.neuron_layers() if m.last_values is not None]
            if values:
                terms.append(o.spike_cost * spike_surrogate(values, o.spike_cost_cap))
        return sum(terms) if terms else None

    def epoch_measures(self, model: WindowNetwork, batches) -> dict[str, float]:
        """Spikes per neuron, input spikes, latency, synaptic operations (``methods.window_measures``)."""
        if not self.options.measures:
            return {}
        return window_measures(model, batches, self.options.measure_batches)
