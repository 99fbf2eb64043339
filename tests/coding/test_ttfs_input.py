"""Input coding of TTFS networks: the three formulas and training-time jitter."""


import pytest
import torch

from deepspike.coding.ttfs_input import TTFSInput, encode_times
from deepspike.core.errors import ConfigError


def test_one_minus_p():
    x = torch.tensor([0.0, 0.5, 1.0])
    assert encode_times(x, "1-p", 3.0).tolist() == [3.0, 1.5, 0.0]  # t = 3 (1 - p)


def test_p():
    x = torch.tensor([0.0, 0.5, 1.0])
    assert encode_times(x, "p", 3.0).tolist() == [0.0, 1.5, 3.0]  # t = 3 p


def test_8bit_rule():
    s = torch.tensor([0.0, 51.0, 128.0, 255.0])
    x = s / 255.0  # the loaders' x = s / 255
    got = encode_times(x, "255", 3.0)
    expected = [3.0, 3.0 * 204 / 255, 3.0 * 127 / 255, 0.0]  # t = alpha (255 - s) / 255
    torch.testing.assert_close(got, torch.tensor(expected))
    # a value off the 8-bit grid is rounded to the nearest intensity first: 0.5 -> s = 128 (round half even)
    assert float(encode_times(torch.tensor([0.5]), "255", 255.0)) == pytest.approx(127.0)


def test_jitter_only_in_training():
    torch.manual_seed(0)
    enc = TTFSInput("1-p", alpha=10.0, jitter=0.14)
    x = torch.full((200, 1, 10, 10), 0.5)  # t = 5 everywhere
    noisy = enc(x)
    dev = noisy - 5.0
    assert abs(float(dev.mean())) < 0.01
    assert float(dev.std()) == pytest.approx(0.14, rel=0.03)
    assert torch.equal(enc.eval()(x), torch.full_like(x, 5.0))


def test_jitter_never_makes_negative_times():
    torch.manual_seed(0)
    t = TTFSInput("1-p", alpha=1.0, jitter=0.5)(torch.ones(1000, 1, 1, 1))  # t = 0 before the noise
    assert float(t.min()) == 0.0 and float(t.max()) > 0.0


def test_bad_values_raise():
    with pytest.raises(ConfigError, match="valid"):
        TTFSInput("log")
    with pytest.raises(ConfigError):
        TTFSInput("1-p", alpha=0.0)
    with pytest.raises(ConfigError):
        TTFSInput("1-p", jitter=-1.0)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        encode_times(torch.tensor([2.0]), "255", 1.0)


@pytest.mark.parametrize("coding", ["1-p", "p", "255"])
def test_nan_intensity_is_refused(coding):
    x = torch.tensor([0.2, float("nan"), 0.7])
    with pytest.raises(ConfigError, match=r"needs intensities in \[0, 1\]; got NaN"):
        encode_times(x, coding)


@pytest.mark.parametrize("coding", ["1-p", "p", "255"])
@pytest.mark.parametrize("alpha", [0.0, -1.0, float("inf"), float("nan")])
def test_every_coding_and_the_module_refuse_the_same_alphas(coding, alpha):
    """'255' once took alpha = inf and gave times [inf, nan]; TTFSInput took it at construction."""
    with pytest.raises(ConfigError, match="must be"):
        encode_times(torch.tensor([0.5, 1.0]), coding=coding, alpha=alpha)
    with pytest.raises(ConfigError, match="must be"):
        TTFSInput(coding, alpha=alpha)


@pytest.mark.parametrize(("kw", "message"), [
    ({"alpha": "1"}, r"^TTFS coding alpha='1' must be a finite number > 0$"),
    ({"alpha": True}, r"^TTFS coding alpha=True must be a finite number > 0$"),
    ({"alpha": 10**400}, r"^TTFS coding alpha=1000.* must be a finite number > 0$"),
    ({"alpha": 1e39}, r"^TTFS coding alpha=1e\+39 must be a finite number > 0$"),
    ({"jitter": "0.1"}, r"^TTFS input jitter sigma='0.1' must be a finite number >= 0$"),
])
def test_alpha_and_jitter_that_are_no_float32_numbers_are_refused_in_one_line(kw, message):
    # a string raised TypeError from the comparison, True was taken as 1, 10**400 raised OverflowError in float(),
    # 1e39 made every float32 spike time inf ("no spike")
    with pytest.raises(ConfigError, match=message):
        TTFSInput(**kw)


@pytest.mark.parametrize("jitter", [-0.1, float("inf"), float("nan")])
def test_the_jitter_must_be_finite_and_non_negative(jitter):
    with pytest.raises(ConfigError, match="jitter sigma=.* must be a finite number >= 0"):
        TTFSInput(jitter=jitter)


@pytest.mark.parametrize("coding", ["1-p", "p", "255"])
def test_an_alpha_that_is_zero_or_subnormal_in_float32_is_refused(coding):
    """alpha=1e-300 made every float32 time 0 (1e-40 subnormal) with nothing said."""
    for alpha in (1e-300, 1e-40):
        with pytest.raises(ConfigError, match=rf"^TTFS coding alpha={alpha!r} is below float32's smallest normal"):
            TTFSInput(coding, alpha=alpha)
        with pytest.raises(ConfigError, match="below float32's smallest normal"):
            encode_times(torch.tensor([0.5, 1.0]), coding=coding, alpha=alpha)


def test_encode_times_255_float16_does_not_overflow():
    # float16 alpha (255 - s) overflowed to +inf from alpha = 257; by hand 300 * (255 - 0) / 255 = 300,
    # 300 * (255 - 128) / 255 = 149.4118 (0.5 * 255 = 127.5 rounds to 128, half to even), 0.
    got = encode_times(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float16), "255", 300.0)
    assert got.dtype == torch.float32
    assert got.tolist() == pytest.approx([300.0, 300.0 * 127 / 255, 0.0], rel=1e-6)
