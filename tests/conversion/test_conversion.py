"""ANN-to-SNN conversion (sengupta2019): IF rate vs ReLU, SPIKE-NORM vs max-norm by hand, roles, ops."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from deepspike.analysis.monitor import NetworkMonitor
from deepspike.analysis.raster import record_raster
from deepspike.coding import rate_poisson
from deepspike.conversion import ChunkedIF, chunked_neurons, neuron_roles, temporal_carry
from deepspike.conversion.accuracy_sweep import sweep_accuracy
from deepspike.conversion.activation_peaks import ActivationPeaks
from deepspike.conversion.thresholds import model_based_thresholds, spike_norm
from deepspike.core.errors import ConfigError
from deepspike.layers.containers import ResidualBlock
from deepspike.methods import get_method
from deepspike.methods.weight_transfer import copy_ann_weights
from deepspike.models import create_architecture
from deepspike.models.spec import Architecture, Flatten, Linear


def test_if_rate_equals_relu_within_rate_coding_error():
    # One IF layer (reset by subtraction, threshold th) fed weighted Poisson spikes: th * rate -> relu(W x).
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 16, generator=g)  # input rates in [0, 1]
    w = torch.randn(6, 16, generator=g) * 0.4
    th, steps = 1.5, 4000
    spikes_in = rate_poisson(x, steps, generator=1)  # [T, 1, 16]
    out = ChunkedIF(th, "subtract")(spikes_in @ w.T)  # [T, 1, 6]
    rate = out.mean(dim=0)[0]
    relu = torch.relu(x @ w.T)[0]
    # Error: Poisson noise of the mean input, sigma = sqrt(sum_i w_i^2 x_i (1 - x_i) / T), plus the residual
    # membrane (< th) over T; for a negative drive, the early positive excursion of the random walk.
    sigma = torch.sqrt((w**2 * x * (1 - x)).sum(dim=1) / steps)
    tol = 5 * sigma + 2 * th / steps
    assert torch.all((th * rate - relu).abs() <= tol), (th * rate, relu, tol)
    assert (relu > 0).any() and (relu == 0).any()  # both regimes are exercised


def test_if_reset_to_zero_rate_by_hand():
    # Constant current a = 0.3, threshold 1: h = 0.3, 0.6, 0.9, 1.2 -> spike, reset: one spike per 4 steps.
    out = ChunkedIF(1.0, "zero")(torch.full((40, 1, 1), 0.3))
    assert out.sum().item() == 10  # rate 0.25 < relu 0.3: the reset-to-zero loss
    out = ChunkedIF(1.0, "subtract")(torch.full((40, 1, 1), 0.3))
    assert out.sum().item() == 12  # floor(0.3 * 40) = 12: subtraction keeps the remainder


def test_chunked_membrane_carries_over():
    x = torch.rand(30, 2, 5, generator=torch.Generator().manual_seed(3)) * 0.8
    neuron = ChunkedIF(1.0, "zero")
    whole = neuron(x)
    with temporal_carry(neuron):
        parts = torch.cat([neuron(x[:7]), neuron(x[7:19]), neuron(x[19:])])
    assert torch.equal(whole, parts)
    assert neuron.state is None and neuron.carry is None  # nothing is left behind after the block


def _two_layer(w1, w2, **options):
    """Flatten -> Linear(1) -> IF -> Linear(2) -> output IF, on a (1, 1, n) input; ``options``: the converted
    method's."""
    n = len(w1)
    arch = Architecture("two", (Flatten(), Linear(1), Linear(2, act=False)), (1, 1, n), 2)
    ann = get_method("ann").build(arch)
    with torch.no_grad():
        ann[1].weight.copy_(torch.tensor([w1]))
        ann[3].weight.copy_(torch.tensor(w2).view(2, 1))
    snn = get_method("converted", {"timesteps": 200, **options}).build(arch)
    copy_ann_weights(ann, snn)
    return arch, ann, snn


def test_spike_norm_on_hand_made_two_layer_case():
    # sengupta2019 section 5.1: inputs 0.5 and 1 with unit weights. The ANN's peak is 1.5, but the input of
    # rate 1 spikes every step and the one of rate 0.5 about every other step, so the weighted spike input
    # reaches 1 + 1 = 2 (P(never together in 200 steps) = 2^-200). Layer 1 then emits 0/1 spikes, so layer
    # 2 sees at most 0.7 * 1 = 0.7 (output weights 0.7 and 0.2).
    arch, ann, snn = _two_layer([1.0, 1.0], [0.7, 0.2])
    x = torch.tensor([[[[0.5, 1.0]]]])
    roles = neuron_roles(arch)
    assert roles == ["plain", "output"]
    spike = spike_norm(snn, x, roles, timesteps=200)
    assert spike == pytest.approx([2.0, 0.7])
    assert [n.threshold for n in chunked_neurons(snn)] == pytest.approx([2.0, 0.7])
    peaks = ActivationPeaks()
    peaks.update(ann, x)
    assert peaks.peaks() == pytest.approx([1.5, 1.05])  # relu(0.5 + 1) and 0.7 * 1.5
    # max-norm as thresholds with unscaled weights: th_1 = 1.5 / 1 (input scale), th_2 = 1.05 / 1.5 = 0.7
    assert model_based_thresholds(peaks.peaks(), roles, 1.0) == pytest.approx([1.5, 0.7])
    # SPIKE-NORM's first threshold is higher than max-norm's, as the paper's example says it should be.


def test_spike_norm_uses_signed_input_spikes():
    # A negative pixel sends -1 spikes: the weighted input peaks when only the positive inputs spike.
    arch, ann, snn = _two_layer([1.0, 1.0, 1.0], [0.7, 0.2])
    x = torch.tensor([[[[1.0, 1.0, -0.5]]]])
    th = spike_norm(snn, x, neuron_roles(arch), timesteps=200)
    assert th[0] == pytest.approx(2.0)  # 1 + 1 + 0 at the steps where the negative input is silent


def test_spike_norm_gives_a_layer_without_positive_input_threshold_one():
    """SPIKE-NORM (sengupta2019 Algorithm 1) sets th_l = the peak weighted spike input; a layer whose input is
    never positive (all-negative weights) keeps threshold 1 (it never fires either way)."""
    x = torch.tensor([[[[0.5, 1.0]]]])
    # hidden weights -1, -1: its input is <= 0 at every step, so it is silent; then the output sees only 0
    arch, _, snn = _two_layer([-1.0, -1.0], [0.7, 0.2])
    assert spike_norm(snn, x, neuron_roles(arch), timesteps=50) == [1.0, 1.0]
    assert [n.threshold for n in chunked_neurons(snn)] == [1.0, 1.0]
    # hidden as in the paper's example (peak 1 + 1 = 2); output weights -0.7, -0.2: its input is 0 or negative
    arch, _, snn = _two_layer([1.0, 1.0], [-0.7, -0.2])
    assert spike_norm(snn, x, neuron_roles(arch), timesteps=200) == pytest.approx([2.0, 1.0])


def test_channel_thresholds_of_a_silent_channel_by_hand():
    """Per-channel max-norm with spikes that carry their threshold: th = each channel's ANN peak; a channel that
    never exceeds 0 (all-negative weights) gets its layer's largest peak, an all-silent layer 1."""
    arch = Architecture("two", (Flatten(), Linear(2), Linear(2, act=False)), (1, 1, 2), 2)
    ann = get_method("ann").build(arch)
    with torch.no_grad():
        ann[1].weight.copy_(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]))
        ann[3].weight.copy_(torch.tensor([[0.5, 0.0], [-1.0, 0.0]]))
    peaks = ActivationPeaks(per_channel=True)
    peaks.update(ann, torch.tensor([[[[0.5, 1.0]]]]))
    # hidden: relu(0.5 + 1) = 1.5, relu(-1.5) = 0; output scores 0.5 * 1.5 = 0.75 and -1 * 1.5 = -1.5 (peak 0)
    assert peaks.peaks() == [[1.5, 0.0], [0.75, 0.0]]
    roles = neuron_roles(arch)
    thresholds = model_based_thresholds(peaks.peaks(), roles, 1.0, spike_value="threshold")
    assert thresholds == [[1.5, 1.5], [0.75, 0.75]]  # each silent channel takes its layer's largest peak
    silent_output = model_based_thresholds([[1.5, 0.0], [0.0, 0.0]], roles, 1.0, spike_value="threshold")
    assert silent_output == [[1.5, 1.5], [1.0, 1.0]]  # a layer with no positive channel: 1


def test_model_based_thresholds_by_hand():
    # plain chain: th_l = lambda_l / lambda_{l-1}, lambda_0 = input scale 2
    assert model_based_thresholds([4.0, 6.0, 3.0], ["plain", "plain", "output"], 2.0) == pytest.approx(
        [2, 1.5, 0.5]
    )
    roles = ["plain", "stem", "residual", "junction", "output"]
    # unity rule: residual stage at 1, the output scaled against the last balanced layer (lambda = 2)
    assert model_based_thresholds([2, 5, 7, 9, 4], roles, 1.0) == pytest.approx([2, 1, 1, 1, 2])
    assert model_based_thresholds([2, 5, 7, 9, 4], roles, 1.0, "balanced") == pytest.approx(
        [2, 2.5, 1.4, 9 / 7, 4 / 9]
    )
    # a silent layer (peak 0) gets threshold 1 and keeps the scale of the layer before it (2); with spikes that carry
    # their threshold, a silent layer's threshold is 1 as well
    plain = ["plain", "plain", "output"]
    assert model_based_thresholds([2.0, 0.0, 3.0], plain, 1.0) == pytest.approx([2, 1, 1.5])
    assert model_based_thresholds([2.0, 0.0, 3.0], plain, 1.0, spike_value="threshold") == [2.0, 1.0, 3.0]


def test_percentile_peaks_match_numpy():
    arch = Architecture("lin", (Flatten(), Linear(50), Linear(2, act=False)), (1, 1, 8), 2)
    ann = get_method("ann").build(arch)
    x = torch.randn(64, 1, 1, 8, generator=torch.Generator().manual_seed(1))
    peaks = ActivationPeaks(percentile=90.0)
    peaks.update(ann, x[:40])
    peaks.update(ann, x[40:])
    with torch.no_grad():
        hidden = torch.relu(ann[1](ann[0](x))).flatten().numpy()
    assert peaks.peaks()[0] == pytest.approx(np.percentile(hidden[hidden > 0], 90.0), rel=1e-5)
    full = ActivationPeaks()
    full.update(ann, x)
    assert full.peaks()[0] == pytest.approx(hidden.max(), rel=1e-6) and full.peaks()[0] > peaks.peaks()[0]


def test_no_negative_spikes_after_the_input_layer():
    arch = create_architecture(
        "sengupta_vgg_small", num_classes=10, input_shape=(1, 8, 8), blocks=[[4], [4]], hidden=[8]
    )
    snn = get_method("converted", {"timesteps": 30, "thresholds": [0.5] * 4}).build(arch)
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))  # mean-subtracted: both signs
    seen, inputs = [], []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o)) for m in chunked_neurons(snn)]
    hooks.append(snn.encoder.register_forward_hook(lambda m, i, o: inputs.append(o)))
    with torch.no_grad():
        snn(x)
    for h in hooks:
        h.remove()
    assert (inputs[0] == -1).any() and (inputs[0] == 1).any()  # the input layer carries signed spikes
    assert len(seen) == 4 and all(set(s.unique().tolist()) <= {0.0, 1.0} for s in seen)
    assert any(s.sum() > 0 for s in seen)


def test_resnet_roles_follow_the_paper():
    arch = create_architecture(
        "sengupta_resnet20", num_classes=10, input_shape=(1, 8, 8), width=0.25, blocks=[1, 1, 1]
    )
    # two plain pre-processing convs, the third stem conv feeds the first identity path, then per unit
    # the body neuron and the junction neuron, then the output layer
    assert neuron_roles(arch) == ["plain", "plain", "stem"] + ["residual", "junction"] * 3 + ["output"]
    snn = get_method("converted", {"timesteps": 5}).build(arch)
    assert len(chunked_neurons(snn)) == 10
    with pytest.raises(ConfigError, match="has 2 values but the network has 10 neuron layers"):
        get_method("converted", {"thresholds": [1.0, 2.0]}).build(arch)


def test_trace_and_forward_agree_and_chunking_is_memory_bounded():
    arch = create_architecture(
        "sengupta_vgg_small", num_classes=10, input_shape=(1, 8, 8), blocks=[[4], [4]], hidden=[8]
    )
    snn = get_method("converted", {"timesteps": 40, "thresholds": [0.3] * 4, "chunk_elements": 2000}).build(
        arch
    )
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    assert snn.chunk_size(3, 40) == 2000 // (3 * 4 * 8 * 8)  # 2 steps per chunk
    with torch.no_grad():
        torch.manual_seed(5)
        scores = snn.trace(x, 40, [10, 25, 40])
        torch.manual_seed(5)
        final = snn(x)
    assert torch.equal(scores[-1], final)
    counts = scores * torch.tensor([10.0, 25.0, 40.0]).view(3, 1, 1)  # spike counts: whole numbers, growing
    assert torch.allclose(counts, counts.round(), atol=1e-5) and torch.all(counts[1:] >= counts[:-1] - 1e-5)


def test_accumulate_and_spike_counts_by_hand():
    # Two-layer net, input [1, 0]: the first input spikes every step (1 event x 1 output = 1 AC per step),
    # the second never; the second layer does 2 ACs (2 outputs) per layer-1 spike.
    arch, ann, snn = _two_layer([1.0, 1.0], [0.7, 0.2])
    snn.encoder.scale = 1.0
    with torch.no_grad():
        sweep = sweep_accuracy(snn, [(torch.tensor([[[[1.0, 0.0]]]]), torch.tensor([0]))], 50, lambda s: None)
    assert list(sweep.accumulates) == ["body.1", "body.3"]  # named by the TimeDistributed wrappers
    first, second = sweep.accumulates.values()
    assert first == 50 and sweep.samples == 1
    layer1 = sweep.spikes["body.2"]
    assert layer1 == 50 and second == 2 * layer1  # threshold 1, input 1 per step: fires every step
    assert sweep.neurons == {"body.2": 1, "output": 2} and sweep.marks[-1] == 50


def test_a_membrane_readout_is_a_non_spiking_integrator_in_what_is_counted():
    # As test_accumulate_and_spike_counts_by_hand, read out by the output layer's membrane: the hidden neuron fires
    # at every step (50 spikes); the output neurons integrate 0.7 and 0.2 per step and never spike. Their update is
    # V_t = V_{t-1} + x_t, one AC per neuron and step (stbp's MembraneReadout), not an IF's 2 (add + threshold
    # test): per step 2 (hidden IF) + 2 x 1 = 4 ACs. Before, the output IF ran (threshold 1 on 0.7 per step: 35
    # spikes of output 0 counted) and was priced as one: 2 + 2 x 2 = 6 per step.
    arch, ann, snn = _two_layer([1.0, 1.0], [0.7, 0.2], readout="membrane")
    snn.encoder.scale = 1.0
    x, y = torch.tensor([[[[1.0, 0.0]]]]), torch.tensor([0])
    with torch.no_grad():
        sweep = sweep_accuracy(snn, [(x, y)], 50, lambda s: None)
        scores = snn.eval()(x, 50)
    assert scores.tolist()[0] == pytest.approx([0.7, 0.2])  # the mean current
    assert sweep.spikes["body.2"] == 50 and sweep.spikes["output"] == 0 and sweep.spikes_at[-1] == 50
    assert sweep.neurons == {"body.2": 1, "output": 0}  # the output IF layer does not run
    assert sweep.update_ops_per_step == (0.0, 4.0)
    with NetworkMonitor(snn) as monitor, torch.no_grad():
        snn(x, 50)
    activity = monitor.summary()
    assert activity["neuron_spikes_per_sample"] == 50 and activity["sparsity"] == 1.0
    assert (activity["update_macs_per_sample"], activity["update_acs_per_sample"]) == (0.0, 200.0)
    assert [layer["layer"] for layer in record_raster(snn, x)] == ["body.2"]  # as stbp's: no spiking layer
    # SPIKE-NORM still balances the output layer (its threshold is kept for exports that make it spike)
    assert spike_norm(snn, x, neuron_roles(arch), timesteps=200) == pytest.approx([1.0, 0.7])
    assert torch.equal(snn(x, 50), scores)  # and the scores do not depend on it


def test_sengupta_init_std():
    arch = create_architecture("sengupta_vgg_small", num_classes=10, blocks=[[64]], hidden=[32])
    torch.manual_seed(0)
    model = get_method("ann", {"init": "sengupta"}).build(arch)
    conv = model[0].weight  # 64 x 1 x 3 x 3: sigma = sqrt(2 / (9 * 64))
    assert conv.std().item() == pytest.approx(math.sqrt(2 / (9 * 64)), rel=0.1)
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)][0]  # k = 1, n = 32
    assert linear.weight.std().item() == pytest.approx(math.sqrt(2 / 32), rel=0.05)
    with pytest.raises(ConfigError, match="method.init"):
        get_method("ann", {"init": "xavier"})



def test_sengupta_init_residual_layers_use_the_smaller_std():
    """sengupta2019 7.1: sqrt(2)/(k^2 n) inside residual units, sqrt(2/(k^2 n)) for plain layers; with it a
    BN-free ResNet-34 starts with logits of order 1 (with the plain std they grow ~2x per unit, ~1e3)."""
    arch = create_architecture("sengupta_resnet34", num_classes=1000, input_shape=(3, 64, 64), width=0.25)
    torch.manual_seed(0)
    model = get_method("ann", {"init": "sengupta"}).build(arch)
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    inside = {id(c) for b in blocks for c in b.body.modules()}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    res = [c for c in convs if id(c) in inside and c.weight[0, 0].numel() == 9 and c.out_channels == 128]
    plain = [c for c in convs if id(c) not in inside][0]  # first pre-processing conv
    assert res and res[0].weight.std().item() == pytest.approx(math.sqrt(2) / (9 * 128), rel=0.05)
    n = plain.out_channels
    assert plain.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * n)), rel=0.1)
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    assert torch.isfinite(logits).all() and logits.abs().max() < 10

@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_fast_inference_path_matches_the_neuron_core(reset):
    x = torch.randn(25, 3, 7, generator=torch.Generator().manual_seed(4))
    neuron = ChunkedIF(0.8, reset)
    with torch.no_grad():
        fast = neuron(x)
    reference = neuron(x.requires_grad_())  # grad enabled: deepspike.neurons.neuron_multistep
    assert torch.equal(fast, reference.detach())
