"""Environment switches: the default, a valid choice, and a one-line error naming the valid ones."""

import pytest

from deepspike.core.env import env_choice
from deepspike.core.errors import ConfigError


def test_env_choice(monkeypatch):
    monkeypatch.delenv("DEEPSPIKE_TEST_SWITCH", raising=False)
    assert env_choice("DEEPSPIKE_TEST_SWITCH", "a", ("a", "b")) == "a"
    monkeypatch.setenv("DEEPSPIKE_TEST_SWITCH", "b")
    assert env_choice("DEEPSPIKE_TEST_SWITCH", "a", ("a", "b")) == "b"
    monkeypatch.setenv("DEEPSPIKE_TEST_SWITCH", "c")
    with pytest.raises(ConfigError, match=r"^DEEPSPIKE_TEST_SWITCH must be one of a, b, got 'c'$"):
        env_choice("DEEPSPIKE_TEST_SWITCH", "a", ("a", "b"))
