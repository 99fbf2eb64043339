"""What the NIR exporters read from a model: layers in order, and only layers whose computation they know."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.deploy.model_walk import check_own_forward, leaf_modules
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons import LIF


class _RenamedLIF(LIF):
    """A user's LIF that only changes how it is made: it computes what LIF computes."""

    def __init__(self):
        super().__init__(decay=0.5)


class _AdaptiveLIF(LIF):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * 0.5


class _ScaledLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * super().forward(x)


class _MixinAfterForward(_AdaptiveLIF):
    """Inherits a user's forward without defining one: still refused."""


class _Block(nn.Sequential):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + x


class _OwnNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / x.norm()


def test_layers_with_deepspikes_or_torchs_forward_pass():
    """And a layer of the user's own made directly from nn.Module: the exporter names it as a layer without a NIR
    node ("layer _OwnNorm has no NIR mapping"), which says more than 'overrides forward() of Module'."""
    for module in (LIF(decay=0.5), _RenamedLIF(), nn.Linear(2, 3), TimeDistributed(nn.Conv2d(1, 2, 3)),
                   nn.Sequential(nn.Flatten()), _OwnNorm()):
        check_own_forward(module)


@pytest.mark.parametrize(("module", "name", "base"), [
    (_AdaptiveLIF(decay=0.5), "_AdaptiveLIF", "LIF"),
    (_MixinAfterForward(decay=0.5), "_MixinAfterForward", "LIF"),
    (_ScaledLinear(2, 3), "_ScaledLinear", "Linear"),
    (_Block(nn.Identity()), "_Block", "Sequential"),
])
def test_a_layer_that_computes_its_own_forward_is_refused(module, name, base):
    with pytest.raises(ConfigError) as e:
        check_own_forward(module)
    assert str(e.value) == (f"NIR export: {name} overrides forward() of {base}; NIR would hold what a plain "
                            f"{base} computes, so it is not exported")


def test_leaf_modules_unrolls_and_checks_every_level():
    lif, fc = LIF(decay=0.5), nn.Linear(2, 3)
    assert leaf_modules(nn.Sequential(nn.Sequential(TimeDistributed(fc)), lif)) == [fc, lif]
    with pytest.raises(ConfigError, match="_Block overrides forward"):
        leaf_modules(nn.Sequential(_Block(fc)))
    with pytest.raises(ConfigError, match="_ScaledLinear overrides forward"):
        leaf_modules(nn.Sequential(TimeDistributed(_ScaledLinear(2, 3))))
