"""Every ``deepspike`` command in the shell blocks of README.md and docs/ parses as written: a flag that does not
exist, a missing required option or a misspelt command fails here, not in a reader's shell."""

import re
import shlex
from pathlib import Path

import pytest

from deepspike.cli import parse_arguments
from deepspike.config.load import load_config
from deepspike.config.schema import check_settings_used
from deepspike.training.distill import _check_same_data, _check_split
from deepspike.training.run_setup import method_and_architecture

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


def _nir_scores(page: Path) -> list[tuple[str, str, str]]:
    """(file, data set it is scored on, data set its run trained on) for each ``eval FILE.nir --data D`` of a page
    whose file an earlier ``export RUN --nir FILE.nir`` of the page wrote from a run a ``train`` of the page made."""
    trained, exported, found = {}, {}, []
    for command in _commands(page):
        args = parse_arguments(shlex.split(command))
        if args.command == "train" and args.config and (ROOT / args.config).is_file():
            trained[args.out] = load_config(ROOT / args.config, [o for o in args.overrides if "=" in o]).data.name
        elif args.command == "export" and getattr(args, "nir", None) and args.run_dir in trained:
            exported[args.nir] = trained[args.run_dir]
        elif args.command == "eval" and args.data and args.run_dir in exported:
            found.append((args.run_dir, args.data, exported[args.run_dir]))
    return found


def test_a_documented_nir_file_is_scored_on_its_runs_data():
    """README's commands trained runs/a on the demo recipe (digits, 8x8) and scored its export with --data
    fashion_mnist, which ends 'NIR network input must be [T, B, 1, 8, 8], got (4, 256, 1, 28, 28)'."""
    scores = [s for page in PAGES for s in _nir_scores(page)]
    assert scores and all(data == trained for _, data, trained in scores), scores


def _distillations(page: Path) -> list[tuple[str, object, object]]:
    """(command, student config, teacher config or None) for each ``train ... train.distill_from=RUN`` of a page;
    the teacher's config is that of the ``train`` of the page that wrote RUN (None when none of them does)."""
    trained, found = {}, []
    for command in _commands(page):
        args = parse_arguments(shlex.split(command))
        if args.command != "train" or not args.config or not (ROOT / args.config).is_file():
            continue
        config = load_config(ROOT / args.config, [o for o in args.overrides if "=" in o])
        if config.train.distill_from is not None:
            found.append((command, config, trained.get(config.train.distill_from)))
        trained[args.out] = config
    return found


def test_a_documented_student_has_a_teacher_of_its_data():
    """distillation.md trained its teacher on configs/ann_fmnist_vgg.yaml (data.normalize true) for a student of
    configs/stbp_fashion_mnist.yaml (false): the student's command ended 'the teacher runs/teacher was trained on other
    data (data.normalize True against this run's False)'; README's named a teacher no command of it trained."""
    students = [s for page in PAGES for s in _distillations(page)]
    assert len(students) >= 2
    for command, student, teacher in students:
        assert teacher is not None, command
        _check_same_data(student, teacher, Path(student.train.distill_from))
        _check_split(student, teacher, Path(student.train.distill_from))


def _inline_digits_trainings(page: Path) -> list[tuple[str, object]]:
    """(command, config) for each ``deepspike train CONFIG ...`` written inline (between backticks) on a page, whose
    recipe is a file of the repository and trains on digits."""
    found = []
    for span in re.findall(r"`([^`]*deepspike train [^`]*)`", page.read_text()):
        args = parse_arguments(shlex.split(span.split("deepspike ", 1)[1]))
        if args.config and (ROOT / args.config).is_file():
            config = load_config(ROOT / args.config, [o for o in args.overrides if "=" in o])
            if config.data.name == "digits":
                found.append((span, config))
    return found


def test_a_timed_command_of_the_performance_page_still_starts_a_run():
    """docs/performance.md's compile timing trained the demo recipe with method.neuron=plif, which a new run now
    refuses ('method.decay=0.5 has no effect unless method.neuron is one with a fixed decay, not plif ...': the
    recipe's decay, which plif never read). Each inline digits training of the page passes a new run's checks of its
    settings and of its method's options on the net (``build_new_run`` before the data)."""
    trainings = _inline_digits_trainings(ROOT / "docs" / "performance.md")
    assert trainings
    for _command, config in trainings:
        check_settings_used(config)
        method, arch = method_and_architecture(config, 10, (1, 8, 8))
        method.check_new_run(arch)
