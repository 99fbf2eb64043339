"""Padded pooling (``Pool(kind, k, stride, padding)``) in the spec, every builder, the TTFS closed forms and
the event-driven simulation, and SpikingGoogLeNet's inception pool branch."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.fan_out import fan_out_map
from deepspike.layers.spiking_pool import SpikingAvgPool
from deepspike.methods import get_method
from deepspike.methods.build import default_pool
from deepspike.models import create_architecture
from deepspike.models.costs import count_macs, count_parameters
from deepspike.models.spec import Architecture, Conv, Flatten, Linear, Pool, output_shape, sequence_shape
from deepspike.ttfs import spike_times, spike_times_conv2d
from deepspike.ttfs.layers import TTFSMaxPool2d
from deepspike.ttfs.pooling import avg_pool_times, max_pool_times
from deepspike.ttfs.simulate import AvgPool, MaxPool, simulate
from deepspike.ttfs.simulate import Conv as SimConv
from deepspike.ttfs.simulate import Dense as SimDense

INF = math.inf


def _times(seed, shape, silent_above=1.7):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(*shape, generator=g, dtype=torch.float64) * 2
    t[t > silent_above] = INF
    return t


def _assert_same_spikes(closed, sim):
    closed = closed.detach().numpy()
    assert np.array_equal(np.isfinite(closed), np.isfinite(sim))
    fin = np.isfinite(sim)
    np.testing.assert_allclose(closed[fin], sim[fin], rtol=1e-5, atol=1e-9)


# --- spec -------------------------------------------------------------------------------------------------


def test_spec_output_shape_uses_padding():
    # H' = floor((H + 2p - k)/s) + 1: (5 + 2 - 3)//2 + 1 = 3, (6 + 2 - 3)//2 + 1 = 3; s = 1 keeps 5 x 6
    assert output_shape(Pool("max", 3, 2, 1), (2, 5, 6)) == (2, 3, 3)
    assert output_shape(Pool("avg", 3, 1, 1), (2, 5, 6)) == (2, 5, 6)
    assert output_shape(Pool("max", 2), (2, 5, 6)) == (2, 2, 3)  # unpadded default unchanged


@pytest.mark.parametrize("args", [("max", 3, 1, 2), ("max", 2, 2, 2), ("avg", 3, 1, -1), ("max", 0), ("max", 2, 0)])
def test_spec_rejects_bad_pool(args):
    with pytest.raises(ConfigError, match="Pool"):
        Pool(*args)


# --- ANN / generic path ------------------------------------------------------------------------------------


def test_default_pool_values():
    x = -torch.ones(1, 1, 2, 2)  # all negative: a zero pad would win a max, -inf padding must not
    assert torch.equal(default_pool(Pool("max", 3, 1, 1))(x), x)
    # count_include_pad: every 3x3 window over the 2x2 map holds the 4 real inputs: 4 * 1 / 9
    y = default_pool(Pool("avg", 3, 1, 1))(torch.ones(1, 1, 2, 2))
    torch.testing.assert_close(y, torch.full((1, 1, 2, 2), 4 / 9))


def _padded_arch(kind="max"):
    layers = (Conv(3, 3, padding=1), Pool(kind, 3, 2, 1), Conv(4, 1), Pool(kind, 3, 1, 1), Flatten(),
              Linear(5, act=False))
    return Architecture("padded", layers, (2, 7, 7), 5)  # 7 -> 4 -> 4: 4 * 4 * 4 = 64 features


@pytest.mark.parametrize("method, options", [("ann", {}), ("stbp", {"timesteps": 2}), ("spikebp", {"timesteps": 2}),
                                             ("converted", {"timesteps": 2})])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_rate_and_ann_methods_build_padded_pools(method, options, kind):
    torch.manual_seed(0)
    arch = _padded_arch(kind)
    if method == "converted" and kind == "max":  # no exact IF equivalent: refused in one line
        with pytest.raises(ConfigError, match="max pooling"):
            get_method(method, options).build(arch)
        return
    model = get_method(method, options).build(arch)
    assert model(torch.rand(2, *arch.input_shape)).shape == (2, 5)
    pools = [m for m in model.modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, SpikingAvgPool))]
    assert [p.padding for p in pools] == [1, 1]


def test_ann_feature_shapes_follow_spec():
    arch = _padded_arch()
    body = get_method("ann", {}).build(arch)
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[1:])))
             for m in body.modules() if isinstance(m, nn.MaxPool2d)]
    body(torch.rand(1, 2, 7, 7))
    for h in hooks:
        h.remove()
    assert seen == [sequence_shape(arch.layers[:2], (2, 7, 7)), sequence_shape(arch.layers[:4], (2, 7, 7))]
    assert seen == [(3, 4, 4), (4, 4, 4)]


def test_spiking_avg_pool_padding_is_silent_input():
    # one channel 2x2 of spikes every step, 3x3/s1/p1: each window sums the 4 real spikes / 9 = 0.444 < 0.75;
    # the membrane reaches 0.889 > 0.75 at step 2 (fires, reset), so the spikes are 0, 1, 0, 1.
    pool = SpikingAvgPool(3, 1, threshold=0.75, padding=1)
    out = pool(torch.ones(4, 1, 1, 2, 2))
    assert out[:, 0, 0].flatten(1).tolist() == [[0.0] * 4, [1.0] * 4, [0.0] * 4, [1.0] * 4]
    with pytest.raises(ConfigError, match="padding"):
        SpikingAvgPool(2, 2, padding=2)


# --- analysis and conversion counts --------------------------------------------------------------------------


def test_padded_avg_pool_counts_only_real_inputs():
    # 3x3 map, 3x3/s1/p1: real rows per window along one axis = 2, 3, 2 -> 7; 2-D 7 * 7 = 49 per channel
    arch = Architecture("p", (Pool("avg", 3, 1, 1), Flatten(), Linear(2, act=False)), (2, 3, 3), 2)
    assert count_macs(arch) == 2 * 49 + 18 * 2
    brute = fan_out_map(default_pool(arch.layers[0]), (2, 3, 3)).sum()  # windows covering each input, summed
    assert brute == 2 * 49
    fan = fan_out_map(default_pool(arch.layers[0]), (2, 3, 3))
    assert fan.sum() == 2 * 49 and fan[0, 0, 0] == 4 and fan[0, 1, 1] == 9  # corner in 4 windows, centre in 9


# --- TTFS closed forms -----------------------------------------------------------------------------------------


def _brute_min_pool(t, k, s, p):
    """Pad with +inf (no spike), take the minimum of every window: plain loops."""
    b, c, h, w = t.shape
    padded = torch.full((b, c, h + 2 * p, w + 2 * p), INF, dtype=t.dtype)
    padded[:, :, p:p + h, p:p + w] = t
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = torch.empty(b, c, ho, wo, dtype=t.dtype)
    for y in range(ho):
        for x in range(wo):
            out[:, :, y, x] = padded[:, :, y * s:y * s + k, x * s:x * s + k].amin(dim=(2, 3))
    return out


@pytest.mark.parametrize("k, s, p", [(3, 1, 1), (3, 2, 1), (2, 2, 1), (5, 2, 2), (3, 2, 0)])
def test_ttfs_max_pool_equals_brute_force(k, s, p):
    t = _times(1, (2, 3, 7, 6), silent_above=1.2)
    t[0, 0] = INF  # a wholly silent channel stays silent (padding never spikes)
    got = max_pool_times(t, k, s, p)
    torch.testing.assert_close(got, _brute_min_pool(t, k, s, p), rtol=0, atol=0)
    torch.testing.assert_close(TTFSMaxPool2d(k, s, p)(t), got, rtol=0, atol=0)
    assert torch.isinf(got[0, 0]).all()


def test_ttfs_max_pool_gradient_goes_to_earliest_real_input():
    t = torch.tensor([[[[0.5, 0.2], [0.9, INF]]]], dtype=torch.float64, requires_grad=True)
    out = max_pool_times(t, 3, 1, 1)  # every window holds the whole 2x2 map: all outputs = 0.2
    assert out.detach().flatten().tolist() == [0.2] * 4
    out.sum().backward()
    assert t.grad.flatten().tolist() == [0.0, 4.0, 0.0, 0.0]


@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
def test_padded_pools_in_a_net_match_event_simulation(kernel):
    g = torch.Generator().manual_seed(3)
    t = _times(3, (2, 2, 6, 6), silent_above=1.8)
    w1 = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64) * 0.2 + 0.12
    b1 = torch.randn(3, generator=g, dtype=torch.float64) * 0.2
    w2 = torch.randn(4, 3, 1, 1, generator=g, dtype=torch.float64) * 0.3 + 0.4
    w3 = torch.randn(3, 4 * 3 * 3, generator=g, dtype=torch.float64) * 0.3 + 0.2
    h1 = spike_times_conv2d(t, w1, b1, padding=1, kernel=kernel)  # [2, 3, 6, 6]
    h2 = max_pool_times(h1, 3, 1, 1)  # inception pool branch: [2, 3, 6, 6]
    h3 = spike_times_conv2d(h2, w2, None, kernel=kernel)  # pool projection 1x1: [2, 4, 6, 6]
    h4 = max_pool_times(h3, 3, 2, 1)  # GoogLeNet's stage pool: [2, 4, 3, 3]
    out = spike_times(h4.reshape(2, -1), w3, kernel=kernel)  # [2, 4, 3, 3] -> [2, 36] -> [2, 3]
    layers = [SimConv(w1, b1, 1, 1), MaxPool(3, 1, 1), SimConv(w2), MaxPool(3, 2, 1), SimDense(w3)]
    sims = simulate(t, layers, kernel=kernel, return_all=True)
    assert np.isfinite(sims[0]).mean() > 0.3 and np.isfinite(sims[-1]).any()
    for closed, sim in zip([h1, h2, h3, h4, out], sims):
        _assert_same_spikes(closed, sim)


@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
def test_padded_avg_pool_matches_event_simulation(kernel):
    t = _times(5, (2, 2, 5, 5), silent_above=1.9)  # 3x3 windows: N = 9, weights theta/8 (exact in float)
    closed = avg_pool_times(t, 3, 2, 1, kernel=kernel)  # [2, 2, 3, 3]
    sim = simulate(t, [AvgPool(3, 2, 1)], kernel=kernel)
    _assert_same_spikes(closed, sim)
    if kernel == "exp":  # N - 1 real inputs sum to theta at most: every window touching the padding is silent
        border = torch.ones(3, 3, dtype=torch.bool)
        border[1, 1] = False
        assert torch.isinf(closed[:, :, border]).all()
        window = t[:, :, 1:4, 1:4].flatten(2)  # the centre window (rows/cols 1..3), all real
        want = torch.logsumexp(window, dim=2)  # tau = 1: t_out = log sum_i e^{t_i} (+inf if one is silent)
        assert torch.isfinite(want).any()
        torch.testing.assert_close(closed[:, :, 1, 1], want, rtol=1e-12, atol=0)
    else:
        assert np.isfinite(sim).mean() > 0.5


def test_ttfs_pool_functions_reject_bad_padding():
    with pytest.raises(ConfigError, match="padding"):
        max_pool_times(torch.zeros(1, 1, 4, 4), 2, 1, 2)
    with pytest.raises(ConfigError, match="padding"):
        avg_pool_times(torch.zeros(1, 1, 4, 4), 3, 1, 2)
    with pytest.raises(ConfigError, match="padding"):
        simulate(np.zeros((1, 1, 4, 4)), [MaxPool(2, 1, 2)])


def test_ttfs_refuses_padded_avg_pool_with_exp_kernel_but_relpsp_builds():
    arch = _padded_arch("avg")
    with pytest.raises(ConfigError, match=r"ttfs/stdbp with kernel exp cannot build Pool\(kind='avg'"):
        get_method("ttfs", {}).build(arch)
    model = get_method("stdbp", {}).build(arch)  # relpsp: the average neuron fires on the real inputs
    assert model(torch.rand(2, *arch.input_shape)).shape == (2, 5)


# --- SpikingGoogLeNet ---------------------------------------------------------------------------------------------


def test_googlenet_spec_shapes_and_weights():
    arch = create_architecture("zhou2021_googlenet", num_classes=1000)
    pools = [layer for layer in arch.layers if isinstance(layer, Pool)]
    assert pools[:-1] == [Pool("max", 3, 2, 1)] * 4 and pools[-1] == Pool("avg", 7)
    assert sequence_shape(arch.layers[:-4], arch.input_shape) == (1024, 7, 7)  # before the global pool
    branch = arch.layers[5].branches[3]  # inception 3a: 3x3/s1/p1 max pool -> 1x1 projection (32)
    assert branch == (Pool("max", 3, 1, 1), Conv(32, 1))
    # torchvision's GoogLeNet (aux heads off) has 6,624,904 parameters: minus its batch-norm (2 per channel of
    # 7,280 conv channels = 14,560) and FC bias (1,000), plus the 5x5 branches it builds as 3x3
    # (16 extra taps * sum c5r*c5 = 16 * 23,808 = 380,928) gives our bias-free 6,990,272.
    assert count_parameters(arch) == 6_624_904 - 14_560 - 1_000 + 380_928 == 6_990_272


def test_googlenet_builds_for_ttfs_and_runs_at_64px():
    torch.manual_seed(0)
    arch = create_architecture("zhou2021_googlenet", num_classes=10, input_shape=(3, 64, 64), width=1 / 16)
    model = get_method("ttfs", {}).build(arch)
    pools = [m for m in model.modules() if isinstance(m, TTFSMaxPool2d)]
    assert len(pools) == 4 + 9 and all(p.padding == 1 for p in pools)  # 4 stage pools, 1 per inception block
    out = model(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 10) and not torch.isnan(out).any()
