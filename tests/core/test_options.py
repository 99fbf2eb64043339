"""to_dataclass's number check: every float finite and every int within 64 bits, at any depth."""

import dataclasses
import math

import pytest
import torch

from deepspike.core.errors import ConfigError, UnusedOptionError
from deepspike.core.options import (
    FLOAT32_MAX,
    check_numbers,
    check_unused,
    is_finite,
    is_float32,
    is_whole,
    shown_value,
    to_dataclass,
)


@dataclasses.dataclass
class Inner:
    scale: float = 1.0
    sizes: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Outer:
    count: int = 0
    inner: Inner = dataclasses.field(default_factory=Inner)
    args: dict = dataclasses.field(default_factory=dict)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"inner": {"scale": math.inf}}, "bad value inf for sec.inner.scale: expected a finite number"),
        ({"inner": {"scale": -math.inf}}, "bad value -inf for sec.inner.scale"),
        ({"inner": {"scale": math.nan}}, "bad value nan for sec.inner.scale"),
        ({"args": {"a": {"b": [1.0, math.nan]}}}, "bad value nan for sec.args.a.b[1]: expected a finite number"),
        ({"count": 2**63}, "bad value 9223372036854775808 for sec.count: expected an integer in [-2**63, 2**63 - 1]"),
        ({"count": -(2**63) - 1}, "bad value -9223372036854775809 for sec.count"),
        ({"inner": {"sizes": [1, 2**400]}}, "bad value (an integer of 401 bits) for sec.inner.sizes[1]"),
    ],
)
def test_non_finite_and_huge_numbers_are_refused_anywhere(values, message):
    with pytest.raises(ConfigError) as info:
        to_dataclass(Outer, values, "sec")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_limits_and_other_values_pass():
    obj = to_dataclass(Outer, {"count": -(2**63), "args": {"x": 2**63 - 1, "f": 1e308, "b": True, "s": "inf"}}, "s")
    assert obj.count == -(2**63)
    check_numbers({"t": (1, 2.5, None, "nan")}, "")


def test_shown_value_is_short():
    assert shown_value(5) == "5" and shown_value("ab") == "'ab'"
    assert len(shown_value(list(range(1000)))) == 60 and shown_value(list(range(1000))).endswith("...")
    assert shown_value(10**1000) == "(an integer of 3322 bits)"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"inner": [1]}, "bad value [1] for sec.inner: expected a mapping"),
        ({"inner": 5}, "bad value 5 for sec.inner: expected a mapping"),
        ({"args": [1]}, "bad value [1] for sec.args: expected a mapping"),
        ({"inner": {"sizes": {"a": 1}}}, "bad value {'a': 1} for sec.inner.sizes: expected a list"),
        ({"inner": {"sizes": 3}}, "bad value 3 for sec.inner.sizes: expected a list"),
    ],
)
def test_a_list_or_scalar_for_a_mapping_names_its_key(values, message):
    with pytest.raises(ConfigError) as info:
        to_dataclass(Outer, values, "sec")
    assert str(info.value) == message


def test_a_key_with_a_newline_is_shown_on_one_line():
    with pytest.raises(ConfigError) as info:
        to_dataclass(Outer, {"a\nb": 1}, "sec")
    assert str(info.value).startswith("unknown key 'sec.a\\nb'; valid keys: count, inner, args")
    with pytest.raises(ConfigError) as info:
        to_dataclass(Outer, {"args": {"x\ty": math.inf}}, "sec")
    assert str(info.value) == "bad value inf for 'sec.args.x\\ty': expected a finite number"


@dataclasses.dataclass
class Switches:
    on: bool = False
    mode: bool | str = False  # a bool or a word (as train.compile): left to OmegaConf and the schema's own check


@pytest.mark.parametrize("value", [2, 0, 1, "on", "yes", "true", 1.0, "NoneType"])
def test_a_bool_option_takes_only_true_or_false(value):
    with pytest.raises(ConfigError, match=r"^bad value .* for sec.on: expected true or false$"):
        to_dataclass(Switches, {"on": value}, "sec")


def test_true_false_and_mixed_types_pass():
    assert to_dataclass(Switches, {"on": True}, "sec").on is True
    assert to_dataclass(Switches, {"on": False, "mode": "default"}, "sec").mode == "default"


@dataclasses.dataclass
class Words:
    name: str = "x"
    folder: str | None = None
    mode: bool | str = False


@pytest.mark.parametrize("key", ["name", "folder"])
@pytest.mark.parametrize("value", [True, False])
def test_a_text_option_refuses_a_boolean_instead_of_storing_true_as_text(key, value):
    """YAML 1.1 reads an unquoted yes/no/on/off as a boolean; OmegaConf then stored the text "True"/"False"."""
    expected = (rf"^bad value {str(value).lower()} for sec.{key}: expected a string \(YAML reads an unquoted yes, no, "
                r"on, off, true or false as a boolean: quote the text\)$")
    with pytest.raises(ConfigError, match=expected):
        to_dataclass(Words, {key: value}, "sec")


def test_text_options_keep_their_text_and_a_bool_or_text_option_takes_a_bool():
    words = to_dataclass(Words, {"name": "yes", "folder": "off", "mode": True}, "sec")
    assert (words.name, words.folder, words.mode) == ("yes", "off", True)


@pytest.mark.parametrize("value, low, high, expected", [
    (3, 1, math.inf, True), (1, 1, 1, True), (0, 1, math.inf, False), (5, 1, 4, False),
    (True, 0, math.inf, False), (2.0, 1, math.inf, False), ("3", 1, math.inf, False), (None, 0, math.inf, False),
    (10**30, 0, math.inf, True),
])
def test_is_whole_takes_ints_in_range_only(value, low, high, expected):
    assert is_whole(value, low, high) is expected


@pytest.mark.parametrize("value, expected", [
    (0, True), (-2.5, True), (10**400, True), (1e308, True),
    (math.inf, False), (-math.inf, False), (math.nan, False), (True, False), (False, False), ("1", False),
    (None, False),
])
def test_is_finite_takes_real_numbers_and_never_raises(value, expected):
    assert is_finite(value) is expected


@pytest.mark.parametrize("value, expected", [
    (0, True), (-2.5, True), (FLOAT32_MAX, True), (-FLOAT32_MAX, True), (1e39, False), (-1e39, False),
    (10**400, False), (math.inf, False), (math.nan, False), (True, False), ("1", False),
])
def test_is_float32_takes_the_numbers_a_float32_tensor_holds(value, expected):
    assert is_float32(value) is expected
    assert torch.isfinite(torch.tensor(float(value), dtype=torch.float32)) if expected else True


def test_check_unused_names_the_section_key_values_and_condition_of_what_it_refuses():
    """``config.load`` tells a recipe's value an override made unused from the user's own by these fields."""

    @dataclasses.dataclass
    class Options:
        name: str = "cosine"
        step_size: int = 30

    check_unused(Options(step_size=30), ((("step_size",), False, "schedule.name=step"),), "schedule")  # default: fine
    with pytest.raises(UnusedOptionError) as refused:
        check_unused(Options(step_size=5), ((("step_size",), False, "schedule.name=step"),), "schedule")
    e = refused.value
    assert isinstance(e, ConfigError) and (e.section, e.key, e.value, e.default) == ("schedule", "step_size", 5, 30)
    assert e.dotted == "schedule.step_size" and e.needs == "schedule.name=step"
    assert str(e) == ("schedule.step_size=5 has no effect unless schedule.name=step: set that, or leave "
                      "schedule.step_size at its default 30")
