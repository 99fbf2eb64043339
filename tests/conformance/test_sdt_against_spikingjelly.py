"""The Spike-driven Transformer against SpikingJelly 2.0's ``model.SpikeDrivenTransformer`` (Yao et al., NeurIPS 2023;
run by ``make test-nir``, whose venv has SpikingJelly): the whole net with the same weights, the same neurons
(``spikingjelly_nets``), the same logits and the same gradients for every weight, and its parameters at the paper's
CIFAR-10 size.

Its SDSA keeps its attention neuron's threshold of 0.5 against the others' 1, as our ``Attention.attention_threshold``
does. Its convolutions before a batch-norm carry a bias that ours leave out (the batch-norm's shift makes it
redundant): those are zeroed for the comparison, and they are all the parameters it has beyond ours.
"""

import pytest
import torch
from torch import nn

from conformance.conftest import require
from conformance.spikingjelly_nets import (
    assert_same_logits_and_gradients,
    firing_batch_norms,
    spikingjelly_neuron,
    stbp_like,
)
from deepspike.models.registry import create_architecture

T, B = 3, 4
SIZES = {"dim": 32, "depth": 2, "heads": 4, "mlp_ratio": 2.0, "pooling": "0101"}


def _theirs(threshold: float, neuron: dict | None = None):
    from spikingjelly.activation_based.model.spike_driven_transformer import SpikeDrivenTransformer

    torch.manual_seed(0)
    net = SpikeDrivenTransformer(T=T, in_channels=3, num_classes=5, embed_dims=SIZES["dim"], num_heads=SIZES["heads"],
                                 depths=SIZES["depth"], mlp_ratio=SIZES["mlp_ratio"], pooling_stat=SIZES["pooling"],
                                 **(neuron if neuron is not None else spikingjelly_neuron(threshold))).double()
    for block in net.blocks:  # the uniform v_threshold also reached SDSA's attention neuron: back to 0.5 of it
        block.attn.attn_lif.v_threshold = threshold * 0.5
    firing_batch_norms(net, threshold)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d) and module.bias is not None:
                module.bias.zero_()
    return net


def _ours(threshold: float):
    return stbp_like(create_architecture("sdt", 5, (3, 16, 16), 1.0, **SIZES), T, threshold)


@pytest.mark.parametrize("threshold", [1.0, 2.5])
def test_the_spike_driven_transformer_equals_spikingjellys(threshold):
    """At threshold 1 SDSA's attention neuron (threshold 0.5) fires on every channel whose count of key-value
    coincidences is at least 1, whatever its leak; at 2.5 (1.25) a single coincidence fires only on top of the
    leaked charge of one before, so the leak and the threshold fraction are both compared."""
    require("spikingjelly", "make test-nir installs SpikingJelly")
    torch.manual_seed(1)
    assert_same_logits_and_gradients(_ours(threshold), _theirs(threshold),
                                     torch.rand(B, 3, 16, 16, dtype=torch.float64) * 2)


def test_spikingjellys_default_neuron_is_ours_at_twice_the_threshold_and_half_the_slope():
    """The paper's code and SpikingJelly's defaults: ``LIFNode(tau=2)`` with ``decay_input=True``, threshold 1,
    ``Sigmoid(alpha=4)`` (``configs/stbp_fmnist_sdt.yaml`` trains with ours at threshold 2 and alpha 2)."""
    require("spikingjelly", "make test-nir installs SpikingJelly")
    theirs = _theirs(1.0, {"tau": 2.0, "detach_reset": True})
    firing_batch_norms(theirs, 2.0)  # the halved input needs twice the drive to fire as often
    torch.manual_seed(1)
    ours = stbp_like(create_architecture("sdt", 5, (3, 16, 16), 1.0, **SIZES), T, 2.0, alpha=2.0)
    assert_same_logits_and_gradients(ours, theirs, torch.rand(B, 3, 16, 16, dtype=torch.float64) * 2)


def test_the_cifar_net_has_spikingjellys_parameters_but_the_redundant_biases():
    """The defaults (Spike-driven Transformer-2-512, pooling "0011", CIFAR-10) against SpikingJelly's model of the same
    configuration: 10,234,378 parameters, 7,104 of them biases of convolutions before a batch-norm; ours 10,227,274."""
    require("spikingjelly", "make test-nir installs SpikingJelly")
    from spikingjelly.activation_based.model.spike_driven_transformer import SpikeDrivenTransformer

    from deepspike.methods import create_model

    theirs = SpikeDrivenTransformer(T=4, in_channels=3, num_classes=10, embed_dims=512, num_heads=8, depths=2,
                                    mlp_ratio=4, pooling_stat="0011")
    ours = create_model("sdt", method="stbp", num_classes=10, norm="bn")
    redundant = sum(m.bias.numel() for m in theirs.modules() if isinstance(m, nn.Conv2d) and m.bias is not None)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters()) - redundant
    assert sorted(p.shape for p in ours.parameters() if p.dim() > 1) == sorted(
        p.shape for p in theirs.parameters() if p.dim() > 1)
