"""Data-parallel training under ``torchrun`` (``torch.distributed``), and the single-process default.

``torchrun --nproc_per_node=N -m deepspike train ...`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``;
``init_distributed`` then joins the process group (NCCL on CUDA, gloo on the CPU). The recipe's
``train.batch_size`` stays the GLOBAL batch: every rank takes its part of each global batch
(``BatchIterator.rank_part``) and scales its mean loss by ``n_rank * world_size / n_global`` so that
DistributedDataParallel's gradient average equals the gradient of the global batch's mean loss:

    (1/W) sum_r  d/dθ [ (1/n_r) sum_{i in r} l_i * n_r W / n ]  =  d/dθ (1/n) sum_i l_i

for a loss that is a sum over samples: a batch-norm in training mode normalises over each rank's part (no statistics
are gathered across ranks), and its running statistics are rank 0's, which DistributedDataParallel broadcasts before
every forward pass (``broadcast_buffers``).

Evaluation sums (correct, loss, count) are all-reduced; only rank 0 writes files and shows progress.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from deepspike.core.env import integer_text
from deepspike.core.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


MAX_WORLD_SIZE = 2**31 - 1
"""The most processes torch.distributed counts (a C ``int``: a larger ``WORLD_SIZE`` was a TypeError traceback
from its TCPStore)."""


def _launcher_number(name: str, default: str | None, low: int, high: int) -> int:
    """The integer in environment variable ``name`` (``default`` when unset; None: required) in ``low .. high``, or
    a one-line ``ConfigError`` naming it (a hand-set ``WORLD_SIZE=two`` or a missing ``RANK`` was a traceback).
    Only ASCII digits (with a sign, and spaces around) are read: ``int`` would also take ``1_0`` or Arabic digits."""
    text = os.environ.get(name, default)
    value = integer_text(text)
    if value is None or not low <= value <= high:
        found = "is not set" if text is None else f"is {text!r}"
        raise ConfigError(f"environment variable {name} {found}: a launcher (torchrun) sets it to an integer "
                          f"{low} .. {high}")
    return value


def _check_rendezvous() -> None:
    """A one-line ``ConfigError`` unless ``MASTER_ADDR`` (a host name) and ``MASTER_PORT`` (an integer 1 .. 65535),
    where rank 0 meets the others, are set, as torchrun sets them: without them ``init_process_group`` raised a
    ValueError traceback."""
    if not os.environ.get("MASTER_ADDR", "").strip():
        found = "is not set" if "MASTER_ADDR" not in os.environ else "is empty"
        raise ConfigError(f"environment variable MASTER_ADDR {found}: a launcher (torchrun) sets it to the host of "
                          "rank 0")
    _launcher_number("MASTER_PORT", None, 1, 65535)


def init_distributed(cuda: bool | None = None) -> DistContext:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1); else a 1-process context.
    ``WORLD_SIZE``, ``RANK`` (``0 .. WORLD_SIZE - 1``, required with more than one process) and ``LOCAL_RANK``
    must be integers (``_launcher_number``), ``MASTER_ADDR`` and ``MASTER_PORT`` set (``_check_rendezvous``).
    ``cuda``: whether the ranks train on CUDA devices (NCCL) or the CPU (gloo: NCCL holds no CPU tensor, so
    ``train.device=cpu`` on a machine with a GPU must not get it); None: on CUDA when there is one."""
    world_size = _launcher_number("WORLD_SIZE", "1", 1, MAX_WORLD_SIZE)
    if world_size <= 1:
        return DistContext()
    ctx = DistContext(_launcher_number("RANK", None, 0, world_size - 1), world_size,
                      _launcher_number("LOCAL_RANK", "0", 0, world_size - 1))  # a node runs at most all ranks
    if not dist.is_initialized():
        _check_rendezvous()
        backend = "nccl" if (torch.cuda.is_available() if cuda is None else cuda) else "gloo"
        if backend == "nccl":
            _check_local_device(ctx.local_rank)
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend=backend)
    return ctx


def _check_local_device(local_rank: int) -> None:
    """A one-line ``ConfigError`` unless CUDA device ``local_rank`` (the device rank ``LOCAL_RANK`` of a node uses)
    exists: ``torch.cuda.set_device`` of a missing one was a CUDA "invalid device ordinal" traceback."""
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise ConfigError(f"environment variable LOCAL_RANK is {local_rank} but this machine has {count} CUDA "
                          f"device(s), 0 .. {count - 1}: start at most {count} processes on it "
                          "(torchrun --nproc_per_node)")


_WRAPPERS: list[DistributedDataParallel] = []
"""Every wrapper this process made, alive until it ends (``wrap_data_parallel``)."""


def wrap_data_parallel(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``model`` in a DistributedDataParallel wrapper (which starts every rank from rank 0's weights) when
    data-parallel; the model itself for one process.

    The wrapper is kept alive until the process ends (a torchrun worker leaves by ``os._exit``, running no
    destructor): its gradient reducer holds the gloo process group, and when the last reference to it went on the
    way out (after ``shutdown``), the group's destructor joined a gloo thread that waited for the interpreter lock
    the destructor held, and the rank hung (seen once in five 2-process runs, session 24)."""
    if not ctx.enabled:
        return model
    wrapper = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    _WRAPPERS.append(wrapper)
    return wrapper


def all_reduce_sums(values: list[float], ctx: DistContext, device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (identity for one process)."""
    if not ctx.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def broadcast_from_rank0(tensors: Iterable[torch.Tensor], ctx: DistContext) -> None:
    """Overwrite each of ``tensors`` (the same tensors in the same order on every rank) with rank 0's, in place;
    nothing for one process."""
    if not ctx.enabled:
        return
    for tensor in tensors:
        dist.broadcast(tensor, src=0)


def gather_objects(obj, ctx: DistContext) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` for one process)."""
    if not ctx.enabled:
        return [obj]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    """Leave the process group together: a barrier, then ``destroy_process_group``.

    A rank that exits with the group still alive leaves gloo's background threads to the interpreter's
    teardown, which can abort the process ("terminate called without an active exception") while another
    rank is still writing its files."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
