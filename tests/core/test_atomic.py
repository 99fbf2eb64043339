"""Output paths checked before anything is written (``core.atomic``); atomic writes are tested where files are
written (tests/training/test_fault_injection.py, tests/training/test_runs.py)."""

import pytest

from deepspike.core.atomic import check_output_dir, check_output_file
from deepspike.core.errors import ConfigError


@pytest.mark.parametrize("name", ["", "  "])
def test_an_empty_output_name_is_refused_not_read_as_the_current_folder(name):
    with pytest.raises(ConfigError, match="^--out is empty; give the name of a folder$"):
        check_output_dir(name, "--out")
    with pytest.raises(ConfigError, match="^--nir is empty; give the name of a file$"):
        check_output_file(name, "--nir")
