"""Bounded YAML reading: bombs, recursion, binary files and Python tags are one-line ConfigErrors, fast."""

import os
import time

import pytest

from deepspike.cli import main
from deepspike.config import load_config
from deepspike.config.yaml_io import MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, parse_yaml
from deepspike.core.errors import ConfigError


def _laughs(levels: int = 10) -> str:
    """The "billion laughs": ten levels of ten aliases each, 10**10 nodes once expanded, about 400 bytes."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _alias_chain(n: int) -> str:
    """``a1: &a1 [*a0]``, ``a2: &a2 [*a1]``, ...: shallow text, nested ``n`` deep once expanded."""
    return "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, n))


BAD_RECIPES = {
    "billion laughs": (_laughs(), f"aliases expand it to more than {MAX_YAML_NODES} nodes"),
    "recursive alias": ("a: &a [*a]\n", "recursive alias"),
    "recursive mapping": ("model: &m {args: *m}\n", "recursive alias"),
    "deep list": ("x: " + "[" * 5000 + "]" * 5000 + "\n", f"nested deeper than {MAX_YAML_DEPTH} levels"),
    "deep mapping": ("x: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", f"nested deeper than {MAX_YAML_DEPTH}"),
    "deep through aliases": (_alias_chain(60), f"aliases nest it deeper than {MAX_YAML_DEPTH} levels"),
    "many nodes": ("x: [" + ",".join(["1"] * (MAX_YAML_NODES + 5)) + "]\n", f"more than {MAX_YAML_NODES} nodes"),
    "python tag": ("x: !!python/object/apply:os.system ['touch {marker}']\n", "could not determine a constructor"),
    "python name": ("x: !!python/name:os.system\n", "could not determine a constructor"),
    "duplicate key": ("train: {epochs: 1}\ntrain: {epochs: 2}\n", "duplicate key 'train' (line 2, column 1)"),
    "binary tag": ("model: {args: {x: !!binary aGk=}}\n", "a bytes value at model.args.x"),
    "set tag": ("model: {args: {x: !!set {a: null}}}\n", "a set value at model.args.x"),
    "timestamp tag": ("model: {args: {x: !!timestamp 2001-12-14}}\n", "a date value at model.args.x"),
    "ordered map tag": ("model: {args: {x: !!omap [a: 1]}}\n", "a tuple value at model.args.x[0]"),
    "integer key": ("model: {args: {1: x}}\n", "key 1 at model.args is not a string"),
    "newline in a key": ('model: {args: {"a\\nb": {1: x}}}\n', "key 1 at 'model.args.a\\nb' is not a string"),
    "undefined alias": ("x: *nope\n", "found undefined alias"),
    "NUL character": ("x: \x00\n", "unacceptable character #x0000"),
    "huge integer": ("x: " + "9" * 5000 + "\n", "Exceeds the limit (4300 digits)"),
}


@pytest.mark.parametrize("name", list(BAD_RECIPES))
def test_hostile_recipe_is_one_line_config_error(name, tmp_path):
    text, message = BAD_RECIPES[name]
    marker = tmp_path / "pwned"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text.replace("{marker}", str(marker)))
    start = time.process_time()  # CPU time: a busy machine must not fail it, a slow parse must
    with pytest.raises(ConfigError) as info:
        load_config(recipe)
    assert time.process_time() - start < 3.0
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_file_limits(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_YAML_BYTES + "\n")
    with pytest.raises(ConfigError, match="is over 1 MiB: not a recipe"):
        load_config(big)
    binary = tmp_path / "model.pt"
    binary.write_bytes(b"PK\x03\x04" + bytes(range(256)))
    with pytest.raises(ConfigError, match=r"model.pt is not a UTF-8 text file \(byte 0x80 at offset 132\)"):
        load_config(binary)


@pytest.mark.parametrize(
    "override, message",
    [
        ('x=!!python/object/apply:os.system ["touch {marker}"]', "could not determine a constructor for the tag"),
        ('train.epochs=!!python/object/apply:os.system ["touch {marker}"]', "could not determine a constructor"),
        ("model.args.x=&a [*a]", "recursive alias"),
        ("model.args.x=" + "[" * 100 + "]" * 100, "nested deeper than"),
        ("model.args.x=" + _laughs(8).replace("\n", ", ").join("{}"), "aliases expand it to more than"),
        ("model.args.x=!!binary aGk=", "a bytes value"),
        ("model.args.x=[1, 2", "cannot parse override"),
    ],
)
def test_hostile_override_is_one_line_config_error_and_exit_2(override, message, tmp_path, capsys):
    marker = tmp_path / "pwned"
    override = override.replace("{marker}", str(marker))
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert message in str(info.value) and "\n" not in str(info.value)
    out = tmp_path / "out"
    assert main(["train", override, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepspike: error: ") and err.count("\n") == 1 and message in err
    assert not out.exists() and not marker.exists()


def test_plain_yaml_still_reads_as_before():
    text = "a: &a {x: 1, y: [1e-3, .inf, 2020-01-01, 0x10, yes, ~]}\nb: *a\nc: {<<: *a, x: 2}\n"
    value = parse_yaml(text, "t")
    assert value["a"] == value["b"] == {"x": 1, "y": [0.001, float("inf"), "2020-01-01", 16, True, None]}
    assert value["c"]["x"] == 2 and value["c"]["y"] == value["a"]["y"]
    assert parse_yaml("x: " + "[" * (MAX_YAML_DEPTH - 2) + "]" * (MAX_YAML_DEPTH - 2), "t")["x"] is not None


def test_a_device_or_pipe_as_recipe_is_refused_as_not_a_regular_file(tmp_path, capsys):
    """``train /dev/null`` said "config file not found: /dev/null" of a path that is there; a pipe likewise."""
    pipe = tmp_path / "recipe.fifo"
    os.mkfifo(pipe)  # never opened: the refusal comes first (opening it would wait for a writer)
    for path in ("/dev/null", str(pipe)):
        with pytest.raises(ConfigError, match=f"^{path} is not a regular file .a device, pipe or socket.; give a "):
            load_config(path)
        assert main(["train", path, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"deepspike: error: {path} is not a regular file") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
