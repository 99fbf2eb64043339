"""Xylo's integer dynamics as XyloSim runs them (SynSense's bit-exact C++ model of the chip: ``XyloLayer::evolve``,
``XyloIAFNeuron::evolve``), on a mapped config (the int spec of Rockpool's mapper and ``channel_quantize``:
``weights_in [I, H(, 1)]``, ``weights_rec [H, H(, 1)]``, ``weights_out [H, O]`` as ``[source, target]``,
``threshold``, ``bias``, ``dash_mem``, ``dash_syn`` per hidden neuron and the same with ``_out`` per output neuron),
vectorised over a batch. Each step ``t``, in this order:

1. input: each input channel's count, clipped to 15 (``MAX_NUM_INP_SPIKES``), adds ``count * w_in`` to the hidden
   neurons' synaptic currents ``i``;
2. hidden spikes of step ``t - 1`` (at most 31 a neuron) add ``n * w_rec`` to the hidden currents and ``n * w_out``
   to the output currents: a spike reaches the next layer (and a recurrent layer itself) one step later, so an
   ``L``-layer net's outputs see the input ``L - 1`` steps late;
3. each hidden neuron, then each output neuron: ``i <- i - d(i, dash_syn)``,
   ``v <- sat(v + sat(sat(-d(v, dash_mem) + i) + bias))``, then ``n = min(floor(v / th), max)`` spikes
   (``v >= th``; 31 hidden, 1 output) and ``v <- v - n th``.

``d(x, dash) = x >> dash`` (an arithmetic shift: floor), or ``sign(x)`` where that is 0: a decay removes at least 1
a step, and ``dash = 0`` clears the value. ``sat`` clips to int16 (``safe_add``); each spike's weight is added with
saturation one at a time, in source order (computed in one sum wherever no partial sum can leave int16, where the
two agree). The input counts are taken as uint8 counts (floor, at least 0) before the clip.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deepspike.coding.decoders import vote
from deepspike.layers.voting import VotingReadout

INT16_MIN, INT16_MAX = -(2 ** 15), 2 ** 15 - 1
MAX_INPUT_SPIKES, MAX_HIDDEN_SPIKES, MAX_OUTPUT_SPIKES = 15, 31, 1  # XyloSim's MAX_NUM_{INP_,,OUT_}SPIKES


def int_matrix(a) -> np.ndarray:
    """A quantised weight matrix without Rockpool's trailing synapse axis (``[N, M, 1] -> [N, M]``)."""
    a = np.asarray(a)
    return a[..., 0] if a.ndim == 3 else a


def chip_config(q: dict) -> dict[str, torch.Tensor]:
    """The int spec ``q`` as int64 tensors: ``w_in, w_rec, w_out`` ``[source, target]``; per neuron ``th, bias,
    dash_mem, dash_syn`` (hidden) and ``th_out, ...`` (outputs). Only the first synapse: the second's weights (a
    trailing axis of 2) must be 0, as in every net deepspike maps."""
    for key in ("weights_in", "weights_rec"):
        a = np.asarray(q[key])
        if a.ndim == 3 and np.any(a[..., 1:]):
            raise ValueError(f"xylo: {key} uses a second synapse, which this simulation does not run")
    cfg = {k: torch.as_tensor(int_matrix(q[key]), dtype=torch.int64)
           for k, key in (("w_in", "weights_in"), ("w_rec", "weights_rec"), ("w_out", "weights_out"))}
    for sfx in ("", "_out"):
        n = len(np.ravel(q["threshold" + sfx]))
        cfg["th" + sfx] = torch.as_tensor(np.ravel(q["threshold" + sfx]), dtype=torch.int64)
        cfg["bias" + sfx] = torch.as_tensor(np.ravel(q.get("bias" + sfx, np.zeros(n))), dtype=torch.int64)
        cfg["dash_mem" + sfx] = torch.as_tensor(np.ravel(q["dash_mem" + sfx]), dtype=torch.int64)
        cfg["dash_syn" + sfx] = torch.as_tensor(np.asarray(q["dash_syn" + sfx]).reshape(n, -1)[:, 0], dtype=torch.int64)
    return cfg


def bitshift_decay(x: torch.Tensor, dash: torch.Tensor) -> torch.Tensor:
    """XyloSim's ``decay``: ``x >> dash`` (floor), ``sign(x)`` where that is 0 (int64 tensors)."""
    dv = torch.bitwise_right_shift(x, dash)
    return torch.where(dv == 0, torch.sign(x), dv)


def _sat(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(INT16_MIN, INT16_MAX)


def deliver(i: torch.Tensor, counts: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``i [B, N]`` after ``counts [B, S]`` spikes of each source through ``w [S, N]``, saturating after each spike
    in source order (``deliver_spikes``); one sum where no partial sum can leave int16."""
    total = i + counts @ w
    if bool((i.abs() + counts @ w.abs() <= INT16_MAX).all()):
        return total
    for s in range(w.shape[0]):  # one source's spikes add the same sign: clipping once equals clipping each
        i = _sat(i + counts[:, s:s + 1] * w[s])
    return i


def neuron_step(i, v, th, bias, dash_mem, dash_syn, max_spikes: int):
    """``XyloIAFNeuron::evolve`` on ``[B, N]`` currents and membranes: ``(i, v, spikes)`` (module docstring)."""
    i = i - bitshift_decay(i, dash_syn)
    dv = _sat(_sat(-bitshift_decay(v, dash_mem) + i) + bias)
    v = _sat(v + dv)
    n = torch.where(v >= th, torch.div(v, th.clamp(min=1), rounding_mode="floor").clamp(max=max_spikes), 0)
    n = torch.where((v >= th) & (th <= 0), max_spikes, n)  # XyloSim's loop spikes up to max when th <= 0
    return i, v - n * th, n


def xylo_simulate(cfg: dict[str, torch.Tensor], counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Input counts ``[T, B, I]`` through the chip (module docstring): hidden and output spike counts
    ``[T, B, H]``, ``[T, B, O]`` (int64)."""
    x = counts.floor().clamp(0, 255).to(torch.int64).clamp(max=MAX_INPUT_SPIKES)
    steps, batch = x.shape[:2]
    h, o = cfg["th"].numel(), cfg["th_out"].numel()
    i_h, v_h, s_h = (torch.zeros(batch, h, dtype=torch.int64) for _ in range(3))
    i_o, v_o = (torch.zeros(batch, o, dtype=torch.int64) for _ in range(2))
    hidden, out = [], []
    for t in range(steps):
        i_h = deliver(deliver(i_h, x[t], cfg["w_in"]), s_h, cfg["w_rec"])
        i_o = deliver(i_o, s_h, cfg["w_out"])
        i_h, v_h, s_h = neuron_step(i_h, v_h, cfg["th"], cfg["bias"], cfg["dash_mem"], cfg["dash_syn"],
                                    MAX_HIDDEN_SPIKES)
        i_o, v_o, s_o = neuron_step(i_o, v_o, cfg["th_out"], cfg["bias_out"], cfg["dash_mem_out"],
                                    cfg["dash_syn_out"], MAX_OUTPUT_SPIKES)
        hidden.append(s_h)
        out.append(s_o)
    return torch.stack(hidden), torch.stack(out)


class XyloChip(nn.Module):
    """The chip as a classifier: ``model``'s encoder at its ``eval_timesteps`` (an imported NIR net,
    ``takes_coded_input``, takes ``[T, B, ...]`` as it is), the input flattened to ``[T, B, I]`` counts,
    :func:`xylo_simulate`, and the output neurons' spike rates ``[B, O]`` (mean over T) as scores, averaged over
    each class's group of ``O / K`` neurons as the model's ``VotingReadout`` does (``[B, K]``); a tie goes to the
    lowest class under argmax, as no output spiking at all does."""

    def __init__(self, model: nn.Module, q: dict) -> None:
        super().__init__()
        coded = getattr(model, "takes_coded_input", False)
        self.encoder = None if coded else model.encoder
        self.steps = getattr(model, "eval_timesteps", None)
        self.cfg = chip_config(q)
        readout = getattr(model, "readout", None)
        self.classes = readout.num_classes if isinstance(readout, VotingReadout) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = x if self.encoder is None else self.encoder(x, self.steps)
        rates = xylo_simulate(self.cfg, inputs.flatten(2).cpu())[1].double().mean(0).to(x.device)
        return rates if self.classes is None else vote(rates, self.classes)
