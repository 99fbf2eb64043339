"""A method option that only acts on some layers: refused for a new run of a model without them, still read from a
saved run (tests/methods)."""

import pytest

from deepspike.core.errors import ConfigError


def assert_refused_where_it_builds_nothing(method, layer_type: type, without, with_layer, match: str) -> None:
    """``method`` builds no ``layer_type`` on the architecture ``without`` (what reading a saved run does) and its
    ``check_new_run`` refuses that architecture in one line matching ``match``; on ``with_layer`` it builds one and
    ``check_new_run`` passes."""
    assert not any(isinstance(m, layer_type) for m in method.build(without).modules())
    with pytest.raises(ConfigError, match=match):
        method.check_new_run(without)
    assert any(isinstance(m, layer_type) for m in method.build(with_layer).modules())
    method.check_new_run(with_layer)
