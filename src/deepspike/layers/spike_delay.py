"""A layer's spikes reaching the next layer one step late, as on SynSense's Xylo.

Xylo (XyloSim's ``XyloLayer::evolve``, ``deploy.xylosim``) adds a hidden neuron's spikes of step ``t - 1`` to the
next layer's currents at step ``t``: each hidden layer costs one step. A net trained without that delay runs on the
chip with another timing than it was trained with. ``SpikeDelay`` puts it into the trained net: placed after a hidden
layer's neurons (``model.args.spike_delay: 1`` of ``mlp`` / ``rsnn``, method stbp), its spikes ``s [T, B, ...]``
(time first) reach the next layer as::

    out[0] = 0,   out[t] = s[t - 1]   (t = 1 .. T - 1)

a shift along time by one step, the last step's spikes dropped. A recurrent layer's own feedback ``V s_{t-1}``
(``layers.recurrent``) is one step late already, as on the chip: the delay sits on its feed-forward output only.
``deploy.xylo`` maps such a net without adding a second delay (the chip's own delay is the trained one), and NIR
export writes it as a ``Delay`` node of one step (``dt``) per element.

The layer reads earlier steps, so it needs the whole sequence at once (``whole_sequence``: checkpointed BPTT,
SLTT, OTTT, e-prop and streaming refuse a net holding it).
"""

from __future__ import annotations

import torch
from torch import nn


class SpikeDelay(nn.Module):
    """``s [T, B, ...] -> out [T, B, ...]`` with ``out[0] = 0`` and ``out[t] = s[t - 1]`` (module docstring)."""

    whole_sequence = True  # reads the step before: cannot run a step at a time without a carried state
    steps = 1  # the delay in steps (Xylo's: one per layer)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        if s.dim() < 2:
            raise ValueError(f"SpikeDelay takes time-first spikes [T, B, ...], got shape {list(s.shape)}")
        return torch.cat((torch.zeros_like(s[:1]), s[:-1]), dim=0)
