"""wu2019's voting output layer: a population of spiking neurons per class, scored by mean firing rate."""

from __future__ import annotations

import torch
from torch import nn

from deepspike.coding.decoders import vote
from deepspike.layers.readout import step_mean


class VotingReadout(nn.Module):
    """``score_k = (1/G) sum_{g} (1/T) sum_t o_t[k G + g]`` (wu2019 eq. 11 ``(1/T) sum_t M o_t``).

    The output layer has ``K * G`` spiking neurons; class ``k`` owns the contiguous group
    ``k G .. (k+1) G - 1`` (the paper assigns labels to neurons at random; a fixed contiguous assignment
    is the same up to a permutation of the output weights). x: currents ``[T, B, K*G]`` -> ``[B, K]``.
    """

    def __init__(self, neuron: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.neuron = neuron
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rates = step_mean(self.neuron(x))  # [T, B, K*G] -> [B, K*G] (float32 under bfloat16 autocast)
        return vote(rates, self.num_classes)  # [B, K*G] -> [B, K]

    def steps(self, x: torch.Tensor) -> torch.Tensor:
        """``o_t[k] = (1/G) sum_g s_t[k G + g]`` ``[T, B, K]``: each step's vote (their mean is ``forward``)."""
        return vote(self.neuron(x), self.num_classes)  # [T, B, K*G] -> [T, B, K]

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}"
