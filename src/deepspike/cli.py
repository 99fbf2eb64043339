"""Command-line interface: ``deepspike COMMAND ...`` (commands live in ``deepspike.commands``).

Errors a user can cause print one line (``deepspike: error: ...``) and exit with status 2, without a
traceback and without writing over an existing run.

A reader that stops early (``deepspike models | head -2``) ends the command quietly with status 141
(128 + SIGPIPE, what a shell reports for ``seq 100000 | head -1``), as the Python docs' "Note on SIGPIPE"
advises: the rest of the output goes to ``/dev/null`` and nothing is printed on stderr.

A worker started by ``torchrun`` (``WORLD_SIZE`` > 1) ends without the interpreter's teardown
(``exit_process``): torch's gloo worker threads can still be releasing a finished collective's tensors then,
and a thread that needs the GIL while the interpreter finalises aborts the whole process ("terminate called
without an active exception", pytorch/pytorch#190489), after the run had finished and written its files.

Every command first makes glibc keep freed memory in the process (``core.allocator.keep_freed_memory``; off with
``DEEPSPIKE_MALLOC=system``): a training step then reuses its pages instead of faulting them in again.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import select
import sys

from deepspike.commands import COMMANDS
from deepspike.core.allocator import keep_freed_memory
from deepspike.core.env import integer_text
from deepspike.core.errors import UserError, os_error_line

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE (13)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepspike", description="Train, convert, analyse and export deep spiking neural networks."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"deepspike.commands.{name}")
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        status = _run(argv)
        sys.stdout.flush()  # here, not at interpreter exit: a reader that has gone shows up inside the try
        return status
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise  # a pipe of something else (a worker process): a real error
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def console() -> None:
    """The ``deepspike`` command and ``python -m deepspike``: ``main`` on ``sys.argv``, then ``exit_process``."""
    exit_process(main())


def exit_process(status: int) -> None:
    """End the process with exit status ``status``. A torchrun worker flushes stdout and stderr
    and leaves at once (``os._exit``: no atexit handlers, no interpreter teardown; every file a command
    writes is complete and closed by then); any other process exits normally."""
    if (integer_text(os.environ.get("WORLD_SIZE")) or 1) > 1:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a reader that has gone, or a closed stream
                stream.flush()
        os._exit(status)
    sys.exit(status)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """The parsed command line. ``key=value`` overrides are taken after the options too (``train CONFIG --out DIR
    train.epochs=3``), where argparse alone stops at the first option; anything else unknown is its usual error."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "overrides") and all("=" in a and not a.startswith("-") for a in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _run(argv: list[str] | None) -> int:
    args = parse_arguments(argv)
    try:
        keep_freed_memory()  # before the command allocates anything large (core.allocator)
        return args.run(args) or 0
    except UserError as e:
        print(f"deepspike: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # a reader of stdout that has gone: main's own ending
        raise
    except OSError as e:  # a path the operating system refused (/proc, a name too long, a dangling link, ...)
        print(f"deepspike: error: {os_error_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "deepspike: interrupted (finished epochs are checkpointed; continue with --resume)",
            file=sys.stderr,
        )
        return 130


def _stdout_reader_gone() -> bool:
    """True when stdout is a pipe whose reading end is closed (``poll`` reports POLLERR on the writing end);
    True as well where ``poll`` is missing (Windows), as the Python docs' recipe assumes."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    if not hasattr(select, "poll"):
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _discard_stdout() -> None:
    """Point stdout's file descriptor at /dev/null, so that the flush at interpreter exit (of what Python still
    buffers) does not raise BrokenPipeError again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
