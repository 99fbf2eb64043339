"""``PopulationEncoder``: static samples give the same responses at every step (currents) or Bernoulli spikes of them
(their mean over many steps is the response); sequences and frames are coded step by step from their first T steps;
the shape a network sees (``encoded_shape``); one-line refusals."""

import pytest
import torch

from deepspike.coding.population import population_code
from deepspike.core.errors import ConfigError
from deepspike.layers.population_encoder import PopulationEncoder, encoded_shape, is_sequence


def test_static_images_give_their_responses_at_every_step():
    x = torch.rand(2, 1, 8, 8)
    out = PopulationEncoder(5, low=0.0, high=1.0, width=0.5)(x, 4)
    expected = population_code(x, 5, 0.0, 1.0, 0.5, dim=1)  # [2, 5, 8, 8]
    assert out.shape == (4, 2, 5, 8, 8) and all(torch.equal(out[t], expected) for t in range(4))
    vectors = torch.rand(3, 6)
    assert PopulationEncoder(4)(vectors, 2).shape == (2, 3, 24)


def test_spikes_are_bernoulli_draws_of_the_responses():
    torch.manual_seed(0)
    x = torch.rand(1, 3)
    spikes = PopulationEncoder(4, spikes=True)(x, 20_000)  # [T, 1, 12] of 0/1
    r = population_code(x, 4, dim=1)[0]
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(spikes.mean(0)[0], r, atol=0.015)  # binomial sd <= 0.0036 at T = 20,000


def test_spikes_of_bfloat16_sequences_fire_at_their_responses():
    torch.manual_seed(0)
    seq = torch.full((2000, 500, 1), 0.5, dtype=torch.bfloat16)  # [B, T', F]: responses r = exp(-4.5 d^2)
    spikes = PopulationEncoder(3, width=1 / 3, spikes=True)(seq, 500)  # [T, B, 3]; r = (0.0111, 1, 0.0111)
    r = population_code(seq[:1, 0], 3, width=1 / 3, dim=1)[0].double()  # as stored in bfloat16
    assert spikes.dtype == torch.bfloat16 and r[0] == pytest.approx(0.0111, abs=1e-4)
    rate = spikes.double().mean(dim=(0, 1))
    assert ((rate - r).abs() <= 5 * torch.sqrt(r * (1 - r) / 1e6)).all()  # rounded bfloat16 uniforms: 0.0130


def test_sequences_and_frames_are_coded_step_by_step():
    seq = torch.rand(2, 9, 3)  # [B, T', F]
    out = PopulationEncoder(3)(seq, 6)
    assert out.shape == (6, 2, 9) and torch.equal(out[4], population_code(seq[:, 4], 3, dim=1))
    frames = torch.rand(2, 5, 2, 4, 4)  # [B, T', C, H, W]
    coded = PopulationEncoder(2)(frames, 5)
    assert coded.shape == (5, 2, 4, 4, 4) and torch.equal(coded[1], population_code(frames[:, 1], 2, dim=1))
    with pytest.raises(ConfigError, match="^asked for T=10 steps but the samples hold 9 frames: set "
                                          "method.timesteps to at most 9, "):
        PopulationEncoder(3)(seq, 10)
    assert is_sequence(seq) and is_sequence(frames) and not is_sequence(torch.rand(2, 3, 4, 4))


def test_the_shape_a_network_sees_and_refusals():
    assert encoded_shape((1, 28, 28), 4) == (4, 28, 28) and encoded_shape((700,), 3) == (2100,)
    with pytest.raises(ConfigError, match="^population_size must be an integer from 2 to 1024, got 0$"):
        PopulationEncoder(0)
    with pytest.raises(ConfigError, match=r"^population coding needs a batch of samples \[B, ...\], got shape \(3,\)$"):
        PopulationEncoder(2)(torch.rand(3), 1)
