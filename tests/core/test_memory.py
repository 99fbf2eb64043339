"""``core.memory``: the one "would these bytes exceed this machine's memory" refusal the data sets share."""

import pytest

from deepspike.core.errors import ConfigError
from deepspike.core.memory import GiB, check_fits_memory, physical_memory


def _say(need: str, have: str) -> str:
    return f"x needs {need} GiB, more than {have} GiB"


def test_bytes_beyond_the_memory_are_refused_in_one_line_with_both_in_gib():
    with pytest.raises(ConfigError, match=r"^x needs 48.0 GiB, more than 2.5 GiB$"):
        check_fits_memory(48 * GiB, 5 * GiB // 2, _say)
    check_fits_memory(2 * GiB, 2 * GiB, _say)  # exactly the memory: not refused
    check_fits_memory(10**18, 0, _say)  # a platform that does not say its memory refuses nothing


def test_this_machines_memory_is_known():
    assert physical_memory() > 2**20
