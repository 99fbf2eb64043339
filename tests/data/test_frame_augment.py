"""Rolls, rotations, shears, cutouts and event drops of image and event-frame batches, against torch.roll,
torch.rot90, scipy.ndimage.affine_transform, hand-worked cases and the binomial law; and Augment's order,
``one_of`` policy and shape checks."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.data import Augment
from deepspike.data import frame_augment as fa
from deepspike.training.trainer import Trainer
from tiny_run import TINY, full_and_resumed_weights


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_roll_equals_torch_roll_per_sample():
    x = torch.rand(4, 2, 5, 7)
    dy, dx = torch.tensor([0, 1, -3, 6]), torch.tensor([2, -1, 0, -8])
    out = fa.roll(x, dy, dx)
    for b in range(4):
        assert torch.equal(out[b], torch.roll(x[b], (int(dy[b]), int(dx[b])), dims=(1, 2)))


def test_random_roll_moves_a_frame_sequence_as_one_picture():
    x = torch.rand(6, 3, 2, 5, 5)  # [B, T, C, H, W]
    out = fa.random_roll(x, 2, _gen(1))
    shifts = set()
    for b in range(6):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(out[b], torch.roll(x[b], (dy, dx), dims=(2, 3)))]
        assert len(found) == 1  # one shift, the same for every step and channel
        shifts.add(found[0])
    assert len(shifts) > 1
    assert torch.equal(out, fa.random_roll(x, 2, _gen(1)))


@pytest.mark.parametrize("size", [4, 5])
@pytest.mark.parametrize("angle, k", [(90.0, 1), (-90.0, -1), (180.0, 2), (0.0, 0)])
def test_right_angle_rotations_equal_rot90(size, angle, k):
    x = torch.rand(2, 3, size, size)
    inverse = fa.rotation_shear_inverse(torch.full((2,), angle), torch.zeros(2))
    assert torch.equal(fa.affine_nearest(x, inverse), torch.rot90(x, k, dims=(2, 3)))


def test_hand_worked_shear():
    """A 45-degree shear of a 3 x 3 picture: row r (offset v = r - 1) moves right by v pixels, zeros come in."""
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    out = fa.affine_nearest(x, fa.rotation_shear_inverse(torch.zeros(1), torch.full((1,), 45.0)))
    assert out.view(3, 3).tolist() == [[2, 3, 0], [4, 5, 6], [0, 7, 8]]


@pytest.mark.parametrize("shape", [(9, 9), (8, 13)])
def test_rotation_and_shear_equal_scipy_nearest_affine(shape):
    """scipy maps output (row, col) to input ``M o + offset``; ours, about the centre, in (col, row)."""
    rng = np.random.default_rng(0)
    h, w = shape
    x = torch.rand(5, 2, h, w, dtype=torch.float64)
    angles, shears = torch.tensor(rng.uniform(-40, 40, 5)), torch.tensor(rng.uniform(-30, 30, 5))
    inverse = fa.rotation_shear_inverse(angles, shears)
    out = fa.affine_nearest(x, inverse)
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    for b in range(5):
        m = inverse[b].numpy()[::-1, ::-1]  # (col, row) -> (row, col)
        for c in range(2):
            ref = ndimage.affine_transform(x[b, c].numpy(), m, offset=centre - m @ centre, order=0,
                                           mode="grid-constant", cval=0.0)
            assert np.array_equal(out[b, c].numpy(), ref), (b, c)


def test_random_affine_applies_one_draw_to_every_step():
    base = torch.rand(4, 1, 2, 9, 9)
    x = torch.cat([base * (t + 1) for t in range(3)], dim=1)  # [B, T=3, C, H, W], step t = (t + 1) * step 0
    out = fa.random_affine(x, 30.0, 20.0, _gen(2))
    for t in range(3):
        assert torch.allclose(out[:, t], out[:, 0] * (t + 1))
    assert not torch.equal(out, x)


def test_cutout_zeroes_one_square_of_the_given_side_at_most():
    x = torch.ones(200, 2, 3, 8, 8)  # [B, T, C, H, W]
    out = fa.random_cutout(x, 3, _gen(3))
    sides = set()
    for b in range(200):
        zero = out[b] == 0
        assert torch.equal(zero, zero[:1, :1].expand_as(zero))  # the same mask at every step and channel
        rows, cols = zero[0, 0].nonzero(as_tuple=True)
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert height * width == len(rows) and height <= 3 and width <= 3  # a full rectangle
        sides.add((height, width))
    assert (3, 3) in sides and (2, 3) in sides and (2, 2) in sides  # inside, and clipped at the borders


def test_drop_events_is_binomial_thinning_of_counts():
    x = torch.tensor([[0.0, 1.0, 3.0, 50.0]]).repeat(20000, 1)
    out = fa.drop_events(x, 0.3, _gen(4))
    assert torch.equal(out, out.round()) and bool((out <= x).all()) and bool((out >= 0).all())
    mean, var = out.mean(0), out.var(0)
    assert torch.allclose(mean, x[0] * 0.7, atol=0.05)  # n (1 - p)
    assert torch.allclose(var, x[0] * 0.7 * 0.3, rtol=0.1, atol=0.01)  # n p (1 - p)
    assert torch.equal(fa.drop_events(x[:3], 0.0, _gen()), x[:3])


@pytest.mark.parametrize("bad", [0.5, -1.0, float("inf"), float("nan")])
def test_drop_events_refuses_inputs_that_are_not_counts(bad):
    with pytest.raises(ConfigError, match="drop_event needs event counts"):
        fa.drop_events(torch.tensor([bad, 1.0]), 0.1, _gen())


def test_a_run_refuses_event_drops_on_analog_data_before_it_starts(tmp_path):
    with pytest.raises(ConfigError, match="drop_event needs event counts"):
        Trainer(load_config(None, [*TINY, "data.augment.drop_event=0.1"]), tmp_path / "run").fit()
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_an_infinite_pixel_moved_out_or_masked_leaves_zeros_not_nan():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 0, 0] = float("inf")
    rotated = fa.affine_nearest(x, fa.rotation_shear_inverse(torch.tensor([45.0]), torch.zeros(1)))
    assert not torch.isnan(rotated).any()
    masked = fa.random_cutout(x.expand(40, 1, 5, 5), 3, _gen(9))
    assert not torch.isnan(masked).any() and (masked == 0).all(dim=(1, 2, 3)).sum() < 40


def test_fold_steps_refuses_sequences():
    assert fa.fold_steps(torch.zeros(2, 3, 4, 5, 6)).shape == (2, 12, 5, 6)
    with pytest.raises(ConfigError, match=r"got a batch of shape \[2, 5, 7\]"):
        fa.fold_steps(torch.zeros(2, 5, 7))


def test_one_of_applies_exactly_one_op_per_sample():
    x = torch.rand(300, 2, 1, 6, 6) + 0.5  # no zeros, so a cutout shows
    out = Augment(roll=2, cutout=2, one_of=True)(x, _gen(5))
    rolled = cut = 0
    for b in range(300):
        is_roll = any(torch.equal(out[b], torch.roll(x[b], (dy, dx), dims=(2, 3)))
                      for dy in range(-2, 3) for dx in range(-2, 3))
        is_cut = bool((out[b] == 0).any()) and torch.equal(out[b] != 0, (out[b] != 0)[:1, :1].expand_as(out[b])) \
            and torch.equal(torch.where(out[b] == 0, x[b], out[b]), x[b])
        assert is_roll != is_cut or torch.equal(out[b], x[b])  # one op (a zero roll looks like nothing)
        rolled, cut = rolled + is_roll, cut + (is_cut and not is_roll)
    assert 100 < rolled < 200 and 100 < cut < 200  # chosen uniformly


def test_augment_order_and_identity():
    x = torch.randint(0, 4, (3, 2, 2, 5, 5)).float()
    g1, g2 = _gen(6), _gen(6)
    both = Augment(drop_event=0.5, roll=1)(x, g1)
    by_hand = fa.random_roll(fa.drop_events(x, 0.5, g2), 1, g2)
    assert torch.equal(both, by_hand)
    assert Augment().is_identity and not Augment(cutout=2).is_identity and not Augment(drop_event=0.1).is_identity


def test_frames_crop_and_flip_move_every_step_alike():
    base = torch.rand(8, 1, 2, 6, 6)
    x = torch.cat([base, 2 * base], dim=1)  # [B, T=2, C, H, W]
    out = Augment(crop_padding=2, hflip=True)(x, _gen(7))
    assert torch.allclose(out[:, 1], 2 * out[:, 0]) and not torch.equal(out, x)


def test_shape_checks():
    Augment(roll=1).check_sample_shape((2, 14, 14))
    Augment(drop_event=0.2).check_sample_shape((700,))
    with pytest.raises(ConfigError, match=r"need images or event frames, but this data set's samples are \[700\]"):
        Augment(rotate=10).check_sample_shape((700,))
    Augment(time_mask=3).check_sample_shape((700,))
    with pytest.raises(ConfigError, match=r"need sequences \[T, F\], but this data set's samples are \[2, 8, 8\]"):
        Augment(channel_shift=3).check_sample_shape((2, 8, 8))
    for bad in ({"roll": -1}, {"rotate": 181}, {"shear": 90}, {"cutout": -2}, {"drop_event": 1.0}, {"roll": "2"},
                {"rotate": True}, {"hflip": 1}, {"one_of": "yes"}):
        with pytest.raises(ConfigError, match=f"augment.{next(iter(bad))} must be"):
            Augment(**bad)


def test_an_event_run_with_nda_augmentation_resumes_exactly(tmp_path):
    overrides = [*TINY, "data.name=digits_events", "data.args.timesteps=4", "method.encoder=frames",
                 "method.timesteps=4", "data.augment.crop_padding=0", "data.augment.roll=2", "data.augment.rotate=20",
                 "data.augment.shear=20", "data.augment.one_of=true", "data.augment.drop_event=0.2"]
    full, cut = full_and_resumed_weights(load_config(None, overrides), tmp_path)
    for key, value in full.items():
        assert torch.equal(value, cut[key]), key
