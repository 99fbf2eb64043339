"""Argument checks shared by the closed-form TTFS solvers (errors a user can cause)."""

from __future__ import annotations

import math

import torch

from deepspike.coding.decoders import check_time_values
from deepspike.core.errors import ConfigError, check_pool_padding, unknown_choice
from deepspike.core.options import is_whole

KERNELS = ("exp", "relpsp")
BACKENDS = ("auto", "native", "numba", "triton", "torch")


def check_neuron_params(kernel: str, theta: float, tau: float) -> None:
    """Raise ``ConfigError`` unless ``kernel`` is known and ``theta``, ``tau`` are finite and positive."""
    if kernel not in KERNELS:
        raise unknown_choice("TTFS kernel", kernel, KERNELS)
    if not (math.isfinite(theta) and theta > 0):
        raise ConfigError(f"TTFS threshold theta must be finite and > 0, got {theta!r}")
    if not (math.isfinite(tau) and tau > 0):
        raise ConfigError(f"TTFS time constant tau must be finite and > 0, got {tau!r}")


def check_backend(backend: str) -> None:
    """Raise ``ConfigError`` unless ``backend`` is one of ``BACKENDS``."""
    if backend not in BACKENDS:
        raise unknown_choice("TTFS backend", backend, BACKENDS)


def check_times(t_in: torch.Tensor, ndim: int, what: str, scan_values: bool = True) -> None:
    """Spike times must be a floating tensor of rank ``ndim`` without NaN or -inf (+inf = no spike).
    ``scan_values=False`` leaves the NaN/-inf scan (``check_time_values``) to the caller (the native backend's
    kernels scan while sorting)."""
    if not torch.is_tensor(t_in) or not t_in.is_floating_point():
        raise ConfigError(f"{what}: spike times must be a floating-point tensor, got {type(t_in).__name__}")
    if t_in.dim() != ndim:
        raise ConfigError(f"{what}: spike times must have {ndim} dims, got shape {tuple(t_in.shape)}")
    if scan_values:
        check_time_values(t_in, what)


def check_weight(weight: torch.Tensor, shape_hint: str, ndim: int, fan_in: int, what: str) -> None:
    """Weights must be floating, of rank ``ndim``, not empty, with ``fan_in`` matching the input (their values:
    ``check_values``)."""
    if not torch.is_tensor(weight) or not weight.is_floating_point() or weight.dim() != ndim:
        got = f"{weight.dtype} {tuple(weight.shape)}" if torch.is_tensor(weight) else type(weight).__name__
        raise ConfigError(f"{what}: weight must be a floating tensor {shape_hint}, got {got}")
    if weight.numel() == 0:
        raise ConfigError(f"{what}: weight {tuple(weight.shape)} is empty; a layer needs at least one input "
                          "and one output neuron")
    if weight.shape[1] != fan_in:
        raise ConfigError(
            f"{what}: weight {tuple(weight.shape)} does not match {fan_in} input channels/features"
        )


def check_chunk(chunk_elements: int, what: str) -> None:
    """Raise ``ConfigError`` unless ``chunk_elements`` (the torch backend's block bound) is a whole number >= 1."""
    if not is_whole(chunk_elements, 1):
        raise ConfigError(f"{what}: chunk_elements must be a whole number >= 1, got {chunk_elements!r}")


def check_bias(bias: torch.Tensor | None, n_out: int, what: str) -> None:
    """A bias (weight of an extra input spike at t = 0) must be a real floating vector of length ``n_out``, like the
    weights (its values: ``check_values``)."""
    if bias is None:
        return
    if not torch.is_tensor(bias) or bias.shape != (n_out,):
        raise ConfigError(f"{what}: bias must have shape ({n_out},), got {tuple(getattr(bias, 'shape', ()))}")
    if not bias.is_floating_point():
        raise ConfigError(f"{what}: bias must be a floating tensor like the weights, got {bias.dtype}")


def check_values(t_in: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, what: str) -> None:
    """The value scans of a layer's arguments: no NaN or -inf among the times, weight and bias finite (the
    native backend does these scans in its kernels instead)."""
    check_time_values(t_in, what)
    if not torch.isfinite(weight).all():
        raise ConfigError(f"{what}: weight contains NaN or inf")
    if bias is not None and not torch.isfinite(bias).all():
        raise ConfigError(f"{what}: bias contains NaN or inf")


def pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """Turn an int or a pair into a pair of ints; ``ConfigError`` when not one of those."""
    if isinstance(value, int):
        value = (value, value)
    if not isinstance(value, tuple | list) or len(value) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(value[0]), int(value[1])


def pool_window(t_in: torch.Tensor, kernel_size, stride, padding, where: str):
    """``(k, s, p)`` pairs of a pooling over ``t_in [B, C, H, W]`` (stride None: the kernel size); ``ConfigError``
    unless ``k, s >= 1``, ``0 <= p <= k // 2`` and the window fits the padded input (``H' >= 1``)."""
    k = pair(kernel_size, "kernel_size")
    s = k if stride is None else pair(stride, "stride")
    p = pair(padding, "padding")
    if min(k) < 1 or min(s) < 1:
        raise ConfigError(f"{where}: kernel_size and stride must be >= 1, got {k}, {s}")
    check_pool_padding(p, k, where)
    padded = tuple(n + 2 * p_ for n, p_ in zip(t_in.shape[2:], p))
    if any(k_ > n for k_, n in zip(k, padded)):
        raise ConfigError(f"{where}: window {k} larger than the padded input {padded}")
    return k, s, p
