"""Device choice, the device's memory, and seeding."""

from __future__ import annotations

import random
from contextlib import nullcontext

import numpy as np
import torch

from deepspike.core.errors import ConfigError
from deepspike.core.memory import check_fits_memory, physical_memory
from deepspike.methods.rate_network import first_parameter


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present else CPU; ``cpu``; ``cuda``/``cuda:N`` must exist (``N`` in ASCII digits, below
    ``torch.cuda.device_count()``). Anything else (another type, ``tpu``) is a one-line ``ConfigError``."""
    index = name[5:] if isinstance(name, str) and name.startswith("cuda:") else None
    valid = name in ("auto", "cpu", "cuda") or (index is not None and index.isascii() and index.isdigit())
    if not valid:
        raise ConfigError(f"bad device {name!r}: expected auto, cpu, cuda or cuda:N")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but no CUDA device is available; use auto or cpu")
    if index is not None and int(index) >= torch.cuda.device_count():  # torch's "invalid device ordinal" later
        count = torch.cuda.device_count()
        raise ConfigError(f"train.device={name} but this machine has {count} CUDA device(s), cuda:0 .. "
                          f"cuda:{count - 1}")
    return torch.device(name)


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model`` lives: its first parameter's device, else its first buffer's (a net that learns without
    gradients keeps its weights in buffers), else the CPU. The parameter is found by ``first_parameter`` (no
    generators: the ``InputCheck`` hook of an ``api.pretrained`` net asks on every forward)."""
    tensor = first_parameter(model)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def device_memory_bytes(device: torch.device) -> int:
    """Total memory of ``device``: the GPU's, or the machine's physical memory for the CPU (0 where the platform
    does not say: ``core.memory.physical_memory``; the checks below then refuse nothing)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return physical_memory()


def check_steps_fit(per_step: int, timesteps: int, device: torch.device, what: str, which: str = "") -> None:
    """A one-line ``ConfigError`` when ``timesteps`` steps of ``per_step`` bytes (``what``, the tensor they make,
    for the message; ``which``: "inference ", "training ") alone exceed ``device``'s memory: the bound comes from
    memory, not from a fixed T (none where the memory is not known)."""
    have = device_memory_bytes(device)
    check_fits_memory(timesteps * per_step, have, lambda need, total: (
        f"{which}T={timesteps} needs at least {need} GiB for {what}; the {device.type} has {total} GiB: not even "
        f"T={have // per_step + 1:,} fits"))


def check_parameters_fit(parameters: int, device: torch.device, what: str) -> None:
    """A one-line ``ConfigError`` when ``parameters`` float32 weights (``what``: the model, for the message) alone
    exceed ``device``'s memory (when known), before anything is allocated."""
    check_fits_memory(4 * parameters, device_memory_bytes(device), lambda need, have: (
        f"{what} has {parameters:,} parameters, {need} GiB in float32; the {device.type} has {have} GiB: lower "
        f"model.width"))


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch; ask torch for deterministic kernels with ``deterministic``, for its fastest
    ones without (a process-wide setting: an earlier run's ``deterministic`` is not kept)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeds the global state user code may draw from)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    if deterministic:
        torch.backends.cudnn.benchmark = False


def autocast_dtype(precision: str) -> torch.dtype | None:
    """``"bf16"`` -> ``torch.bfloat16`` (autocast of convolutions and matrix products); ``"fp32"`` -> None."""
    return torch.bfloat16 if precision == "bf16" else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` on ``device`` with ``dtype``; when ``dtype`` is None, nothing (float32 unless the caller
    runs inside an autocast of its own, as ``analyze`` does for a bf16 run)."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def check_channels_last(channels_last: bool, model: torch.nn.Module, model_name: str) -> None:
    """A one-line ``ConfigError`` for ``train.channels_last=true`` (``model.to(memory_format=torch.channels_last)``)
    on a net with no 4-D weight or buffer ``[C_out, C_in, kh, kw]`` (no 2-D convolution): the layout moves nothing
    there and the run trains as without it (a 4-D image batch made channels-last is flattened to the same values).
    For new runs only (``training.reload.build_new_run``)."""
    if channels_last and not any(t.dim() == 4 for t in (*model.parameters(), *model.buffers())):
        raise ConfigError(f"train.channels_last=true lays out the 4-D weights of 2-D convolutions, and model "
                          f"{model_name!r} has none: set train.channels_last: false")


def check_autocast(precision: str, method) -> None:
    """A one-line ``ConfigError`` for ``train.precision=bf16`` under a method whose nets autocast does not reach
    (``Method.autocasts`` False: ttfs, stdbp, whose closed-form layers compute float32 times in their own kernels, and
    the loss under autocast is float32): forward, loss and gradients are bit for bit those of fp32. For new runs only
    (``training.reload.build_new_run``)."""
    if precision == "bf16" and not method.autocasts:
        raise ConfigError(f"train.precision=bf16 changes nothing under method {method.name}: its layers compute in "
                          "float32 whatever autocast says; set train.precision: fp32")
