"""MixUp and CutMix against hand-checked invariants, the mixed loss against cross-entropy with mixed one-hot
targets, the data-parallel split of mixed labels, and runs that train and resume with them."""

import pytest
import torch
import torch.nn.functional as F

from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.data import Augment, BatchIterator
from deepspike.data import mixing as mx
from tiny_run import TINY, full_and_resumed_weights


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_mixup_blends_each_sample_with_one_partner_by_the_labels_share():
    x = torch.arange(8.0).view(8, 1, 1, 1).expand(8, 2, 3, 3).contiguous()  # sample i is all i
    y = torch.arange(8) + 10
    out, labels = mx.mixup(x, y, 0.4, _gen(1))
    lam = labels.lam
    assert 0 < lam < 1 and torch.equal(labels.a, y)
    partner = torch.round((out[:, 0, 0, 0] - lam * torch.arange(8.0)) / (1 - lam)).long()  # solve for j
    assert torch.allclose(out, lam * x + (1 - lam) * x[partner], atol=1e-6)
    assert torch.equal(labels.b, y[partner]) and sorted(partner.tolist()) == list(range(8))  # a permutation


@pytest.mark.parametrize("shape", [(6, 2, 10, 12), (6, 3, 2, 10, 12), (6, 10, 12)])
def test_cutmix_pastes_one_box_from_the_partner_and_the_share_is_what_is_left(shape):
    x = torch.arange(6.0).view(6, *[1] * (len(shape) - 1)).expand(*shape).contiguous() + 1  # sample i is all i + 1
    y = torch.arange(6)
    out, labels = mx.cutmix(x, y, 1.0, _gen(3))
    moved = out != x  # [B, ..., H, W]: where the partner's values came in
    box = moved.reshape(6, -1, *shape[-2:]).any(1)  # [B, H, W]
    area = int(box[labels.b != labels.a][0].sum()) if (labels.b != labels.a).any() else 0
    assert labels.lam == pytest.approx(1 - area / (shape[-2] * shape[-1]))
    for i in range(6):  # the box holds the partner's value, the rest our own, the same box for every sample
        partner = int(labels.b[i])
        assert torch.equal(out[i][moved[i]], torch.full_like(out[i][moved[i]], partner + 1.0))
        assert torch.equal(box[i], box[0]) or partner == i


def test_mixed_loss_is_cross_entropy_against_mixed_one_hot_targets():
    out = torch.randn(5, 4)
    labels = mx.MixedLabels(torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 1, 0, 2, 3]), 0.3)
    soft = 0.3 * F.one_hot(labels.a, 4).float() + 0.7 * F.one_hot(labels.b, 4).float()
    assert torch.allclose(mx.mixed_loss(F.cross_entropy, out, labels), F.cross_entropy(out, soft))
    assert mx.correct(torch.tensor([0, 1, 0, 0, 3]), labels) == pytest.approx(0.3 * 2 + 0.7 * 3)  # a: 0, 1; b: 1, 2, 4
    parts = [labels.split(2, r) for r in range(2)]
    assert [len(p) for p in parts] == [3, 2] and torch.equal(torch.cat([p.b for p in parts]), labels.b)


def test_the_iterator_mixes_the_global_batch_before_the_ranks_split_it():
    dataset = torch.utils.data.TensorDataset(torch.rand(12, 1, 4, 4), torch.arange(12) % 3)
    dataset.x, dataset.y = dataset.tensors
    whole = list(BatchIterator(dataset, 6, seed=1, augment=Augment(mixup=0.5)))
    parts = [list(BatchIterator(dataset, 6, seed=1, augment=Augment(mixup=0.5), rank=r, world_size=2))
             for r in range(2)]
    for b, (x, y) in enumerate(whole):
        assert isinstance(y, mx.MixedLabels)
        assert torch.equal(torch.cat([parts[0][b][0], parts[1][b][0]]), x)
        assert torch.equal(torch.cat([parts[0][b][1].b, parts[1][b][1].b]), y.b)


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="augment.mixup must be in"):
        Augment(mixup=-1.0)
    with pytest.raises(ConfigError, match="cutmix needs pictures or sequences"):
        mx.cutmix(torch.zeros(4, 5), torch.zeros(4, dtype=torch.long), 1.0, _gen())
    assert not Augment(cutmix=1.0).is_identity and Augment().mix(torch.zeros(1), torch.zeros(1), _gen())[1].dim() == 1


@pytest.mark.parametrize("mix", [mx.mixup, mx.cutmix])
@pytest.mark.parametrize("alpha", [0, 0.0, -1.0, float("nan"), float("inf"), 101.0, True, "1"])
def test_an_alpha_outside_0_to_100_called_directly_is_one_config_error_line(mix, alpha):
    """alpha 0 or less raised numpy's 'ValueError: a <= 0'; NaN or inf mixed by lam = NaN."""
    x, y = torch.rand(4, 1, 4, 4), torch.arange(4)
    with pytest.raises(ConfigError, match=r"^mixing: Beta's alpha must be a number in \(0, 100\], got "):
        mix(x, y, alpha, _gen())


def test_mix_batch_with_neither_mixup_nor_cutmix_on_is_one_config_error_line():
    with pytest.raises(ConfigError, match="^mix_batch: neither MixUp nor CutMix is on"):
        mx.mix_batch(torch.rand(4, 1, 4, 4), torch.arange(4), 0.0, 0.0, _gen())
    _, labels = mx.mix_batch(torch.rand(4, 1, 4, 4), torch.arange(4), 0.0, 0.5, _gen())  # one on: CutMix
    assert 0.0 <= labels.lam <= 1.0


@pytest.mark.parametrize("extra", [["data.augment.mixup=0.4"], ["data.augment.cutmix=1.0", "data.augment.mixup=0.2"],
                                   ["data.augment.cutmix=1.0", "train.temporal_grad=sltt"]])
def test_a_mixed_run_trains_and_resumes_exactly(tmp_path, extra):
    full, cut = full_and_resumed_weights(load_config(None, [*TINY, *extra]), tmp_path)
    for key, value in full.items():
        assert torch.equal(value, cut[key]), key
