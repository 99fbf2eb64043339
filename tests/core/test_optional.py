"""Optional packages: imported when present, a one-line install hint when not."""

import pytest

from deepspike.core.errors import ConfigError
from deepspike.core.optional import require_package


def test_a_present_package_is_imported_and_a_missing_one_is_one_line():
    assert require_package("json", "unused").dumps([1]) == "[1]"
    with pytest.raises(ConfigError, match=r"^widgets need deepspike_no_such_package: pip install it$"):
        require_package("deepspike_no_such_package", "widgets need deepspike_no_such_package: pip install it")
