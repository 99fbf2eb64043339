"""SEW-ResNet's connect functions and block (``layers.sew``) on hand-made spikes."""

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.sew import SewBlock, sew_connect
from deepspike.layers.spike_storage import attach_codes, attached_codes, spike_quantum
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


def _coded(values):
    x = torch.tensor(values).requires_grad_()
    codes = x.detach().to(torch.uint8)
    return attach_codes(x * 1.0, codes, int(codes.max()))


@pytest.mark.parametrize("kind, expected", [("add", [0, 1, 1, 2]), ("and", [0, 0, 0, 1]), ("iand", [0, 1, 0, 0])])
def test_the_junction_computes_its_codes_from_the_branches_codes(kind, expected):
    a, s = _coded(A.tolist()), _coded(S.tolist())
    out = SewBlock(_Const(a), _Const(s), kind)(torch.zeros(4))
    codes, largest = attached_codes(out)
    assert codes.dtype == torch.uint8 and codes.tolist() == expected == out.tolist()
    assert largest == {"add": 2, "and": 1, "iand": 1}[kind]


def test_the_junction_makes_no_codes_that_could_overflow_or_go_negative():
    big = _coded([0.0, 200.0, 100.0, 1.0])
    added = SewBlock(_Const(big), _Const(_coded([0.0, 100.0, 200.0, 1.0])), "add")(torch.zeros(4))
    assert attached_codes(added) is None and added.tolist() == [0, 300, 300, 2]  # 300 > 255: packed later, or kept
    counted = SewBlock(_Const(_coded([2.0, 0.0, 1.0, 0.0])), _Const(_coded(S.tolist())), "iand")(torch.zeros(4))
    assert attached_codes(counted) is None and counted.tolist() == [0, 1, 0, 1]  # a = 2: no uint8 form of 1 - a
    assert spike_quantum(added) == spike_quantum(counted) == 1


class _Const(nn.Module):
    """A branch that returns a fixed tensor."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return self.value
