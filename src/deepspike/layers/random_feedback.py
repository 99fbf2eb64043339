"""Fixed random feedback matrices: the output error reaches the hidden neurons through ``B``, not ``W^T``.

Random e-prop (Bellec et al., "A solution to the learning dilemma for recurrent networks of spiking neurons",
Nat. Commun. 11:3625, 2020) sends the output errors to each hidden neuron through fixed random weights
``B_jk`` instead of the readout's own ``W_kj``: no synapse has to know another's weight. Feedback alignment
(Lillicrap et al., Nat. Commun. 7:13276, 2016) does the same at every layer of a deeper net, and so do we: every
linear or convolutional layer run with presynaptic traces (``layers.time_distributed``) passes the gradient to
its input as ``dL/dx = B^T g`` (a convolution: the transposed convolution with ``B``), its weight gradient
unchanged. In a net with one hidden layer that is Bellec et al.'s rule exactly; the first layer's ``B`` is never
used (the input needs no gradient).

``B`` has the weight's shape and the distribution of torch's default initialisation of that layer,
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (our choice; the papers draw Gaussians of a similar scale), drawn from a
generator seeded by the run's seed and the layer's position, so a resumed run draws the same matrices. It is a
non-persistent buffer ``feedback`` of the ``TimeDistributed`` wrapper: it moves with the net, and neither
checkpoints nor exports see it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepspike.layers.time_distributed import TimeDistributed
from deepspike.layers.trace_gradient import TRACE_LAYERS


def feedback_matrix(layer: nn.Module, generator: torch.Generator) -> torch.Tensor:
    """A fixed random ``B`` of ``layer.weight``'s shape, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, on its device."""
    weight = layer.weight
    fan_in = weight[0].numel()
    bound = 1.0 / math.sqrt(fan_in)
    b = torch.rand(weight.shape, generator=generator, dtype=torch.float64) * (2 * bound) - bound
    return b.to(device=weight.device, dtype=weight.dtype)


def attach_random_feedback(net: nn.Module, seed: int) -> int:
    """Give every ``TimeDistributed`` linear or convolutional layer of ``net`` its fixed feedback matrix (module
    docstring), the i-th such layer drawing from a generator seeded with ``seed * 1000003 + i`` (mod 2**63);
    returns how many."""
    layers = [m for m in net.modules() if isinstance(m, TimeDistributed) and isinstance(m.module, TRACE_LAYERS)]
    for i, wrapper in enumerate(layers):
        generator = torch.Generator().manual_seed((seed * 1_000_003 + i) % 2**63)
        wrapper.register_buffer("feedback", feedback_matrix(wrapper.module, generator), persistent=False)
    return len(layers)
