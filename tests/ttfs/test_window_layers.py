"""Modules of a windowed TTFS network: the window calibration and its range."""

import math
import re

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.ttfs.window import decode_offsets
from deepspike.ttfs.window_layers import WindowInput, WindowNeurons, WindowReadout


def _calibrated(module, values, margin):
    module.calibrating = True
    module(values)
    module.calibrate(margin)
    return float(module.window)


def test_the_values_are_the_clipped_relu_over_alpha_that_the_spikes_code():
    """alpha = 2, T = 3: x = clip(relu(a) / 2, 0, 3) (``ttfs.window``), the values the recorded offsets decode to;
    while calibrating, relu(a) / 2 unclipped (the largest of them sets the window)."""
    a = torch.tensor([[-1.0, 0.0, 0.5, 2.0, 3.0, 7.0]], dtype=torch.float64)
    layer = WindowNeurons(window=3.0, alpha=2.0).eval()
    layer.record = True
    x = layer(a)
    assert x.tolist() == [[0.0, 0.0, 0.25, 1.0, 1.5, 3.0]]
    assert torch.equal(decode_offsets(layer.last_offsets, 3.0), x)
    calibrating = WindowNeurons(alpha=2.0)
    calibrating.calibrating = True
    assert calibrating(a).tolist() == [[0.0, 0.0, 0.25, 1.0, 1.5, 3.5]]


def test_calibration_sets_margin_times_the_largest_value():
    assert _calibrated(WindowNeurons(alpha=2.0), torch.tensor([[-1.0, 3.0, 5.0]]), 1.5) == 1.5 * 5.0 / 2.0
    assert _calibrated(WindowReadout(alpha=2.0), torch.tensor([[-1.0, 3.0, 5.0]]), 1.5) == 1.5 * 5.0 / 2.0
    assert _calibrated(WindowInput(), torch.tensor([[-4.0, 1.0]]), 1.0) == 4.0  # |x|: both halves
    assert _calibrated(WindowNeurons(), torch.tensor([[-1.0, 0.0]]), 3.0) == 1.0  # nothing positive: 1


@pytest.mark.parametrize("margin, found", [(1e38, "3.79e+38"), (1e-320, "e-320"), (1e-40, "3.79e-40")])
def test_a_window_outside_float32s_range_is_refused(margin, found):
    """margin 1e38 (a valid method.margin / --margin) times a largest value 3.79 overflowed float32: a RuntimeError
    traceback from fill_; margin 1e-320 gave windows of 0 (every neuron saturated, SNN accuracy 0.10 against the
    ANN's 0.90 in a conversion, exit 0); 1e-40 a subnormal window."""
    module = WindowNeurons()
    message = f"window = margin .* = [^ ]*{re.escape(found)}[^ ]* is outside torch.float32's positive range"
    with pytest.raises(ConfigError, match=message):
        _calibrated(module, torch.tensor([[3.79, 1.0]]), margin)
    assert not module.calibrated  # left as it was


def test_the_range_is_that_of_the_windows_dtype():
    module = WindowNeurons().double()
    assert _calibrated(module, torch.tensor([[3.79]], dtype=torch.float64), 1e38) == pytest.approx(3.79e38)


@pytest.mark.parametrize("kwargs, message", [
    (dict(window=-1.0), "window must be a finite number > 0"),  # coded every positive value as -1
    (dict(window=0.0), "window must be a finite number > 0"),  # coded every value as 0
    (dict(window=math.inf), "window must be a finite number > 0"),  # nothing clipped, spikes at t = inf
    (dict(alpha=0.0), "alpha must be a finite number > 0"),  # a / 0: every positive value saturated
    (dict(alpha=math.nan), "alpha must be a finite number > 0"),  # NaN values
    (dict(alpha=-2.0), "alpha must be a finite number > 0"),
])
def test_nonsense_windows_and_ramps_are_refused(kwargs, message):
    """Before, WindowNeurons(window=-1) turned potentials [0.5, 2] into the values [-1, -1], alpha=0 into [1, 1]
    (window 1) and alpha=nan into NaN, all silently."""
    for cls in (WindowNeurons, WindowReadout):
        with pytest.raises(ConfigError, match=message):
            cls(**kwargs)
    if "window" in kwargs:
        with pytest.raises(ConfigError, match=message):
            WindowInput(**kwargs)


def test_calibrated_window_layers_break_no_compile_graph():
    """Each calibrated layer read its window back to Python in every forward (``calibrated``) and the neurons'
    clip to a float bound read it again: 4 graph breaks per forward of a two-layer net (ttfs_window, session 40's
    ``ttfs_graph_breaks.py`` after calibration), 0 now; the values are those of ``clip(a, 0, T)`` by hand."""
    net = torch.nn.Sequential(WindowInput(window=2.0), torch.nn.Linear(3, 4), WindowNeurons(window=0.5),
                              torch.nn.Linear(4, 2), WindowReadout(window=1.0))
    x = torch.tensor([[0.3, -2.5, 1.0]])
    torch._dynamo.reset()
    explained = torch._dynamo.explain(net)(x)
    torch._dynamo.reset()
    assert explained.graph_break_count == 0, [r.reason[:120] for r in explained.break_reasons]
    hidden = net[:2](x)
    assert torch.equal(net[2](hidden), hidden.clamp(0.0, 0.5))  # clip(a, 0, T), both bounds kept


def test_loading_an_uncalibrated_window_is_seen():
    """``calibrated`` remembers a set window; loading a checkpoint whose window is NaN must make the layer
    uncalibrated again (eval refuses it, training takes the window from the batch), as it did before."""
    module = WindowNeurons(window=2.0)
    assert module.calibrated
    module.load_state_dict(WindowNeurons().state_dict())
    assert not module.calibrated
    with pytest.raises(ConfigError, match="window not calibrated"):
        module.eval()(torch.tensor([[1.0]]))
    module.train()(torch.tensor([[3.0, 1.0]]))
    assert module.calibrated and float(module.window) == 3.0
    module.load_state_dict(WindowNeurons(window=0.25).state_dict())
    assert module.calibrated and float(module.window) == 0.25
