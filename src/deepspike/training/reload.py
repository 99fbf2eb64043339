"""Reload a finished (or interrupted) run from its directory and evaluate it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepspike.config.schema import RunConfig, check_settings_used
from deepspike.core.errors import ConfigError, DataNotFoundError
from deepspike.data import DataSplits
from deepspike.layers.delays import DelayedLinear, round_all_delays_
from deepspike.layers.qcfs import remove_quantisation
from deepspike.methods.rate_network import as_weight_dtype
from deepspike.training.divergence import check_loaded_weights_finite
from deepspike.training.evaluate import evaluate
from deepspike.training.init_files import init_file_reader
from deepspike.training.pretrained import InputCheck
from deepspike.training.run_setup import RunParts, build_run, make_batches
from deepspike.training.runs import RunDir
from deepspike.training.runtime import autocast_dtype, check_autocast, check_channels_last, model_device, resolve_device
from deepspike.training.weights import load_weights, payload_entry


def load_run(run_dir: str | Path, device: str = "auto", data: DataSplits | None = None
             ) -> tuple[RunConfig, RunParts, dict]:
    """``(config, parts, checkpoint)`` of the run in ``run_dir`` with the checkpoint's weights loaded: the
    weight average when the run kept one (``train.ema_decay``; that is what its test accuracy measured), else
    the raw weights. ``data``: the splits to build the net for instead of reading the run's own (a caller that
    checked that they are the run's data: a teacher, ``training.distill``)."""
    dev = resolve_device(device)  # a bad device is refused before the run is read
    run = RunDir(run_dir)
    config = run.read_config()
    state = run.read_checkpoint(dev)
    parts = build_run(config, dev, data)
    weights = state["ema"]["average"] if "ema" in state else payload_entry(state, "model", run.checkpoint_path)
    load_weights(parts.model, weights, run.checkpoint_path)
    check_loaded_weights_finite(parts.model, run.checkpoint_path)
    parts.model.eval()
    return config, parts, state


class RunInputCheck(InputCheck):
    """A forward pre-hook for a reloaded run's net (``deepspike.load_run``): its input must be a floating-point tensor
    on the net's device shaped as the run's data holds a batch, else a one-line ``ConfigError`` naming that shape
    (a wrong shape stopped in a torch RuntimeError, "mat1 and mat2 shapes cannot be multiplied"; a [8, 8] image
    without its channel was read as a batch of one 8-channel image and scored): images ``[B, *input_shape]``;
    for data whose samples hold ``steps`` steps (``DataSplits.steps_per_sample``), sequences ``[B, T, F]`` or event
    frames ``[B, T, C, H, W]``, or ``[B, *input_shape]`` without the time axis, which the population encoder codes
    alike (the others refuse it, in one line: ``layers.event_frames.first_steps``). Floating-point input is cast to
    the weights' dtype outside autocast, as the rate nets cast it (``methods.rate_network.as_weight_dtype``): float64
    or bfloat16 images stopped a ``ttfs_window`` net in its first layer ("expected m1 and m2 to have the same
    dtype")."""

    def cast(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return as_weight_dtype(module, x)

    def __init__(self, run_dir: str | Path, input_shape: tuple[int, ...], steps: int | None) -> None:
        super().__init__(str(run_dir), input_shape)
        self.steps = steps

    def takes(self) -> str:
        dims = ", ".join(map(str, self.input_shape))
        if self.steps is None:
            return f"run {self.name} takes {'images' if len(self.input_shape) == 3 else 'samples'} [B, {dims}]"
        kind = "event frames" if len(self.input_shape) == 3 else "sequences"
        return f"run {self.name} takes {kind} [B, T, {dims}] (its data hold T = {self.steps} steps)"

    def integer_hint(self) -> str:
        """Event frames and binned spikes are counts that the data set casts as they are (``EventFrameDataset``):
        dividing them by 255, the advice for images, changed the input the net was trained on."""
        if self.steps is None:
            return super().integer_hint()
        return "event counts: x.float(), as the run's data set casts them; uint8 pixel rows: divide by 255"

    def fits(self, shape: tuple[int, ...]) -> bool:
        n = len(self.input_shape)
        axes = (n + 1,) if self.steps is None else (n + 1, n + 2)
        return len(shape) in axes and shape[len(shape) - n:] == self.input_shape


def build_new_run(config, device, data=None) -> RunParts:
    """``build_run`` for a run that starts training: a ``method.init_from`` run (an ANN, or another run the
    method names in ``init_sources``) is read here and its network handed to the method (``init_from_run``); a
    ``method.init_from`` file of a suffix the method lists in ``init_files`` (``.nir``) is read by its registered
    reader (``training.init_files``), which copies its weights into the built net.
    Reloading a run skips this: its checkpoint holds the weights, so the source run need not exist any more. Settings
    a run would ignore are refused first (``config.schema.check_settings_used``, ``Method.check_new_run``,
    ``runtime.check_channels_last``, ``runtime.check_autocast``)."""
    check_settings_used(config)
    parts = build_run(config, device, data)
    parts.method.check_new_run(parts.arch)
    check_channels_last(config.train.channels_last, parts.model, config.model.name)
    check_autocast(config.train.precision, parts.method)
    init_from = getattr(parts.method.options, "init_from", None)
    reader = init_file_reader(init_from) if init_from else None
    if reader is not None:
        suffix = Path(init_from).suffix.lower()
        if suffix not in parts.method.init_files:
            raise ConfigError(f"method.init_from: method {parts.method.name!r} does not start from a {suffix} file")
        reader(Path(init_from), parts.model, config)
    elif init_from:
        if not parts.method.init_sources:
            raise ConfigError(f"method.init_from: method {parts.method.name!r} starts from a "
                              f"{' or '.join(parts.method.init_files)} file, not from a run ({init_from})")
        source, source_parts, _ = load_run(init_from, device="cpu")
        if source.method.name not in parts.method.init_sources:
            raise ConfigError(f"method.init_from: {init_from} is a {source.method.name!r} run; method "
                              f"{parts.method.name!r} starts from: {', '.join(parts.method.init_sources)}")
        parts.method.init_from_run(parts.model, source.method.name, source_parts.model)
    return parts


def check_delays_to_round(run_dir: str | Path, model) -> None:
    """A one-line ``ConfigError`` when run ``run_dir``'s net ``model`` has no layer with synaptic delays (``eval``,
    ``export`` and ``export --check`` were asked to round them)."""
    if not any(isinstance(m, DelayedLinear) for m in model.modules()):
        raise ConfigError(f"run {run_dir} has no synaptic delays to round (its net has no Linear(delays=D) layer)")


def evaluate_run(run_dir: str | Path, split: str = "test", unquantised: bool = False, round_delays: bool = False
                 ) -> dict[str, Any]:
    """Accuracy and loss of the run's checkpoint on ``split``; ``unquantised`` scores a QCFS ANN with each
    activation's quantisation taken out (``clip(x, 0, lambda)``: what its converted SNN tends to as T grows);
    ``round_delays`` scores a net with learnable delays with each delay rounded to a whole step
    (``layers.delays.round_all_delays_``: as hardware runs it), marked ``"delays_rounded": true``. Both change the
    loaded copy only: the checkpoint is read, never written."""
    config, parts, state = load_run(run_dir)
    if unquantised and not remove_quantisation(parts.model):
        raise ConfigError(f"run {run_dir} has no QCFS activation to take the quantisation out of")
    if round_delays:
        check_delays_to_round(run_dir, parts.model)
        round_all_delays_(parts.model)
    batches = make_batches(config, parts.data, split, model_device(parts.model), training=False)
    if batches is None:
        raise DataNotFoundError(f"run {run_dir} has no {split!r} split (set data.val_fraction > 0 for val)")
    result = evaluate(parts.model, parts.method, batches, precision=autocast_dtype(config.train.precision))
    return {
        "run": str(run_dir),
        "split": split,
        "epochs_trained": payload_entry(state, "epoch", RunDir(run_dir).checkpoint_path),
        f"{split}_accuracy": result["accuracy"],
        f"{split}_loss": result["loss"],
        "samples": result["samples"],
        **({"unquantised": True} if unquantised else {}),
        **({"delays_rounded": True} if round_delays else {}),
    }
