"""``check_fields``: a node's broken fields are one DataCorruptError line naming the node and the field, on a
file (before the nir package builds the node) and on a graph object given to ``from_nir``."""

from __future__ import annotations

import numpy as np
import pytest

from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.deploy.nir_fields import check_fields, conv_padding, pair, plain_metadata, shown, whole_numbers

nir = pytest.importorskip("nir")
from deepspike.deploy import from_nir  # noqa: E402
from deploy.nir_files import replace, tiny_graph, write  # noqa: E402

W4 = np.ones((2, 1, 3, 3), dtype=np.float32)
CONV = {"type": "Conv2d", "weight": W4, "bias": np.zeros(2), "stride": np.array([1, 1]), "padding": np.array([1, 1]),
        "dilation": np.array([1, 1]), "groups": np.int64(1), "input_shape": None}
POOL = {"type": "AvgPool2d", "kernel_size": np.array([2, 2]), "stride": np.array([2, 2]), "padding": np.array([0, 0])}
AFFINE = {"type": "Affine", "weight": np.ones((3, 4)), "bias": np.zeros(3)}


@pytest.mark.parametrize("fields,message", [
    ({**CONV, "weight": np.ones((3, 5))}, "weight has shape (3, 5), a Conv2d weight is [out, in, kh, kw]"),
    ({**AFFINE, "weight": np.ones(4)}, "weight has shape (4,), an Affine weight is [out, in]"),
    ({"type": "Linear", "weight": np.ones((0, 4))}, "weight has shape (0, 4), with no outputs"),
    ({**AFFINE, "bias": np.zeros(4)}, "bias has shape (4,), the weight's 3 outputs need (3,)"),
    ({**AFFINE, "weight": np.full((3, 4), np.nan)}, "weight holds NaN or inf"),
    ({**AFFINE, "bias": np.array([0.0, np.inf, 0.0])}, "bias holds NaN or inf"),
    ({**AFFINE, "weight": np.array(["1", "2"], dtype=object)}, "weight is not numeric (dtype object)"),
    ({**AFFINE, "weight": np.full((3, 4), 1e300)}, "weight holds values beyond float32's range (|x| > 3.4e+38)"),
    ({**CONV, "stride": np.array([0, 1])}, "stride [0, 1] must be at least 1"),
    ({**CONV, "dilation": np.array([1.5])}, "dilation must be one or two whole numbers, got [1.5]"),
    ({**CONV, "padding": np.array([-1, 0])}, "padding [-1, 0] must be at least 0"),
    ({**CONV, "groups": np.int64(0)}, "groups must be a whole number of at least 1, got 0"),
    ({**CONV, "groups": np.int64(4)}, "groups 4 does not divide the weight's 2 outputs"),
    ({**POOL, "kernel_size": np.array([1, 2, 3])}, "kernel_size must be one or two whole numbers, got [1, 2, 3]"),
    ({"type": "Flatten", "start_dim": np.array([0, 1]), "end_dim": -1},
     "start_dim must be a whole number, got [0, 1]"),
    ({"type": "IF", "r": np.ones(3), "v_threshold": np.ones(3), "metadata": {"reset": np.zeros((9, 9))}},
     "metadata reset must be text, got an array of shape (9, 9)"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_broken_fields_are_named(fields, message):
    with pytest.raises(DataCorruptError) as e:
        check_fields("m.nir", "n", fields["type"], fields)
    assert str(e.value) == f"m.nir: node 'n': {message}"


def test_sound_fields_pass():
    for fields in (CONV, POOL, AFFINE, {**CONV, "padding": "same"}, {"type": "Linear", "weight": np.ones((3, 4))}):
        check_fields("m.nir", "n", fields["type"], fields)


def test_a_pool_window_of_only_padding_is_refused():
    with pytest.raises(ConfigError) as e:
        check_fields("m.nir", "p", "AvgPool2d", {**POOL, "padding": np.array([2, 0])})
    assert str(e.value).startswith("m.nir: node 'p': padding (2, 0) must be in [0, kernel_size // 2]")


def test_helpers():
    assert pair(3) == (3, 3) and pair([2, 5]) == (2, 5)
    assert whole_numbers(np.array([2.0, 3.0])) == (2, 3) and whole_numbers([np.inf]) is None
    assert whole_numbers([1.5]) is None and whole_numbers("x") is None and whole_numbers([1e30]) is None
    assert shown(np.zeros((100, 100))) == "an array of shape (100, 100)" and shown(np.array([1, 2])) == "[1, 2]"


def test_nan_weights_in_a_file_are_refused(tmp_path):
    w = np.ones((3, 128), dtype=np.float32)
    w[1, 7] = np.nan
    path = replace(write(tiny_graph(), tmp_path / "m.nir"), "nodes/fc/weight", w)
    with pytest.raises(DataCorruptError) as e:
        from_nir(path)
    assert str(e.value) == f"{path}: node 'fc': weight holds NaN or inf"


def test_a_graph_object_gets_the_same_checks():
    g = tiny_graph()
    g.nodes["conv"] = nir.Conv2d(input_shape=None, weight=np.ones((3, 5)), stride=1, padding=1, dilation=1, groups=1,
                                 bias=np.zeros(3))
    with pytest.raises(DataCorruptError) as e:
        from_nir(g)
    assert str(e.value) == "NIR import: node 'conv': weight has shape (3, 5), a Conv2d weight is [out, in, kh, kw]"
    g = tiny_graph()
    g.nodes["fc"].weight[0, 0] = np.inf
    with pytest.raises(DataCorruptError) as e:
        from_nir(g)
    assert str(e.value) == "NIR import: node 'fc': weight holds NaN or inf"


@pytest.mark.parametrize("padding, kernel, dilation, expected", [
    ("valid", (3, 5), (1, 1), (0, 0)), ("same", (3, 5), (1, 1), (1, 2)), (b"same", (3, 3), (2, 1), (2, 1)),
    ("same", (2, 3), (2, 1), (1, 1)), (np.array([1, 2]), (2, 2), (1, 1), (1, 2))])
def test_a_conv_padding_word_becomes_whole_numbers(padding, kernel, dilation, expected):
    """NIR's "same" (torch's): p = d (k - 1) / 2 per axis, by hand; "valid": 0."""
    assert conv_padding(padding, kernel, (1, 1), dilation, "m.nir", "c") == expected


@pytest.mark.parametrize("padding, kernel, stride, message", [
    ("same", (2, 3), (1, 1), "padding 'same' of a 2x3 kernel at dilation [1, 1] pads one side one more than the "
                             "other"),
    ("same", (3, 3), (2, 1), "padding 'same' at stride [2, 1]: it keeps the input's size at stride 1 only"),
    ("full", (3, 3), (1, 1), "padding 'full' is neither whole numbers nor 'same' or 'valid'")])
def test_a_conv_padding_word_without_a_whole_symmetric_padding_is_refused_saying_why(padding, kernel, stride,
                                                                                     message):
    with pytest.raises(DataCorruptError) as e:
        check_fields("m.nir", "c", "Conv2d", {**CONV, "weight": np.ones((2, 1, *kernel)), "padding": padding,
                                             "stride": np.array(stride)})
    assert str(e.value).startswith(f"m.nir: node 'c': {message}") and "\n" not in str(e.value)


def test_metadata_read_back_from_a_file_holds_python_values():
    """``plain_metadata``, the one reading of a graph's or node's metadata that from_nir, GraphSimulator and the TTFS
    replays share: HDF5 text as str, NumPy scalars as Python numbers, arrays as they are, None as {}."""
    array = np.arange(3)
    plain = plain_metadata({"decode": b"vote", "dt": np.float32(0.5), "n": np.int64(3), "a": array})
    assert plain == {"decode": "vote", "dt": 0.5, "n": 3, "a": array}
    assert type(plain["dt"]) is float and type(plain["n"]) is int and plain["a"] is array
    assert plain_metadata(None) == {}
