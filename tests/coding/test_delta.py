"""Delta modulation against snnTorch's ``spikegen.delta`` and hand-worked level crossings; the encoder module's
shape handling and option errors."""

import math

import pytest
import torch

from deepspike.coding import delta_modulation
from deepspike.core.errors import ConfigError
from deepspike.layers.event_frames import DeltaEncoder

spikegen = pytest.importorskip("snntorch.spikegen")


@pytest.mark.parametrize("off", [True, False])
def test_step_rule_equals_snntorch_delta(off):
    torch.manual_seed(0)
    x = torch.rand(30, 4, 7).cumsum(0) * 0.2 - torch.rand(30, 4, 7).cumsum(0) * 0.2  # [T, B, F], ups and downs
    ours = delta_modulation(x, 0.05, off_spikes=off, mode="step")
    theirs = spikegen.delta(x, threshold=0.05, padding=False, off_spike=off)
    assert torch.equal(ours, theirs.to(ours.dtype))
    assert bool((ours == -1).any()) == off and bool((ours == 1).any())


def test_step_rule_hand_worked():
    x = torch.tensor([0.3, 0.3, 0.1, 0.15, 0.5])
    assert delta_modulation(x, 0.2).tolist() == [1, 0, -1, 0, 1]  # first step from a zero reference; 0.05 is missed


def test_level_rule_hand_worked():
    """theta 0.2: a jump of 0.7 comes out as three ON spikes over three steps; a drift of 0.05 per step crosses."""
    x = torch.tensor([0.7, 0.7, 0.7, 0.7, 0.75, 0.8, 0.85, 0.9, 0.3])
    s = delta_modulation(x, 0.2, mode="level")
    # reference: 0 -> .2 -> .4 -> .6 (|.7-.6| < .2) ... .85 - .6 = .25 -> .8; .3 - .8 = -.5 -> .6
    assert s.tolist() == [1, 1, 1, 0, 0, 0, 1, 0, -1]


def test_level_rule_tracks_the_signal_within_a_threshold():
    torch.manual_seed(1)
    x = ((torch.rand(200, 3, 5) - 0.5) * 0.1).cumsum(0)  # random walk, steps of at most half a threshold
    theta = 0.1
    reference = theta * delta_modulation(x, theta, mode="level").cumsum(0)
    assert float((x - reference).abs().max()) < theta
    # the step rule sees almost none of it
    assert delta_modulation(x, theta, mode="step").abs().sum() < reference.abs().sum()


def test_off_spikes_false_keeps_the_level_reference_moving_down():
    x = torch.tensor([0.5, 0.0, 0.5])
    assert delta_modulation(x, 0.5, off_spikes=False, mode="level").tolist() == [1, 0, 1]
    assert delta_modulation(x, 0.5, mode="level").tolist() == [1, -1, 1]


def test_bad_options():
    with pytest.raises(ConfigError, match="delta threshold must be > 0"):
        delta_modulation(torch.zeros(2), 0.0)
    with pytest.raises(ConfigError, match="bad delta mode 'sigma'; valid: step, level"):
        DeltaEncoder(0.1, mode="sigma")


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool])
def test_integer_series_are_refused_in_one_line(dtype):
    # uint8 frames 5 -> 3 made d = 254, an ON spike for a fall; int64 gave right signs but no fractional reference
    x = torch.tensor([[5], [3], [3], [9]]).to(dtype)
    for mode in ("step", "level"):
        with pytest.raises(ConfigError, match=rf"^delta_modulation needs a floating-point tensor; got {dtype}$"):
            delta_modulation(x, 1.0, mode=mode)
    with pytest.raises(ConfigError, match="^delta_modulation needs a floating-point tensor"):
        DeltaEncoder(1.0)(x.view(1, 4, 1), 4)  # [B, T', F]
    assert delta_modulation(x.float(), 1.0).flatten().tolist() == ([1, -1, 0, 1] if dtype != torch.bool else
                                                                    [1, 0, 0, 0])


def test_encoder_takes_the_first_steps_of_sequences_and_frames():
    enc = DeltaEncoder(0.1, mode="level")
    seq = torch.rand(2, 6, 5)  # [B, T', F]
    assert torch.equal(enc(seq, 4), delta_modulation(seq[:, :4].transpose(0, 1), 0.1, mode="level"))
    assert enc(torch.rand(2, 6, 2, 3, 3), 6).shape == (6, 2, 2, 3, 3)
    with pytest.raises(ConfigError, match="encoder 'delta' needs event frames"):
        enc(torch.rand(2, 3, 4, 4), 2)
    with pytest.raises(ConfigError, match="asked for T=7 steps but the samples hold 6"):
        enc(seq, 7)


@pytest.mark.parametrize("threshold", [math.inf, math.nan, True, "0.1", -0.5])
def test_a_threshold_that_is_no_finite_positive_number_is_refused_in_one_line(threshold):
    """threshold=inf built a DeltaEncoder that never spikes and True one of threshold 1, both silently; "0.1" raised
    TypeError ('>' between str and int)."""
    with pytest.raises(ConfigError, match="delta threshold must be > 0 and finite, got") as caught:
        DeltaEncoder(threshold)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("off_spikes", ["no", 2, None])
def test_off_spikes_that_is_no_bool_is_refused(off_spikes):
    """off_spikes="no" was silently read as true (``bool("no")``)."""
    with pytest.raises(ConfigError, match="delta off_spikes must be true or false"):
        DeltaEncoder(0.1, off_spikes=off_spikes)


def test_level_rule_reference_stays_theta_times_the_spike_count_over_long_series():
    """The documented bound ``|x_t - r_t| < theta`` for the reference a decoder rebuilds, ``r_t = theta sum s``
    (float64 here), on a float32 drift up to x = 200. Before: the encoder summed rounded ``r + theta`` steps, which
    drifted from ``theta n_t``: 1.029 thresholds apart after 4000 steps (1.22 at x = 1000)."""
    torch.manual_seed(0)
    theta = 0.1
    x = (torch.rand(4000, 16) * theta).cumsum(0)  # [T, B]: up to one threshold per step, so no lag builds up
    s = delta_modulation(x, theta, mode="level")
    rebuilt = theta * s.double().cumsum(0)
    assert float((x.double() - rebuilt).abs().max()) < theta * (1 + 1e-3)  # float32's own spacing at 200: 1.5e-5


def test_empty_series_and_a_0d_tensor():
    """An empty series is silent under both rules (the level rule raised IndexError); a 0-d tensor has no time axis
    (IndexError before)."""
    for mode in ("step", "level"):
        assert delta_modulation(torch.empty(0, 3), 0.1, mode=mode).shape == (0, 3)
        with pytest.raises(ConfigError, match=r"^delta_modulation needs a time-first series \[T, ...\]; got a 0-d"):
            delta_modulation(torch.tensor(1.0), 0.1, mode=mode)


@pytest.mark.parametrize("dtype, values, threshold", [(torch.bfloat16, [3 / 256, 3.0], 2.99),
                                                      (torch.float16, [1 / 1024, 2.0], 1.9995)])
@pytest.mark.parametrize("off", [True, False])
def test_step_rule_on_half_precision_compares_with_the_threshold_itself(dtype, values, threshold, off):
    """The step rule took the differences of a bfloat16 / float16 series in that dtype and compared them with the
    threshold rounded to it: a bfloat16 change of 2.988 (rounded to 2.984) met the threshold 2.99 (rounded to 2.984)
    and made a spike; a float16 change of 1.99902 met 1.9995. Now the rule sees the series' own values and the
    threshold in float32, as for a float32 series (no spike, or an OFF spike at the mirror image); the spikes stay in
    the series' dtype."""
    x = torch.tensor(values, dtype=dtype).view(2, 1)
    for sign in (1, -1):
        s = delta_modulation(sign * x, threshold, off_spikes=off)
        assert s.dtype == dtype
        assert torch.equal(s.float(), delta_modulation(sign * x.float(), threshold, off_spikes=off))
        assert s.abs().sum() == 0
