"""Perturbations: weight noise at an SNR, spike deletion (rate nets), spike-time jitter (TTFS nets)."""

import math

import pytest
import torch
from torch import nn

from deepspike.analysis.perturb import SpikeDeletion, SpikeJitter, add_weight_noise, jitter_times
from deepspike.core.errors import ConfigError
from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.layers.event_frames import FrameEncoder
from deepspike.methods.converted_network import SignedPoissonEncoder
from deepspike.neurons import IF
from deepspike.neurons.chunked_if import ChunkedIF
from deepspike.neurons.multi_spike import MultiSpikeLIF
from deepspike.neurons.params import NeuronParams
from deepspike.ttfs.layers import TTFSAvgPool2d


@pytest.mark.parametrize("snr", [30.0, 10.0])
def test_weight_noise_hits_the_snr(snr):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(400, 300), nn.Conv2d(8, 16, 5))
    noisy = add_weight_noise(net, snr, torch.Generator().manual_seed(1))
    for clean, dirty in ((net[0].weight, noisy[0].weight), (net[1].weight, noisy[1].weight)):
        n = dirty - clean
        measured = 10 * math.log10(float(clean.detach().pow(2).mean() / n.detach().pow(2).mean()))
        assert measured == pytest.approx(snr, abs=0.15)  # 120k / 3.2k samples of the noise power
    assert torch.equal(net[1].bias, noisy[1].bias)  # biases are not synapses


class RateNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = lambda x, t: x.expand(t, *x.shape)
        self.neuron = IF(threshold=0.5)

    def forward(self, x):
        return self.neuron(x.expand(4, *x.shape)).sum(0)


def test_spike_deletion_drops_fraction_p():
    net = RateNet()
    x = torch.ones(2000, 10)  # every neuron fires at every step (input 1 > threshold 0.5)
    assert torch.equal(net(x), torch.full((2000, 10), 4.0))
    with SpikeDeletion(net, 0.3, torch.Generator().manual_seed(0)):
        kept = net(x).sum() / (2000 * 10 * 4)
    assert float(kept) == pytest.approx(0.7, abs=0.01)
    with SpikeDeletion(net, 1.0):
        assert net(x).sum() == 0
    assert net(x).sum() == 2000 * 10 * 4  # hooks gone after the block
    with pytest.raises(ConfigError):
        SpikeDeletion(net, 1.5)


def test_jitter_times():
    inf = float("inf")
    t = torch.tensor([0.0, 1.0, 2.0, inf] * 5000)
    out = jitter_times(t, 0.1, generator=torch.Generator().manual_seed(0))
    assert torch.isinf(out[3::4]).all()  # no spike stays no spike
    assert float((out[2::4] - 2.0).std()) == pytest.approx(0.1, rel=0.05)
    rel = jitter_times(t, 0.1, relative=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(rel[0::4], torch.zeros(5000))  # relative jitter of t = 0 is 0
    assert float((rel[2::4] / 2.0 - 1).std()) == pytest.approx(0.1, rel=0.05)
    assert torch.equal(jitter_times(t, 0.0), t)


class TTFSLayer(nn.Module):
    is_ttfs_layer = True

    def forward(self, t):
        return t + 1.0


def test_spike_jitter_hooks_every_ttfs_layer():
    net = nn.Sequential(TTFSLayer(), TTFSLayer())
    t = torch.tensor([[0.5, float("inf")]])
    assert torch.equal(net(t), torch.tensor([[2.5, float("inf")]]))
    with SpikeJitter(net, 0.2, generator=torch.Generator().manual_seed(3)):
        out = net(t)
    g = torch.Generator().manual_seed(3)
    e1, e2 = torch.randn(1, 2, generator=g), torch.randn(1, 2, generator=g)
    assert out[0, 0] == pytest.approx(1.5 + 0.2 * e1[0, 0].item() + 1 + 0.2 * e2[0, 0].item())
    assert math.isinf(out[0, 1])


def test_spike_jitter_moves_the_spikes_of_an_average_pools_neurons():
    """zhou2021's average pool is a neuron per window that fires its own spike (a layer of analyze's), so its spike
    is jittered as a TTFS neuron layer's: by hand, the window's time tau log sum exp(t_i / tau) = log(e^0 + e^0.5 +
    e^1 + e^1.5) plus 0.2 e. Before, the pool's neurons were left out and kept their unjittered time."""
    net = nn.Sequential(TTFSAvgPool2d(2))
    t = torch.tensor([[[[0.0, 0.5], [1.0, 1.5]]]])  # [B, C, H, W]: one window
    window = math.log(sum(math.exp(v) for v in (0.0, 0.5, 1.0, 1.5)))
    assert net(t).item() == pytest.approx(window)
    with SpikeJitter(net, 0.2, generator=torch.Generator().manual_seed(3)):
        out = net(t)
    e = torch.randn(1, 1, 1, 1, generator=torch.Generator().manual_seed(3)).item()
    assert out.item() == pytest.approx(window + 0.2 * e) and abs(e) > 0.1


class ThresholdValuedNet(nn.Module):
    """A converted net's neurons with ``spike_value: threshold``: each spike carries its channel's threshold."""

    def __init__(self):
        super().__init__()
        self.neuron = ChunkedIF(threshold=0.5, weighted=True)
        self.neuron.set_channel_thresholds([0.5, 0.25])

    def forward(self, x):
        return self.neuron(x)


def test_spike_deletion_drops_threshold_valued_spikes():
    net = ThresholdValuedNet()
    x = torch.full((4, 1000, 2), 0.6)  # [T, B, C]: above both thresholds, every neuron fires at every step
    full = net(x)
    assert set(full[..., 0].unique().tolist()) == {0.5} and set(full[..., 1].unique().tolist()) == {0.25}
    with SpikeDeletion(net, 1.0):
        assert net(x).abs().sum() == 0  # was: left as they were, {0.5, 0.25} taken for analog values
    with SpikeDeletion(net, 0.3, torch.Generator().manual_seed(0)):
        out = net(x)
    kept = (out != 0).float().mean()
    assert float(kept) == pytest.approx(0.7, abs=0.01)
    assert torch.equal(out[out != 0].unique(), torch.tensor([0.25, 0.5]))  # a kept spike keeps its value


def test_spike_deletion_leaves_analog_encoder_output():
    net = RateNet()
    net.encoder = nn.Identity()  # direct input: pixel values, not spikes
    x = torch.tensor([[[0.3, 0.7]]])  # [T, B, F], as an encoder gives
    with SpikeDeletion(net, 1.0):
        assert torch.equal(net.encoder(x), x)


class WeightedPoissonNet(nn.Module):
    """A converted net's input with ``--encoding poisson --spike-value threshold``: signed Poisson spikes that carry
    the input scale (2.5 here, the largest calibration pixel), ``[T, B, ...]`` values in {-2.5, 0, 2.5}."""

    def __init__(self):
        super().__init__()
        self.encoder = SignedPoissonEncoder(2.5, weighted=True)

    def forward(self, x):
        return self.encoder(x, 8, torch.Generator().manual_seed(0))


def test_spike_deletion_drops_weighted_input_spikes():
    """Every spike of the input is dropped with probability p: +-2.5 spikes were taken for analog input (only 0 and
    +-1 counted as spikes) and all 100% kept at p = 1."""
    net = WeightedPoissonNet()
    x = torch.linspace(-2.5, 2.5, 2000).reshape(1000, 2)
    full = net(x)
    assert set(full.unique().tolist()) == {-2.5, 0.0, 2.5} and (full != 0).sum() > 5000
    with SpikeDeletion(net, 1.0):
        assert net(x).abs().sum() == 0
    with SpikeDeletion(net, 0.3, torch.Generator().manual_seed(1)):
        out = net(x)
    assert float((out != 0).sum() / (full != 0).sum()) == pytest.approx(0.7, abs=0.02)
    assert torch.equal(out[out != 0], full[out != 0])  # a kept spike keeps its value and sign


def test_weight_noise_at_a_huge_snr_is_no_noise_not_an_overflow():
    """10.0 ** (4000 / 10) was an OverflowError traceback (``deepspike analyze --snr 4000``); sigma =
    rms(w) 10^(-SNR/20) = rms(w) 1e-200 is no noise in float32."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(30, 20))
    noisy = add_weight_noise(net, 4000.0, torch.Generator().manual_seed(1))
    assert torch.equal(noisy[0].weight, net[0].weight)


def test_weight_noise_past_float32_is_refused_in_one_line():
    """SNR -1000 dB: sigma = rms(w) 1e50 is past float32's range; the weights were silently infinite."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(30, 20))
    with pytest.raises(ConfigError, match=r"^weight noise at SNR -1000.0 dB \(--snr\) overflows float32 in layer "
                                          r"'0' \(sigma .*\); give a larger SNR$"):
        add_weight_noise(net, -1000.0, torch.Generator().manual_seed(1))
    noisy = add_weight_noise(net, -300.0, torch.Generator().manual_seed(1))  # sigma = rms 1e15: finite
    assert torch.isfinite(noisy[0].weight).all()


class FrameNet(nn.Module):
    """Event-camera input: frames of event counts ``[B, T', C, H, W]`` -> ``[T, B, C, H, W]`` (``FrameEncoder``)."""

    def __init__(self):
        super().__init__()
        self.encoder = FrameEncoder()

    def forward(self, x):
        return self.encoder(x, x.shape[1])


def test_spike_deletion_drops_each_event_of_count_frames():
    """A count of k is k input events (the activity recorder counts them so); each is dropped with probability p:
    k' ~ Binomial(k, 1 - p), mean k (1 - p) and variance k p (1 - p) per entry. Frames with counts above 1 were taken
    for analog input, and no event was deleted even at p = 1."""
    net = FrameNet()
    x = torch.randint(0, 4, (400, 5, 2, 4, 4), generator=torch.Generator().manual_seed(3)).float()
    full = net(x)
    with ActivityRecorder(net) as recorder:
        net(x)
    assert recorder.input_spikes == float(x.sum())  # the events the sweep deletes
    with SpikeDeletion(net, 1.0):
        assert net(x).sum() == 0
    with SpikeDeletion(net, 0.0):
        assert torch.equal(net(x), full)
    p = 0.3
    with SpikeDeletion(net, p, torch.Generator().manual_seed(0)):
        out = net(x)
    assert torch.equal(out, out.round()) and bool(((out >= 0) & (out <= full)).all())
    for k in (1, 2, 3):
        kept = out[full == k].double()  # thousands of entries of count k each
        assert float(kept.mean()) == pytest.approx(k * (1 - p), rel=0.03)
        assert float(kept.var()) == pytest.approx(k * p * (1 - p), rel=0.1)


def test_spike_deletion_leaves_frames_that_are_not_counts():
    """Normalised frames (not whole numbers >= 0) are analog input, as the activity recorder prices them."""
    net = FrameNet()
    x = torch.rand(4, 3, 2, 4, 4) - 0.5
    with SpikeDeletion(net, 1.0):
        assert torch.equal(net(x), FrameNet()(x))


def test_jitter_times_refuses_a_sigma_that_moves_a_time_out_of_float32():
    """A relative jitter of 1e30 on a time of 1e10 (itself jittered once already) overflows float32: before, the time
    became -inf/+inf and the next TTFS layer blamed the data; now a ConfigError names --jitter."""
    t = torch.tensor([1e10, -1e10, 1.0, float("inf")] * 50)
    for relative in (True, False):
        sigma = 1e30 if relative else 1e300
        with pytest.raises(ConfigError, match=r"jitter sigma=1e\+\d+ \(--jitter\) moves a spike time out of"):
            jitter_times(t, sigma, relative, torch.Generator().manual_seed(0))
    big = jitter_times(t, 1e20, True, torch.Generator().manual_seed(0))  # 1e10 * 1e20 e stays within float32
    assert torch.isfinite(big[:200:4]).all() and torch.isinf(big[3::4]).all()


class _ScaledSpikes(nn.Module):
    """An encoder whose spikes carry one magnitude per sample: ``[T, B, F]``, sample 0's in {0, 1}, sample 1's in
    {0, 2}."""

    def forward(self, x):
        return x.expand(3, *x.shape)


def test_spike_deletion_reads_encoder_spikes_by_the_recorders_rule():
    """One rule for both (``encoder_output_kind``): spikes of one magnitude per index of axis 1 are spikes. Hand
    count: 3 steps x (2 + 1) non-zero entries = 9 input spikes, all dropped at p = 1. Before, deletion asked for one
    magnitude overall and left all 9 in place (taken for analog input) while the recorder counted 9 spikes."""
    net = nn.Module()
    net.encoder = _ScaledSpikes()
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    with ActivityRecorder(net) as recorder, recorder.network_pass(2):
        full = net.encoder(x)
    assert recorder.input_spikes == 9.0 and not recorder.analog_input
    with SpikeDeletion(net, 1.0):
        assert net.encoder(x).abs().sum() == 0
    with SpikeDeletion(net, 0.0):
        assert torch.equal(net.encoder(x), full)


def test_count_frames_of_one_count_per_sample_are_counts_not_spikes():
    """Frames [B=1, T=2, F=3] whose every event entry is 2 pass ``is_spike_valued`` (one magnitude per sample), but a
    count of 2 is 2 events: 3 entries of 2 = 6 input events (was 3), and deletion draws Binomial(2, 1 - p) per entry
    (was all or none of the pair)."""
    net = FrameNet()
    x = torch.tensor([[[0.0, 2.0, 2.0], [2.0, 0.0, 0.0]]])
    with ActivityRecorder(net) as recorder:
        net(x)
    assert recorder.input_spikes == 6.0
    with SpikeDeletion(net, 0.5, torch.Generator().manual_seed(0)):
        out = net(x.expand(2000, 2, 3))
    assert out[out != 0].unique().tolist() == [1.0, 2.0]  # a pair can lose one event


def test_spike_deletion_drops_each_spike_of_a_multi_spike_count():
    """A multi-spike neuron's count of 3 (``neurons.multi_spike``) is 3 spikes, each dropped with probability p = 0.5:
    Binomial(3, 0.5) gives 1 and 2 with probability 3/8 each. The whole count was dropped (only 0 and 3, variance
    9/4 instead of 3/4)."""
    net = nn.Sequential(MultiSpikeLIF(NeuronParams(threshold=1.0, reset="subtract"), max_spikes=3))
    x = torch.full((1, 4000), 3.5).unsqueeze(0)  # [T=1, B, F]: floor(3.5) = 3 spikes everywhere
    assert torch.equal(net(x), torch.full_like(x, 3.0))
    with SpikeDeletion(net, 0.5, torch.Generator().manual_seed(0)):
        out = net(x)
    for k, share in ((0, 1 / 8), (1, 3 / 8), (2, 3 / 8), (3, 1 / 8)):
        assert float((out == k).double().mean()) == pytest.approx(share, abs=0.03)
