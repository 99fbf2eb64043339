"""Every ``deepspike`` command in the shell blocks of README.md and docs/ parses as written: a flag that does not
exist, a missing required option or a misspelt command fails here, not in a reader's shell."""

import re
import shlex
from pathlib import Path

import pytest

from deepspike.cli import parse_arguments

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *(p for p in sorted((ROOT / "docs").rglob("*.md")) if "generated" not in p.parts)]
COMMAND = re.compile(r"(?:^|\s)(?:\S*/)?deepspike (\S.*)$")  # .venv/bin/deepspike, deepspike, python -m deepspike


def _commands(page: Path) -> list[str]:
    found = []
    for block in re.findall(r"```(?:sh|bash|shell)\n(.*?)```", page.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = COMMAND.search(line.split(" #")[0].strip())
            if command and not line.lstrip().startswith("#"):
                found.append(command.group(1))
    return found


COMMANDS = [(page.relative_to(ROOT).as_posix(), c) for page in PAGES for c in _commands(page)]


def test_the_pages_hold_commands():
    assert len(COMMANDS) >= 40 and {c.split()[0] for _, c in COMMANDS} >= {"train", "eval", "convert", "export"}


@pytest.mark.parametrize(("page", "command"), COMMANDS)
def test_a_documented_command_parses(page, command):
    args = parse_arguments(shlex.split(command))
    assert callable(args.run)
