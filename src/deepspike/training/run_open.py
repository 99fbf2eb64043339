"""How the Trainer opens its run directory: a new run, a restart, or a resume; never over others' files.

Without ``resume`` the directory must hold none of the files a run writes (``config.yaml``, ``metrics.jsonl``,
``checkpoint.pt``, ``summary.json``, ``metrics.csv``, ``tensorboard/``, ``reproduce.json``): neither an earlier run
nor a user's own files of those names are overwritten (or removed). With ``resume`` it must be a run: with a
checkpoint, training continues after the checkpoint's epoch ("continue"); without one, but marked as started by
deepspike (the process was killed before its first epoch finished), training starts again at epoch 0 ("restart"),
which ends exactly as an uninterrupted run.

On resume the config must be the run's ``config.yaml`` except for ``RESUMABLE_KEYS``: how many epochs
(``train.epochs``), how progress is shown, where the data lives and is read with how many workers, and the
device. Every other change would be recorded in ``config.yaml`` without having been applied to the epochs
already trained (or, like ``method.timesteps``, change the run midway), so it is refused; so is a change of
``train.epochs`` once epochs were trained on a schedule spread over them (``SCHEDULES_OVER_EPOCHS``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from deepspike.config.schema import RunConfig
from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.core.options import shown_value
from deepspike.training.epoch import epoch_scheduled
from deepspike.training.runs import RunDir

NEW, RESTART, CONTINUE = "new", "restart", "continue"
SCHEDULES_OVER_EPOCHS = ("cosine", "linear")
"""Learning-rate schedules spread over ``train.epochs``: a resume may not change how many epochs they span."""
RESUMABLE_KEYS = (
    "train.epochs",
    "train.progress",
    "train.log",
    "train.device",
    "data.num_workers",
    "data.data_dir",
    "data.download",
    "expected.test_accuracy",
    "expected.tolerance",
    "expected.measured_by",
)


def open_mode(run: RunDir, config: RunConfig, resume: bool) -> str:
    """``NEW``, ``RESTART`` or ``CONTINUE`` for training ``config`` into ``run`` (module docstring), or a
    one-line error. ``run.path`` was checked as an output folder by the caller (``core.atomic.check_output_dir``:
    the ``Trainer``, on the name as given, where an empty one is refused). Writes nothing."""
    if not resume:
        _check_free(run)
        return NEW
    if not run.has_checkpoint() and not run.is_started():
        raise ConfigError(f"--resume given but {run.checkpoint_path} does not exist")
    if run.has_checkpoint() or run.is_run_dir():  # a restart killed while writing config.yaml has none
        check_resume_config(run.read_config(), config, run)
    return CONTINUE if run.has_checkpoint() else RESTART


def resume_recipe(run: RunDir) -> Path | None:
    """What a resume given no recipe continues with: the run's ``config.yaml``; None (the defaults) where
    ``run`` holds no run. A run killed while writing its ``config.yaml`` needs its recipe: a one-line error."""
    if run.is_run_dir():
        run.read_config()  # a damaged config.yaml is refused, not read as a recipe of defaults
        return run.config_path
    if run.is_started() and not run.has_checkpoint():
        raise ConfigError(f"{run.path} holds a run killed before it wrote config.yaml: train it again without "
                          "--resume, or give its recipe file")
    return None


def check_epoch_schedules(saved: RunConfig, config: RunConfig, model) -> None:
    """A one-line ``ConfigError`` when a resume changes ``train.epochs`` of a net with layers on a per-epoch schedule
    (a ``begin_epoch(epoch, epochs)`` method: the Gaussian width of learnable delays, ``layers.delays``): the epochs
    already trained followed the schedule over the old count. A module whose schedule does not depend on the count
    (class attribute ``schedule_spans_epochs = False``: STDP's first N epochs) does not stop it."""
    if saved.train.epochs == config.train.epochs:
        return
    scheduled = sorted({type(m).__name__ for m in epoch_scheduled(model) if getattr(m, "schedule_spans_epochs", True)})
    if scheduled:
        raise ConfigError(f"--resume cannot change train.epochs ({saved.train.epochs} -> {config.train.epochs}) of a "
                          f"net with {', '.join(scheduled)} layers: their schedule is spread over train.epochs, so the "
                          f"epochs already trained followed another one; train a new run")


def check_resumed_epochs(run: RunDir, config: RunConfig, epochs_done: int) -> None:
    """A one-line error, before anything is written, when the checkpoint's ``epochs_done`` is past what the run's
    metrics log holds (the log gets each epoch before its checkpoint: the files do not belong together) or past
    ``train.epochs`` (a run cannot be trained back to fewer epochs), or when the lines the resume keeps (epochs up
    to ``epochs_done``) are not each epoch 1 .. ``epochs_done`` once, in order (a repeated epoch was kept)."""
    kept = [record["epoch"] for record in run.metrics.read() if record["epoch"] <= epochs_done]
    if epochs_done > len(kept):
        raise DataCorruptError(f"{run.checkpoint_path} is at epoch {epochs_done} but {run.metrics.path} logs "
                               f"{len(kept)} epochs: the run's files do not belong together")
    if kept != list(range(1, epochs_done + 1)):
        raise DataCorruptError(f"{run.metrics.path} logs epochs {shown_value(kept)} up to the checkpoint's epoch "
                               f"{epochs_done}, not each of 1 to {epochs_done} once in order: the log is damaged")
    if epochs_done > config.train.epochs:
        raise ConfigError(f"--resume with train.epochs={config.train.epochs}: {run.path} has trained {epochs_done} "
                          f"epochs already; give train.epochs >= {epochs_done}, or train a new run")


def _check_free(run: RunDir) -> None:
    """A one-line error unless ``run`` holds none of the files a run writes (``runs.OUTPUT_NAMES``: the run files,
    the sinks' CSV table and TensorBoard folder, ``reproduce``'s report, which a run that trains removes)."""
    present = run.output_files()
    if not present:
        return
    if run.has_checkpoint():
        raise ConfigError(f"{run.path} already holds a run; use --resume to continue it or pick another --out")
    if run.is_started():
        raise ConfigError(f"{run.path} holds a run that finished no epoch; use --resume to start it again "
                          "or pick another --out")
    raise ConfigError(f"{run.path} holds {', '.join(present)}, which a run would overwrite; pick another --out")


def check_resume_config(saved: RunConfig, config: RunConfig, run: RunDir) -> None:
    """A one-line ``ConfigError`` naming every key where ``config`` differs from the run's ``saved`` config,
    except ``RESUMABLE_KEYS``."""
    refused = [key for key in changed_keys(saved, config) if key not in RESUMABLE_KEYS]
    if refused:
        raise ConfigError(
            f"--resume cannot change {', '.join(refused)} (the run was trained with the values in "
            f"{run.config_path}); only {', '.join(RESUMABLE_KEYS)} may change: train a new run for the others"
        )
    schedule = saved.schedule.name
    if saved.train.epochs != config.train.epochs and schedule in SCHEDULES_OVER_EPOCHS and run.has_checkpoint():
        raise ConfigError(
            f"--resume cannot change train.epochs ({saved.train.epochs} -> {config.train.epochs}) of a run with "
            f"schedule.name={schedule}: its learning rate is spread over train.epochs, so the epochs already "
            "trained followed another schedule; train a new run"
        )


def config_digest(config: RunConfig) -> str:
    """SHA-256 of ``config`` without ``RESUMABLE_KEYS`` (sorted JSON of the dotted keys): what a checkpoint records
    as ``config_sha256``, so that a resume finds a ``config.yaml`` edited since, or a checkpoint copied from another
    run (``check_checkpoint_config``)."""
    flat = {k: v for k, v in _flat(_sections(config)).items() if k not in RESUMABLE_KEYS}
    return hashlib.sha256(_encoded(flat).encode()).hexdigest()


def _encoded(value: Any) -> str:
    """``value`` as ``config_digest`` hashes it (sorted JSON): two values are the same config value when their
    encodings are equal (``changed_keys`` compares by it, so that the two agree: ``-0.0`` is not ``0.0``, nor ``1``
    ``1.0`` or ``True`` in ``model.args``)."""
    return json.dumps(value, sort_keys=True, default=repr)


def check_checkpoint_config(run: RunDir, config: RunConfig, state: dict[str, Any]) -> None:
    """A one-line ``ConfigError`` when the checkpoint ``state`` of ``run`` was trained with another config than
    ``config`` (the run's ``config.yaml`` with the resumable keys changed at most); a checkpoint of a version that
    recorded none is taken as it is."""
    recorded = state.get("config_sha256")
    if recorded is not None and recorded != config_digest(config):
        raise ConfigError(f"{run.checkpoint_path} was trained with another config than {run.config_path} (edited "
                          "since, or the checkpoint copied from another run): put the config back or train a new run")


def changed_keys(a: RunConfig, b: RunConfig) -> list[str]:
    """Dotted keys (``optim.lr``, ``model.args.hidden``) whose values differ between ``a`` and ``b``, as
    ``config_digest`` tells values apart (``_encoded``): a key it would hash differently is named here, not found
    later as a checkpoint "trained with another config"."""
    flat_a, flat_b = _flat(_sections(a)), _flat(_sections(b))
    return sorted(k for k in flat_a.keys() | flat_b.keys()
                  if k not in flat_a or k not in flat_b or _encoded(flat_a[k]) != _encoded(flat_b[k]))


def _sections(config: RunConfig) -> dict[str, Any]:
    """The config as nested dicts, the method section flat as it is saved."""
    return {**dataclasses.asdict(config), "method": config.method.as_dict()}


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
