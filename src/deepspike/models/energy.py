"""Energy estimates from operation and spike counts, with named, cited presets.

``E = MACs * e_mac + ACs * e_ac + spikes * e_spike`` (picojoules per operation / spike). An ANN does its
dense MACs (``models.costs.count_macs``); an SNN does one AC per synapse reached by a spike (binary, signed or
threshold-valued: the spike's fixed size folds into the weight) and one MAC per synapse reached by an analog
value (direct input's pixels, the average of spikes over a pooling window), counted from the actual inputs by
``layers.activity_records`` (the one rule behind ``deepspike analyze``, ``compare`` and ``convert``), and, on
spike-priced hardware, pays per emitted neuron spike (input spikes excluded: the sensor makes them). A preset
prices only what its source reports; the rest is 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from deepspike.core.errors import ConfigError, unknown_choice


@dataclass(frozen=True)
class EnergyPreset:
    """Energy per operation in pJ: ``mac`` (multiply-accumulate), ``ac`` (accumulate), ``spike``."""

    name: str
    mac_pj: float = 0.0
    ac_pj: float = 0.0
    spike_pj: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        for key in ("mac_pj", "ac_pj", "spike_pj"):
            if not 0 <= getattr(self, key) < math.inf:
                raise ConfigError(
                    f"energy preset {self.name!r}: {key} must be a finite number >= 0, got {getattr(self, key)}"
                )


PRESETS: dict[str, EnergyPreset] = {}


def register_energy_preset(preset: EnergyPreset) -> EnergyPreset:
    """Add (or replace) a preset under ``preset.name``; returns it."""
    PRESETS[preset.name] = preset
    return preset


for _p in (
    EnergyPreset(
        "45nm_fp32",
        mac_pj=4.6,
        ac_pj=0.9,
        source="Horowitz 2014, 45 nm, 32-bit float MAC 4.6 pJ / AC 0.9 pJ (lee2020 section 5.4)",
    ),
    EnergyPreset(
        "45nm_int32",
        mac_pj=3.2,
        ac_pj=0.1,
        source="Horowitz 2014, 45 nm, 32-bit int MAC 3.2 pJ / AC 0.1 pJ (lee2020 section 5.4)",
    ),
    EnergyPreset(
        "zhou2021_neuron", spike_pj=10.0, source="zhou2021: < 10 pJ per spike, 65 nm neuron circuit"
    ),
    EnergyPreset(
        "truenorth", spike_pj=26.0, source="IBM TrueNorth, 26 pJ per spike (Merolla 2014; zhou2021)"
    ),
    EnergyPreset(
        "cao2015", spike_pj=45.0, source="neuromorphic circuit, 45 pJ per spike (Cao 2015; zhou2021)"
    ),
):
    register_energy_preset(_p)
BUILT_IN_PRESETS = frozenset(PRESETS)  # a user's preset may not replace one of these cited ones


def get_energy_preset(name: str) -> EnergyPreset:
    if name not in PRESETS:
        raise unknown_choice("energy preset", name, PRESETS)
    return PRESETS[name]


PRESET_NAME = re.compile(r"[A-Za-z0-9_.+-]+")
"""What a preset of one's own may be named: it is a table cell of ``report.md`` and a key of ``analysis.json``."""


def parse_energy_preset(text: str) -> EnergyPreset:
    """``"name:mac=4.6,ac=0.9,spike=0"`` -> a preset (a user's own numbers; missing keys are 0). A key given twice,
    a built-in preset's name, a name of other characters than ``PRESET_NAME``'s (a ``|`` or a line break split the
    report's energy table row) and a value that is not a finite number >= 0 are one-line errors."""
    name, _, body = text.partition(":")
    if name.strip() in BUILT_IN_PRESETS:
        raise ConfigError(f"bad energy preset {text!r}: {name.strip()!r} is a built-in preset; give yours another name")
    if name.strip() and not PRESET_NAME.fullmatch(name.strip()):
        raise ConfigError(f"bad energy preset {text!r}: name {name.strip()!r}; use letters, digits, '_', '.', '+' "
                          "and '-', e.g. mychip")
    values: dict[str, float] = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition("=")
        if key.strip() not in ("mac", "ac", "spike"):
            raise ConfigError(f"bad energy preset {text!r}: key {key!r}; valid: mac, ac, spike")
        if f"{key.strip()}_pj" in values:
            raise ConfigError(f"bad energy preset {text!r}: {key.strip()} given twice")
        try:
            values[f"{key.strip()}_pj"] = float(value)
        except ValueError:
            raise ConfigError(f"bad energy preset {text!r}: {value!r} is not a number") from None
    if not name.strip() or not values:
        raise ConfigError(f"bad energy preset {text!r}; expected NAME:mac=PJ,ac=PJ,spike=PJ")
    return EnergyPreset(name.strip(), source="user", **values)


def energy_pj(preset: EnergyPreset, macs: float = 0.0, acs: float = 0.0, spikes: float = 0.0) -> float:
    """``E = macs * e_mac + acs * e_ac + spikes * e_spike`` in pJ (``finite_energy``: a one-line error beyond the
    float range)."""
    return finite_energy(preset, macs * preset.mac_pj + acs * preset.ac_pj + spikes * preset.spike_pj)


def finite_energy(preset: EnergyPreset, pj: float) -> float:
    """``pj``, or a one-line ``ConfigError`` where a preset's prices (each finite, but as large as 1e308 pJ) made it
    infinite: ``--add-preset big:mac=1e308`` gave report.md cells 'inf' and 'nan' and null energies in silence."""
    if not math.isfinite(pj):
        raise ConfigError(f"energy preset {preset.name!r} prices an inference beyond the float range ({pj} pJ); give "
                          "prices in pJ per operation, e.g. mac=4.6,ac=0.9")
    return pj


def energy_table(ann_macs: float, snn: dict | None) -> dict[str, dict[str, float | None]]:
    """Per preset: ANN and SNN energy per inference (pJ) and their ratio ``ann_over_snn``.

    ``ann_pj = ann_macs e_mac``, ``snn_pj = macs e_mac + acs e_ac + spikes e_spike`` (``energy_pj``). ann_macs:
    dense MACs per sample; snn: a ``NetworkMonitor.summary()`` or any dict with ``macs_per_sample``,
    ``acs_per_sample`` (split by ``layers.activity_records``' rule) and ``neuron_spikes_per_sample`` (None for an
    ANN run; ``deepspike convert`` passes its per-T counts). A spike-only preset has no ANN price (None).
    Where ``snn`` also counts the neurons' own state updates (``update_macs_per_sample``, ``update_acs_per_sample``:
    ``neurons.update_cost``), ``snn_with_updates_pj = snn_pj + update_macs e_mac + update_acs e_ac`` and its ratio
    ``ann_over_snn_with_updates``; a spike-only preset's price of a spike already holds the neuron's circuit.
    """
    table = {}
    for name, p in PRESETS.items():
        ann = finite_energy(p, ann_macs * p.mac_pj) if p.mac_pj > 0 else None
        snn_e = with_updates = None
        if snn is not None:
            snn_e = energy_pj(p, snn["macs_per_sample"], snn["acs_per_sample"], snn["neuron_spikes_per_sample"])
        if snn_e is not None and snn.get("update_macs_per_sample") is not None:
            with_updates = finite_energy(p, snn_e + energy_pj(p, snn["update_macs_per_sample"],
                                                               snn["update_acs_per_sample"]))
        table[name] = {"ann_pj": ann, "snn_pj": snn_e, "ann_over_snn": _ratio(ann, snn_e),
                       "snn_with_updates_pj": with_updates, "ann_over_snn_with_updates": _ratio(ann, with_updates)}
    return table


def _ratio(ann: float | None, snn: float | None) -> float | None:
    """``ann / snn`` where both are known and ``snn`` is not 0."""
    return ann / snn if ann is not None and snn else None
