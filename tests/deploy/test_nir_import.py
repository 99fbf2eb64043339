"""``from_nir``'s own checks: the step ``dt`` (from the argument or the graph) is a positive finite number."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError

nir = pytest.importorskip("nir")
from deepspike.deploy import from_nir  # noqa: E402
from deploy.nir_files import replace, tiny_graph, write  # noqa: E402


@pytest.mark.parametrize("dt", [0.0, -1e-3, float("nan"), float("inf")])
def test_a_bad_dt_argument_is_refused(dt):
    with pytest.raises(ConfigError) as e:
        from_nir(tiny_graph(), dt=dt)
    assert str(e.value) == f"NIR import: dt = {dt} is not a positive number of seconds (the dt argument)"


def test_a_bad_dt_in_the_file_is_refused(tmp_path):
    path = replace(write(tiny_graph(), tmp_path / "m.nir"), "metadata/dt", np.array(b"soon"))
    with pytest.raises(ConfigError) as e:
        from_nir(path)
    assert str(e.value) == f"{path}: dt = nan is not a positive number of seconds (the graph's metadata)"


def test_the_graphs_dt_is_used(tmp_path):
    net = from_nir(write(tiny_graph(), tmp_path / "m.nir"))
    assert net.metadata["dt"] == 1e-4 and net.input_shape == (1, 8, 8)
    with torch.no_grad():
        assert net(torch.ones(3, 2, 1, 8, 8)).shape == (3, 2, 3)
