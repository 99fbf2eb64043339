"""Plots of one's own net through the public API: what cannot be plotted is one line."""

import pytest
import torch
from torch import nn

from deepspike.analysis.plots import plot_raster, plot_traces
from deepspike.analysis.traces import record_traces
from deepspike.core.errors import ConfigError


@pytest.mark.parametrize("rasters, shown", [([], r"\[\]"), (None, "None"), ([1], r"\[1\]")])
def test_plot_raster_of_no_rasters_is_one_line(tmp_path, rasters, shown):
    """``record_raster`` of an ann net is ``[]``: plotting it was matplotlib's "Number of rows must be a positive
    integer, not 0"; None was "object of type 'NoneType' has no len()", [1] a TypeError. Nothing is written."""
    with pytest.raises(ConfigError, match=f"^no spike rasters to plot: .*an ann or TTFS net has none.*got {shown}$"):
        plot_raster(rasters, tmp_path / "r.png")
    assert not (tmp_path / "r.png").exists()


@pytest.mark.parametrize("traces, shown", [(None, "None"), ([], r"\[\]"), ([1], r"\[1\]")])
def test_plot_traces_of_an_ann_says_it_has_no_membrane(tmp_path, traces, shown):
    """``record_traces`` of an ann net is ``[]`` (no spiking neuron layer): plotting it said "every layer was
    skipped", as if layers had been traced and refused; None was "'NoneType' object is not iterable", [1] a
    TypeError."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert record_traces(net, torch.rand(1, 4)) == []
    want = f"^no membrane traces to plot: .*an ann net has no spiking neuron.*got {shown}$"
    with pytest.raises(ConfigError, match=want):
        plot_traces(traces, tmp_path / "t.png")
    assert not (tmp_path / "t.png").exists()
