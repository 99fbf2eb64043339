"""The spike-count MSE (``methods.losses.mse_count_loss``) by hand and against snnTorch's ``mse_count_loss``."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.methods.losses import mse_count_loss


def test_mse_count_by_hand():
    """T = 2, B = 1, K = 2, label 0, spikes s_1 = [1, 0], s_2 = [1, 1]: counts [2, 1]. Rates 1 / 0: wanted [2, 0],
    L = ((2-2)^2 + (1-0)^2) / 2 / T = 0.25. Rates 0.5 / 0.5: wanted [1, 1], L = ((2-1)^2 + 0) / 2 / 2 = 0.25;
    rates 1 / 0.5: wanted [2, 1], L = 0."""
    s, y = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]]), torch.tensor([0])
    assert float(mse_count_loss(s, y)) == pytest.approx(0.25)
    assert float(mse_count_loss(s, y, 0.5, 0.5)) == pytest.approx(0.25)
    assert float(mse_count_loss(s, y, 1.0, 0.5)) == 0.0
    # the same from the mean rates [B, K] over T = 2 steps
    assert float(mse_count_loss(s.mean(0), y, steps=2)) == pytest.approx(0.25)
    with pytest.raises(ConfigError, match="number of steps"):
        mse_count_loss(s.mean(0), y)


@pytest.mark.parametrize("correct, incorrect", [(1.0, 0.0), (0.75, 0.25), (0.5, 0.125)])
def test_mse_count_is_snntorchs_mse_count_loss(correct, incorrect):
    """Same spikes ``[T, B, K]``, whole target counts (T = 8): the value and the gradient agree with snnTorch."""
    sf = pytest.importorskip("snntorch.functional")
    torch.manual_seed(0)
    s, y = (torch.rand(8, 6, 5) < 0.4).float(), torch.tensor([0, 4, 1, 1, 3, 2])
    ours_s, theirs_s = s.clone().requires_grad_(), s.clone().requires_grad_()
    ours = mse_count_loss(ours_s, y, correct, incorrect)
    theirs = sf.mse_count_loss(correct_rate=correct, incorrect_rate=incorrect)(theirs_s, y)
    assert torch.allclose(ours, theirs)
    ours.backward()
    theirs.backward()
    assert torch.allclose(ours_s.grad, theirs_s.grad)


def test_mse_count_counts_bfloat16_spikes_exactly_past_256_steps():
    """Under bf16 autocast the spikes are bfloat16 and their sum over T was too: 301 spikes counted 300 (bfloat16
    has 8 significant bits), so the loss of a net that fired every step was that of one firing 300 times."""
    spikes = torch.ones(301, 1, 2, dtype=torch.bfloat16)
    target = torch.tensor([0])
    exact = mse_count_loss(spikes.float(), target, 1.0, 0.0)  # counts 301 and 301, wanted 301 and 0
    assert exact.item() == pytest.approx(301 ** 2 / 2 / 301)
    assert mse_count_loss(spikes, target, 1.0, 0.0).item() == pytest.approx(exact.item(), rel=1e-6)
