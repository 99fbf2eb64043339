"""The command line's process start and exit: the allocator policy is checked; a torchrun worker leaves without the
interpreter's teardown; an operating-system error on a path is one line."""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import deepspike
from deepspike.cli import build_parser, main

SCRIPT = """
import atexit
from deepspike.cli import exit_process
atexit.register(lambda: print("teardown ran", flush=True))
print("output before the exit")  # buffered when stdout is a pipe: exit_process must flush it
exit_process(3)
"""


@pytest.mark.parametrize(("world_size", "teardown"), [("2", False), ("1", True), (None, True), ("x", True)])
def test_exit_process_skips_teardown_only_in_a_torchrun_worker(world_size, teardown):
    env = {k: v for k, v in os.environ.items() if k != "WORLD_SIZE"}
    if world_size is not None:
        env["WORLD_SIZE"] = world_size
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 3
    assert proc.stdout.startswith("output before the exit\n")
    assert ("teardown ran" in proc.stdout) == teardown


def test_bad_allocator_policy_is_a_one_line_error():
    env = {**os.environ, "DEEPSPIKE_MALLOC": "tcmalloc"}
    proc = subprocess.run([sys.executable, "-m", "deepspike", "models"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == "deepspike: error: DEEPSPIKE_MALLOC must be one of keep, system, got 'tcmalloc'\n"


def test_the_command_and_the_module_end_through_exit_process():
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "deepspike"]
    assert script.value == "deepspike.cli:console"
    main_module = (Path(deepspike.__file__).parent / "__main__.py").read_text()
    assert "console()" in main_module


@pytest.mark.parametrize(
    ("argv", "config", "overrides"),
    [
        (["train", "r.yaml", "a.b=1", "--out", "d"], "r.yaml", ["a.b=1"]),
        (["train", "r.yaml", "--out", "d", "a.b=1", "c=2"], "r.yaml", ["a.b=1", "c=2"]),
        (["train", "r.yaml", "a.b=1", "--out", "d", "c=2", "--resume"], "r.yaml", ["a.b=1", "c=2"]),
        (["reproduce", "r.yaml", "--out", "d", "train.epochs=3"], "r.yaml", ["train.epochs=3"]),
    ],
)
def test_overrides_are_taken_before_and_after_the_options(argv, config, overrides):
    from deepspike.cli import parse_arguments

    args = parse_arguments(argv)
    assert (args.config, args.overrides, args.out) == (config, overrides, "d")


@pytest.mark.parametrize("argv", [["train", "r.yaml", "--out", "d", "--bogus"], ["eval", "runs/a", "a=b"],
                                  ["train", "r.yaml", "--out", "d", "a=1", "stray"]])
def test_unknown_arguments_are_still_refused(argv, capsys):
    from deepspike.cli import parse_arguments

    with pytest.raises(SystemExit) as exit_info:
        parse_arguments(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("deepspike: error: unrecognized arguments:")


QUICK_TRAIN = ["train", "data.name=digits", "model.name=mlp", "model.args.hidden=[8]", "train.epochs=1",
               "train.max_steps_per_epoch=1", "train.progress=false"]


@pytest.mark.parametrize("out, words", [
    (lambda tmp: "/proc/deepspike-test", "No such file or directory: /proc/deepspike-test"),
    (lambda tmp: str(tmp / ("a" * 300)), "File name too long: "),
    # a dangling link: once "File exists: " from the mkdir, now named by check_output_dir
    (lambda tmp: str(tmp / "dangling"), "--out {tmp}/dangling is a symbolic link to {tmp}/missing, which does not "),
])
def test_a_path_the_system_refuses_is_one_line(tmp_path, capsys, out, words):
    """OS errors no command turns into its own message (found by a sweep of the commands: a traceback and status 1
    before) are one line with the system's words and the path, status 2."""
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    assert main([*QUICK_TRAIN, "--out", out(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepspike: error: " + words.format(tmp=tmp_path)) and err.count("\n") == 1


def _arguments():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [(name, a) for name, sub in commands.choices.items() for a in sub._actions
            if not isinstance(a, argparse._HelpAction)]


def test_every_argument_has_a_help_text_that_names_its_default():
    """``eval --split``, ``timesteps --split`` and the RUN_DIR of eval and analyze had no help; analyze's --bits
    showed 32,8,4,2 as its example while it ran 32,8,6,4,3,2, and --snr, --preset, --pe-* did not say theirs."""
    arguments = _arguments()
    assert len(arguments) > 80
    missing = [f"{name} {a.dest}" for name, a in arguments if not a.help]
    assert not missing, missing
    for name, a in arguments:
        if a.option_strings and a.default not in (None, False) and not isinstance(a, argparse._StoreTrueAction):
            shown = ",".join(map(str, a.default)) if isinstance(a.default, (tuple, list)) else str(a.default)
            marked = re.search(rf"\b{re.escape(shown)}'?:? [^;]*\(default\)", a.help)  # "rate: ... (default)"
            assert f"default {shown or 'none'}" in a.help or marked, (name, a.option_strings, a.default, a.help)
