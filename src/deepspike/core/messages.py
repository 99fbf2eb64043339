"""``deepspike: warning: ...`` and ``deepspike: note: ...`` lines on stderr, printed by one process of a
data-parallel run only (every process of ``torchrun`` loads the recipe and reads the data, so each would repeat them).

The first process (:func:`first_process`): where ``torch.distributed`` has joined a process group, its rank 0;
before that (or without one), the process unless ``WORLD_SIZE`` (as torchrun sets it) is an integer above 1 and
``RANK`` (torchrun's global rank, ``0 .. WORLD_SIZE - 1`` over all nodes; not ``LOCAL_RANK``, which is 0 on every
node) an integer other than 0. A process alone prints whatever ``RANK`` holds: ``training.distributed`` reads
``RANK`` only when ``WORLD_SIZE`` > 1, so a run of one process is always its own rank 0. Values that are no
integers print (the launcher's variables are refused with one line when training joins the group).
"""

from __future__ import annotations

import os
import sys

import torch.distributed as dist

from deepspike.core.env import integer_text


def first_process() -> bool:
    """Whether this process is the one that prints for all (module docstring): rank 0 of the joined process group,
    else True unless ``WORLD_SIZE`` > 1 and ``RANK`` is another integer than 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    world_size, rank = integer_text(os.environ.get("WORLD_SIZE")), integer_text(os.environ.get("RANK"))
    return world_size is None or world_size <= 1 or rank is None or rank == 0


def warn(text: str) -> None:
    """``deepspike: warning: text`` on stderr (flushed), by the first process only (:func:`first_process`)."""
    if first_process():
        print(f"deepspike: warning: {text}", file=sys.stderr, flush=True)


def note(text: str) -> None:
    """``deepspike: note: text`` on stderr (flushed), by the first process only (:func:`first_process`)."""
    if first_process():
        print(f"deepspike: note: {text}", file=sys.stderr, flush=True)
