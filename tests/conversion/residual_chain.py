"""A hand-made residual chain for threshold-balancing tests: every activation is known by hand."""

import torch

from deepspike.methods import get_method
from deepspike.methods.weight_transfer import copy_ann_weights
from deepspike.models.spec import Architecture, Flatten, Linear, Residual


def residual_chain(options: dict):
    """``(ann, snn, arch)``: one pixel -> stem Linear (w = 2) -> residual unit (body Linear w = 3, identity shortcut)
    -> output Linear (w = 0.5), the ANN's weights copied into a net converted with ``options``. For the pixel 1
    the ANN's activations are stem 2, body 6, junction 8, output 4."""
    arch = Architecture("res", (Flatten(), Linear(1), Residual((Linear(1),)), Linear(1, act=False)), (1, 1, 1), 1)
    ann = get_method("ann").build(arch)
    with torch.no_grad():
        ann[1].weight.fill_(2.0)
        ann[3].body[0].weight.fill_(3.0)
        ann[4].weight.fill_(0.5)
    snn = get_method("converted", options).build(arch)
    copy_ann_weights(ann, snn)
    return ann, snn, arch
