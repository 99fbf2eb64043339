"""Plots of one's own net through the public API: what cannot be plotted is one line."""

import pytest

from deepspike.analysis.plots import plot_raster
from deepspike.core.errors import ConfigError


@pytest.mark.parametrize("rasters, shown", [([], r"\[\]"), (None, "None")])
def test_plot_raster_of_no_rasters_is_one_line(tmp_path, rasters, shown):
    """``record_raster`` of an ann net is ``[]``: plotting it was matplotlib's "Number of rows must be a positive
    integer, not 0"; None was "object of type 'NoneType' has no len()". Nothing is written."""
    with pytest.raises(ConfigError, match=f"^no spike rasters to plot: .*an ann or TTFS net has none.*got {shown}$"):
        plot_raster(rasters, tmp_path / "r.png")
    assert not (tmp_path / "r.png").exists()
