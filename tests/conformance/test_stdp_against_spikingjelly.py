"""Trace STDP (``layers.stdp_rule``) against SpikingJelly 2.0's functional STDP steps (run by ``make test-nir``, whose
venv has SpikingJelly): the same weight change for Linear, Conv2d and Conv1d synapses over whole spike sequences.

SpikingJelly's ``stdp_linear_step`` / ``stdp_conv2d_step`` / ``stdp_conv1d_step`` take one step at a time, decay
their traces by ``1 - 1/tau`` and return ``f_post(W) * LTP - f_pre(W) * LTD`` summed over the batch; stepping them
over T with ``tau = 1 / (1 - lambda)``, ``f_post(W) = eta_plus (w_max - W)`` and ``f_pre(W) = eta_minus (W - w_min)``
(soft bounds) or constants (hard bounds) and summing gives ``B P`` times our step, the mean over samples and output
positions (away from the bounds, where SpikingJelly does not clip). SpikingJelly pads a convolution's input itself
and needs ``groups = 1``, ``dilation = 1``; tests/layers/test_stdp_rule.py checks the other cases against explicit
loops.
"""

import pytest
import torch
from torch import nn

from conformance.conftest import require
from deepspike.layers.stdp_rule import StdpRule, apply_stdp, stdp_correlations

T, B = 6, 3


def _theirs(synapse, pre, post, rule):
    """The summed SpikingJelly steps, float64."""
    require("spikingjelly", "make test-nir installs SpikingJelly")
    import torch.nn.functional as F
    from spikingjelly.activation_based.functional import learning

    def f_post(w):
        return rule.rate_plus * (rule.w_max - w) if rule.bounds == "soft" else torch.full_like(w, rule.rate_plus)

    def f_pre(w):
        return rule.rate_minus * (w - rule.w_min) if rule.bounds == "soft" else torch.full_like(w, rule.rate_minus)

    if isinstance(synapse, nn.Linear):
        step, kwargs = learning.stdp_linear_step, {}
    else:
        step = learning.stdp_conv2d_step if isinstance(synapse, nn.Conv2d) else learning.stdp_conv1d_step
        kwargs = {"stride": synapse.stride}
        pad = [p for p in reversed(synapse.padding) for _ in range(2)]
        pre = F.pad(pre, pad)
    weight = synapse.weight.detach().double()
    traces = (torch.zeros_like(pre[0]), torch.zeros_like(post[0]))
    total = torch.zeros_like(weight)
    for t in range(T):
        delta, traces = step(pre[t], post[t], traces, weight, tau_pre=1 / (1 - rule.decay_pre),
                             tau_post=1 / (1 - rule.decay_post), f_pre=f_pre, f_post=f_post, **kwargs)
        total += delta
    return total


def _ours(synapse, pre, post, rule):
    """Our step times B P (float64 throughout): the sums divided by 1 instead of by B P."""
    w = synapse.weight.detach().double().clone()
    apply_stdp(w, *stdp_correlations(pre, post, synapse, rule), 1.0, rule)
    return w - synapse.weight.detach().double()


@pytest.mark.parametrize("bounds", ["soft", "hard"])
@pytest.mark.parametrize("synapse, sample", [
    (nn.Linear(7, 5, bias=False), (7,)),
    (nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False), (3, 6, 5)),
    (nn.Conv2d(2, 3, (2, 3), bias=False), (2, 6, 5)),
    (nn.Conv1d(3, 4, 3, padding=2, bias=False), (3, 8)),
], ids=["linear", "conv2d_stride_pad", "conv2d_rect", "conv1d_pad"])
def test_same_weight_change_as_spikingjelly(synapse, sample, bounds):
    torch.manual_seed(0)
    rule = StdpRule(decay_pre=0.6, decay_post=0.3, rate_plus=1e-3, rate_minus=2e-3, bounds=bounds,
                    w_min=-2.0, w_max=2.0)
    synapse = synapse.double()
    with torch.no_grad():
        synapse.weight.uniform_(-0.5, 0.5)
    pre = (torch.rand(T, B, *sample) < 0.4).double()
    post = (torch.rand(T, B, *synapse(pre[0]).shape[1:]) < 0.3).double()
    theirs = _theirs(synapse, pre, post, rule)
    ours = _ours(synapse, pre, post, rule)
    assert theirs.abs().max() > 1e-4
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-12)
