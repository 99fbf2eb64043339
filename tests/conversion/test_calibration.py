"""Threshold balancing of a converted network (``conversion.calibration``) on a hand-made residual chain."""

import numpy as np
import pytest
import torch

from conversion.residual_chain import residual_chain
from deepspike.conversion import calibration, neuron_roles
from deepspike.conversion.calibration import balance_thresholds
from deepspike.core.errors import ConfigError
from deepspike.layers.qcfs import QCFS
from deepspike.methods import get_method
from deepspike.methods.converted import ConvertedOptions
from deepspike.methods.weight_transfer import copy_ann_weights
from deepspike.models import create_architecture
from deepspike.models.spec import Architecture, Flatten, Linear


def test_threshold_valued_spikes_balance_the_residual_stage_even_under_the_unity_rule():
    """A spike that carries its threshold is in the ANN's units, so SPIKE-NORM balances every layer whatever
    ``residual`` says. One pixel 1 (spikes every step) -> stem (w = 2) -> residual unit (body w = 3, identity
    shortcut) -> output (w = 0.5); by hand each layer's largest weighted input is its ANN activation: stem 2,
    body 3 x 2 = 6, junction 6 + 2 = 8, output 0.5 x 8 = 4 (the unity rule would give the stage 1, 1, 1)."""
    options = {"timesteps": 20, "calib_timesteps": 20, "norm": "spike", "residual": "unity", "spike_value": "threshold"}
    ann, snn, arch = residual_chain(options)
    thresholds = balance_thresholds(snn, ann, torch.ones(1, 1, 1, 1), neuron_roles(arch), ConvertedOptions(**options),
                                    seed=0, log=lambda s: None)
    assert thresholds == pytest.approx([2.0, 6.0, 8.0, 4.0])


def _two_layer(options: dict):
    """``(ann, snn, arch)``: two pixels -> 3 hidden ReLUs -> 2 outputs, bias-free, weights by hand."""
    arch = Architecture("two", (Flatten(), Linear(3), Linear(2, act=False)), (1, 1, 2), 2)
    ann = get_method("ann").build(arch).eval()
    with torch.no_grad():
        ann[1].weight.copy_(torch.tensor([[1.0, 0.5], [0.2, 1.0], [-1.0, 0.3]]))
        ann[3].weight.copy_(torch.tensor([[1.0, -0.5, 0.2], [0.3, 0.4, 1.0]]))
    snn = get_method("converted", options).build(arch)
    copy_ann_weights(ann, snn)
    return ann, snn.eval(), arch


@pytest.mark.parametrize(("encoding", "first"), [("poisson", 3.1 / 3.0), ("direct", 3.1)])
def test_max_norm_with_unit_spikes_scales_the_first_threshold_by_the_input_the_encoder_sends(encoding, first):
    """Images [2, 1], [0.5, 3], [1, 1] (c = 3): hidden ReLUs [2.5, 1.4, 0], [2, 3.1, 0.4], [1.5, 1.2, 0] (lambda_1 =
    3.1), outputs [1.8, 1.31], [0.53, 2.24], [0.9, 0.93] (lambda_out = 2.24). Poisson input sends |x| / c, so
    th_1 = lambda_1 / c; direct input sends x itself, so th_1 = lambda_1. Either way th_out = lambda_out / lambda_1 and
    at large T the output rates are the ANN's outputs / lambda_out. Before, direct input also got lambda_1 / c: its
    hidden layer fired nearly every step and the first image's scores came out [0.69, 0.97] for [0.80, 0.58]."""
    options = {"timesteps": 4000, "norm": "max", "encoding": encoding, "spike_value": "one", "reset": "subtract",
               "input_scale": 3.0}
    ann, snn, arch = _two_layer(options)
    x = torch.tensor([[2.0, 1.0], [0.5, 3.0], [1.0, 1.0]]).reshape(3, 1, 1, 2)
    thresholds = balance_thresholds(snn, ann, x, neuron_roles(arch), ConvertedOptions(**options), seed=0,
                                    log=lambda s: None)
    assert thresholds == pytest.approx([first, 2.24 / 3.1])
    with torch.no_grad():
        assert torch.allclose(snn(x), ann(x) / 2.24, atol=0.02)


def test_qcfs_norm_refuses_a_trained_threshold_at_or_below_zero():
    """A QCFS lambda trained to -0.5 makes the layer output lambda clip(floor(x L / lambda + 1/2) / L, 0, 1) <= 0
    (e.g. -0.5 for x = -1 at L = 4), which no IF neuron reproduces; --norm qcfs took it for a silent layer and set
    threshold 1.0 in its place (a net unrelated to the ANN)."""
    options = {"timesteps": 4, "norm": "qcfs", "encoding": "direct", "spike_value": "threshold", "reset": "subtract",
               "initial_membrane": 0.5, "readout": "membrane", "signed": True}
    arch = Architecture("two", (Flatten(), Linear(3), Linear(2, act=False)), (1, 1, 2), 2)
    ann = get_method("ann", {"activation": "qcfs", "levels": 4}).build(arch).eval()
    qcfs_layer = next(m for m in ann.modules() if isinstance(m, QCFS))
    with torch.no_grad():
        qcfs_layer.threshold.fill_(-0.5)
        assert qcfs_layer(torch.tensor([-1.0])).item() == pytest.approx(-0.5)  # by hand: floor(8 + 0.5) = 8 -> 4
    snn = get_method("converted", options).build(arch).eval()
    x = torch.tensor([[2.0, 1.0], [0.5, 3.0]]).reshape(2, 1, 1, 2)
    with pytest.raises(ConfigError, match=r"QCFS layer 1 has a trained threshold lambda = -0.5 <= 0"):
        balance_thresholds(snn, ann, x, neuron_roles(arch), ConvertedOptions(**options), seed=0, log=lambda s: None)


def _by_hand_peaks(ann: torch.nn.Sequential, x: torch.Tensor, norm: str, percentile: float) -> list:
    """Reference: the ANN's layers one by one on all of ``x`` at once; per ReLU (and the output) the largest value
    >= 0, its largest per channel, or numpy's percentile of its positive values."""
    outputs, y = [], x
    with torch.no_grad():
        for layer in ann:
            y = layer(y)
            if isinstance(layer, torch.nn.ReLU):
                outputs.append(y)
    outputs.append(y)
    if norm == "percentile":
        return [float(np.percentile(o[o > 0].numpy(), percentile)) for o in outputs]
    if norm == "channel":
        return [o.transpose(0, 1).reshape(o.shape[1], -1).amax(dim=1).clamp(min=0).tolist() for o in outputs]
    return [max(float(o.max()), 0.0) for o in outputs]


@pytest.mark.parametrize("norm", ["max", "percentile", "channel"])
def test_calibration_runs_the_ann_in_batches_with_the_thresholds_of_one_pass(norm, monkeypatch):
    """600 images: the ANN sees batches of 256, 256 and 88 (before: one pass of 600, holding every layer's activations
    of all images at once), and the thresholds (spikes that carry their threshold: th = the peak) equal those of one
    pass over all 600 images, and the by-hand peaks (numpy's percentile for ``percentile``), bit for bit."""
    arch = create_architecture("sengupta_vgg_small", num_classes=10, input_shape=(1, 8, 8), blocks=[[4], [4]],
                               hidden=[8])
    torch.manual_seed(0)
    ann = get_method("ann").build(arch).eval()
    options = {"timesteps": 4, "norm": norm, "spike_value": "threshold", "percentile": 97.5}
    x = torch.randn(600, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    sizes = []
    ann.register_forward_pre_hook(lambda module, args: sizes.append(len(args[0])))

    def thresholds() -> list:
        snn = get_method("converted", options).build(arch)
        return balance_thresholds(snn, ann, x, neuron_roles(arch), ConvertedOptions(**options), seed=0,
                                  log=lambda s: None)

    batched = thresholds()
    assert sizes == [256, 256, 88]
    monkeypatch.setattr(calibration, "CALIB_BATCH", len(x))
    assert thresholds() == batched and sizes[3:] == [600]
    assert batched == _by_hand_peaks(ann, x, norm, 97.5) and all(batched)
