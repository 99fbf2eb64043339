"""Method ``converted``: the checks of its options (the thresholds that ``deepspike convert`` writes)."""

import re

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.neurons.chunked_if import ChunkedIF
from deepspike.training.pretrained import load_pretrained


@pytest.mark.parametrize("thresholds, shown", [([True, 1.0], "True"), ([1.0, [0.5, False]], "False"),
                                               ([1e39, 1.0], "1e+39"), ([0.0], "0.0"), ([1.0, []], "[]")])
def test_thresholds_that_are_no_float32_number_above_zero_are_refused_at_load(thresholds, shown):
    # a boolean passed the isinstance(int) check and ran as a threshold of 1.0; 1e39 passed as finite and failed only
    # when the net was built, in a message that did not name method.thresholds
    with pytest.raises(ConfigError, match=rf"^method.thresholds must be numbers > 0 .* got {re.escape(shown)}$"):
        get_method("converted", {"thresholds": thresholds})


def test_the_largest_float32_threshold_and_per_channel_lists_are_taken():
    o = get_method("converted", {"thresholds": [3.4e38, [0.5, 2], 1]}).options
    assert o.thresholds == [3.4e38, [0.5, 2], 1]


@pytest.mark.parametrize("steps", [{"timesteps": 10**11}, {"calib_timesteps": 100_001}])
def test_more_steps_than_a_conversion_simulates_are_refused_at_load(steps):
    """A converted run's config.yaml with ``method.timesteps: 100000000000`` (edited by hand) ran ``deepspike eval`` on
    without end: only ``deepspike convert`` checked the bound."""
    with pytest.raises(ConfigError, match=r"^method.timesteps and calib_timesteps must be at most 100,000 steps, got"):
        get_method("converted", steps)
    assert get_method("converted", {"timesteps": 100_000, "calib_timesteps": 100_000}).options.timesteps == 100_000


def test_a_per_channel_list_of_the_wrong_length_is_refused_when_the_net_is_built():
    """Before, ``deepspike eval`` of a hand-edited converted run failed at its first step with "2 channel thresholds
    for a step of shape (256, 4)", naming neither the layer nor method.thresholds."""
    arch = create_architecture("vgg", num_classes=3, input_shape=(2, 4, 4), blocks=[[4]], hidden=[], pool="avg")
    get_method("converted", {"thresholds": [[1.0] * 4, [1.0] * 3]}).build(arch)  # 4 conv channels, 3 classes
    with pytest.raises(ConfigError, match=r"^method.thresholds\[0\] lists 2 channel thresholds, but neuron layer 1 "
                                          r"\(output 4x4x4\) has 4 channels$"):
        get_method("converted", {"thresholds": [[1.0, 2.0], 1.0]}).build(arch)


@pytest.mark.parametrize("connect", ["and", "iand"])
def test_sew_product_junctions_are_refused_in_one_line(connect):
    """A SEW ``and`` junction multiplies the branches: the ANN computes ``a s`` of their activations, the SNN the
    product of their spike trains, whose rate is not the product of the rates. Before, it converted silently: a
    digits SEW-and ResNet (channel norm) agreed with its ANN's predictions on 72% of 32 test images at T = 4096,
    logits off by 1.1 (of 8.3); the same net with ``add`` agreed on all of them, off by 0.0014."""
    arch = create_architecture("resnet", num_classes=3, input_shape=(1, 4, 4), stem=2, stages=[2], blocks=[1],
                               connect=connect)
    message = rf"^model 'resnet' joins residual branches with SEW '{connect}'.*connect=add"
    with pytest.raises(ConfigError, match=message):
        get_method("converted", {}).build(arch)


def test_a_product_of_two_spike_trains_does_not_rate_code_the_product_but_a_sum_does():
    """Why ``and`` is refused and ``add`` is not, by hand: an IF neuron (threshold 1) on a constant 0.5 fires every
    second step, rate 1/2; the same train on both branches gives an ``and`` rate 1/2, not 1/4, and an ``add`` rate
    1 = 1/2 + 1/2."""
    train = ChunkedIF(1.0)(torch.full((8, 1, 1), 0.5))  # [T, B, F]
    assert train.flatten().tolist() == [0.0, 1.0] * 4
    assert float((train * train).mean()) == 0.5 != float(train.mean()) ** 2
    assert float((train + train).mean()) == 2 * float(train.mean())


def test_sew_add_junctions_convert():
    arch = create_architecture("resnet", num_classes=3, input_shape=(1, 4, 4), stem=2, stages=[2], blocks=[1],
                               connect="add")
    snn = get_method("converted", {"timesteps": 4}).build(arch)
    assert snn(torch.zeros(2, 1, 4, 4)).shape == (2, 3)


def test_a_converted_net_scores_float64_images_as_the_float32_ones():
    """A loaded converted run given float64 images stopped in its first conv ("Input type (double) and bias type
    (float) should be the same")."""
    net = load_pretrained("converted_qcfs_vgg_fmnist")[2]
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(net(x.double(), timesteps=4), net(x, timesteps=4))
