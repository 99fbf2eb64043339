"""Population coding against Norse's ``population_encode`` (run by ``make test-nir``, whose venv has Norse):
Norse's code is ours with ``low = 0``, ``high = scale`` and ``width = (P - 1) / scale^1.5`` (``coding.population``)."""

import pytest
import torch

from conformance.conftest import require
from deepspike.coding.population import population_code


@pytest.mark.parametrize("size, scale", [(3, 1.0), (6, 2.5), (16, 0.7)])
def test_population_code_equals_norse(size, scale):
    require("norse", "make test-nir installs Norse")
    from norse.torch.functional.encode import population_encode

    torch.manual_seed(size)
    x = torch.rand(4, 5) * scale  # values in [0, scale]
    theirs = population_encode(x, size, scale=scale)  # [4, 5, P]
    ours = population_code(x, size, low=0.0, high=scale, width=(size - 1) / scale**1.5)  # [4, 5 P], feature-major
    assert torch.allclose(ours.view(4, 5, size), theirs, rtol=1e-5, atol=1e-6)
