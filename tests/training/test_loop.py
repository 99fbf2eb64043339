"""``training.loop``: a training batch that leaves a batch-norm one value per channel is a one-line error that says
what to change, instead of torch's ValueError (a traceback through the command line)."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.models.layer_specs import Flatten, Linear
from deepspike.models.spec import Architecture
from deepspike.training.loop import train_epoch


def test_a_last_batch_of_one_sample_at_one_step_is_a_one_line_error():
    arch = Architecture("bn_mlp", (Flatten(), Linear(6, norm=True), Linear(3, act=False)), (1, 2, 2), 3)
    method = get_method("stbp", {"timesteps": 1, "norm": "bn", "loss": "ce"})
    net = method.build(arch)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.rand(4, 1, 2, 2, generator=g), torch.tensor([0, 1, 2, 0])),
               (torch.rand(1, 1, 2, 2, generator=g), torch.tensor([1]))]  # the last batch: one sample
    with pytest.raises(ConfigError, match=r"^a training batch of 1 sample\(s\) gives a batch-norm one value per "
                                          r"channel") as e:
        train_epoch(net, method, optimizer, scheduler, batches)
    assert "\n" not in str(e.value) and "train.batch_size" in str(e.value)
