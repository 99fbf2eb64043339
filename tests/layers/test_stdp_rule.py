"""The trace STDP rule (layers.stdp_rule) against hand-computed values and explicit loops over steps, samples,
positions and synapse pairs."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.stdp_rule import StdpRule, apply_stdp, check_plastic, correlation, spike_trace, stdp_correlations


def test_trace_takes_each_step_spike_before_it_is_read():
    s = torch.tensor([1.0, 0.0, 1.0, 0.0])[:, None]  # [T, B=1]
    assert spike_trace(s, 0.5)[:, 0].tolist() == [1.0, 0.5, 1.25, 0.625]
    assert spike_trace(s, 0.0)[:, 0].tolist() == s[:, 0].tolist()


def test_one_pair_by_hand():
    """A presynaptic spike at t = 0 and a postsynaptic one at t = 2, decays 0.5: potentiation by x_2 = 0.25, no
    depression (the postsynaptic trace is 0 when the presynaptic spike comes)."""
    pre = torch.tensor([1.0, 0.0, 0.0])[:, None, None]  # [T, B, 1]
    post = torch.tensor([0.0, 0.0, 1.0])[:, None, None]
    rule = StdpRule(0.5, 0.5, rate_plus=0.1, rate_minus=0.2, bounds="soft", w_min=-1.0, w_max=1.0)
    ltp, ltd = stdp_correlations(pre, post, nn.Linear(1, 1, bias=False), rule)
    assert ltp.item() == 0.25 and ltd.item() == 0.0
    w = torch.tensor([[0.5]])
    apply_stdp(w, ltp, ltd, 1, rule)
    assert w.item() == pytest.approx(0.5 + 0.1 * (1.0 - 0.5) * 0.25)
    # the reverse order depresses: post at 0, pre at 2 -> LTD = y_2 = 0.25 (and no LTP)
    ltp, ltd = stdp_correlations(post, pre, nn.Linear(1, 1, bias=False), rule)  # pre at t = 2, post at t = 0
    assert ltp.item() == 0.0 and ltd.item() == 0.25
    w = torch.tensor([[0.5]])
    apply_stdp(w, ltp, ltd, 1, rule)
    assert w.item() == pytest.approx(0.5 - 0.2 * (0.5 + 1.0) * 0.25)


def test_coincident_spikes_count_both_ways():
    one = torch.ones(1, 1, 1)
    ltp, ltd = stdp_correlations(one, one, nn.Linear(1, 1, bias=False), StdpRule())
    assert ltp.item() == 1.0 and ltd.item() == 1.0


def _pairs_by_loop(post, pre):
    """sum_{t,b} post[t,b,i] pre[t,b,j] by explicit loops."""
    out = torch.zeros(post.shape[-1], pre.shape[-1], dtype=torch.float64)
    for t in range(post.shape[0]):
        for b in range(post.shape[1]):
            for i in range(post.shape[-1]):
                for j in range(pre.shape[-1]):
                    out[i, j] += post[t, b, i].double() * pre[t, b, j].double()
    return out


def test_linear_correlation_against_loops():
    g = torch.Generator().manual_seed(0)
    post, pre = (torch.rand(4, 3, 6, generator=g) < 0.4).float(), torch.rand(4, 3, 5, generator=g)
    got = correlation(post, pre, nn.Linear(5, 6))
    assert torch.allclose(got.double(), _pairs_by_loop(post, pre), atol=1e-6)


def _conv_correlation_by_positions(post, pre, conv):
    """sum over steps, samples and output positions of post[o, pos] * pre-patch[c, k] (im2col by F.unfold),
    group by group."""
    t, b = post.shape[:2]
    post, pre = post.flatten(0, 1).double(), pre.flatten(0, 1).double()
    if pre.dim() == 3:  # Conv1d: a height-1 image
        post, pre = post[:, :, None], pre[:, :, None]
        kernel, stride, padding, dilation = (1, *conv.kernel_size), (1, *conv.stride), (0, *conv.padding), \
            (1, *conv.dilation)
    else:
        kernel, stride, padding, dilation = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    cols = F.unfold(pre, kernel, dilation=dilation, padding=padding, stride=stride)  # [N, C*kh*kw, L]
    groups, c_in, c_out = conv.groups, pre.shape[1], post.shape[1]
    cols = cols.unflatten(1, (groups, -1))  # [N, G, C/G*k, L]
    outs = post.flatten(2).unflatten(1, (groups, -1))  # [N, G, O/G, L]
    w = torch.zeros(c_out, c_in // groups * kernel[0] * kernel[1], dtype=torch.float64)
    for n in range(t * b):
        for gi in range(groups):
            for pos in range(cols.shape[-1]):
                w[gi * (c_out // groups):(gi + 1) * (c_out // groups)] += torch.outer(outs[n, gi, :, pos],
                                                                                    cols[n, gi, :, pos])
    return w.view(conv.weight.shape)


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=2, dilation=2, groups=2),
    dict(kernel_size=(3, 1), stride=(1, 2), padding=(0, 1)),
])
def test_conv2d_correlation_against_positions(kwargs):
    g = torch.Generator().manual_seed(1)
    conv = nn.Conv2d(4, 6, bias=False, **kwargs)
    pre = (torch.rand(3, 2, 4, 7, 6, generator=g) < 0.3).float()
    post_shape = conv(pre[0]).shape[1:]
    post = (torch.rand(3, 2, *post_shape, generator=g) < 0.3).float()
    got = correlation(post, spike_trace(pre, 0.6), conv)
    want = _conv_correlation_by_positions(post, spike_trace(pre, 0.6), conv)
    assert torch.allclose(got.double(), want, atol=1e-5)


def test_conv1d_correlation_against_positions():
    g = torch.Generator().manual_seed(2)
    conv = nn.Conv1d(3, 5, kernel_size=3, stride=2, padding=1, bias=False)
    pre = torch.rand(4, 2, 3, 9, generator=g)
    post = (torch.rand(4, 2, 5, conv(pre[0]).shape[-1], generator=g) < 0.5).float()
    assert torch.allclose(correlation(post, pre, conv).double(), _conv_correlation_by_positions(post, pre, conv),
                          atol=1e-5)


def test_hard_bounds_add_and_clip():
    rule = StdpRule(rate_plus=1.0, rate_minus=0.5, bounds="hard", w_min=-0.2, w_max=0.3)
    w = torch.tensor([0.0, 0.1, 0.2])
    apply_stdp(w, torch.tensor([0.2, 4.0, 0.0]), torch.tensor([0.0, 0.0, 4.0]), 2, rule)
    assert w.tolist() == pytest.approx([0.1, 0.3, -0.2])


def test_soft_bounds_scale_by_the_distance_to_the_bound():
    rule = StdpRule(rate_plus=0.5, rate_minus=0.5, bounds="soft", w_min=0.0, w_max=1.0)
    w = torch.tensor([0.2, 0.8])
    apply_stdp(w, torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0]), 1, rule)
    assert w.tolist() == pytest.approx([0.6, 0.9])  # 0.2 + 0.5*0.8, 0.8 + 0.5*0.2
    w = torch.tensor([0.5])
    apply_stdp(w, torch.tensor([100.0]), torch.tensor([0.0]), 1, rule)  # an overshooting step stops at the bound
    assert w.item() == 1.0


@pytest.mark.parametrize("bounds, expected", [("hard", [1.0, 1.0]), ("soft", [1.0, -1.0])])
def test_rates_at_float32_s_limit_step_to_a_bound_not_to_nan(bounds, expected):
    """rate 3e38 times a correlation of 4 overflowed float32: inf - inf made the weight NaN (the run then reported a
    divergence). The step is taken in float64, so the weight stops at the bound its sign points to: hard, 3e38 (4 - 2)
    > 0 for both; soft, at w = 0.5 the depression 3e38 * 1.5 * 2 outweighs the potentiation 3e38 * 0.5 * 4."""
    rule = StdpRule(rate_plus=3e38, rate_minus=3e38, bounds=bounds, w_min=-1.0, w_max=1.0)
    w = torch.tensor([0.0, 0.5])
    apply_stdp(w, torch.tensor([4.0, 4.0]), torch.tensor([2.0, 2.0]), 1, rule)
    assert w.dtype == torch.float32 and w.tolist() == expected


@pytest.mark.parametrize("kwargs, key", [
    (dict(decay_pre=1.0), "stdp_decay_pre"),
    (dict(decay_post=-0.1), "stdp_decay_post"),
    (dict(rate_plus=-1.0), "stdp_rate_plus"),
    (dict(rate_minus=float("nan")), "stdp_rate_minus"),
    (dict(bounds="clip"), "stdp_bounds"),
    (dict(w_min=1.0, w_max=1.0), "stdp_w_min/stdp_w_max"),
    (dict(w_min=-1e308, w_max=1e308), "stdp_w_min/stdp_w_max"),  # beyond float32: clamp_ would overflow
])
def test_bad_rule_values_are_one_line_errors(kwargs, key):
    with pytest.raises(ConfigError, match=key) as e:
        StdpRule(**kwargs)
    assert "\n" not in str(e.value)


def test_layers_the_rule_cannot_correlate_are_refused():
    with pytest.raises(ConfigError, match="Linear, Conv1d or Conv2d"):
        check_plastic(nn.Conv3d(1, 1, 1), "layer 0")
    with pytest.raises(ConfigError, match="zero padding"):
        check_plastic(nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular"), "layer 0")
    with pytest.raises(ConfigError, match="zero padding"):
        check_plastic(nn.Conv2d(1, 1, 3, padding="same"), "layer 0")
