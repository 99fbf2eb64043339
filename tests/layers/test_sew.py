"""SEW-ResNet's connect functions and block (``layers.sew``) on hand-made spikes."""

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.sew import SewBlock, sew_connect
from deepspike.models.spec import Conv, Residual

A = torch.tensor([0.0, 0.0, 1.0, 1.0])  # body spikes
S = torch.tensor([0.0, 1.0, 0.0, 1.0])  # shortcut spikes


class Silent(nn.Module):
    """A body that never fires."""

    def forward(self, x):
        return torch.zeros_like(x)


@pytest.mark.parametrize("kind, expected", [
    ("add", [0, 1, 1, 2]),   # A + S
    ("and", [0, 0, 0, 1]),   # A AND S
    ("iand", [0, 1, 0, 0]),  # (NOT A) AND S
])
def test_connect_functions_on_hand_made_spikes(kind, expected):
    assert sew_connect(kind, A, S).tolist() == expected


def test_sew_block_joins_body_and_identity_shortcut_without_activation():
    block = SewBlock(nn.Identity(), nn.Sequential(), "iand")
    body_silent = SewBlock(Silent(), nn.Sequential(), "add")
    x = torch.tensor([[1.0, 0.0, 1.0]])
    assert block(x).tolist() == [[0.0, 0.0, 0.0]]  # (1 - x) x = 0 for spikes
    assert body_silent(x).tolist() == x.tolist()  # ADD with a silent body is the identity


def test_spec_refuses_an_unknown_connect_function():
    with pytest.raises(ConfigError, match="valid: add, and, iand"):
        Residual((Conv(4, 3, padding=1),), connect="or")
