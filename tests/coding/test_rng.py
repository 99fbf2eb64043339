"""``as_generator``: which integer seeds are taken, and that each one is its own stream."""

import numpy as np
import pytest
import torch

from deepspike.coding import as_generator, rate_poisson
from deepspike.core.errors import ConfigError

X = torch.full((4, 64), 0.5)


def test_every_seed_from_0_to_2_64_minus_1_is_torchs_manual_seed_of_itself():
    for seed in (0, 1, 2**63 - 1, 2**63, 2**64 - 1):
        expected = torch.rand(8, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(torch.rand(8, generator=as_generator(seed)), expected)
        assert as_generator(seed).initial_seed() == seed


@pytest.mark.parametrize("seed", [np.int64(7), np.uint64(7), np.int32(7), np.uint8(7)])
def test_numpy_integer_seeds_give_the_spikes_of_the_same_python_int(seed):
    """A NumPy integer (e.g. from an array of seeds) was refused with a TypeError."""
    assert torch.equal(rate_poisson(X, 5, generator=seed), rate_poisson(X, 5, generator=7))


@pytest.mark.parametrize("seed", [-1, -(2**63), 2**64, 2**70, np.int64(-1)])
def test_seeds_outside_0_to_2_64_minus_1_are_one_config_error_line(seed):
    """-1 gave the spikes of 2**64 - 1 (torch reads seeds modulo 2**64); 2**64 raised ValueError 'Overflow'."""
    with pytest.raises(ConfigError, match=r"^a generator seed must be an integer from 0 to 2\*\*64 - 1, got -?\d+$"):
        rate_poisson(X, 5, generator=seed)


@pytest.mark.parametrize("bad", [True, 1.0, "3", np.bool_(True), [1]])
def test_what_is_no_integer_seed_is_one_config_error_line(bad):
    with pytest.raises(ConfigError, match="^generator must be a torch.Generator, an integer seed or None; got "):
        as_generator(bad)


def test_a_generator_and_none_pass_through_unchanged():
    g = torch.Generator()
    assert as_generator(g) is g and as_generator(None) is None
