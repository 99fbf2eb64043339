"""Train, evaluate and reload runs: the run-directory side of the public API.

A run directory holds ``config.yaml`` (the resolved recipe), ``metrics.jsonl`` (one line per epoch),
``checkpoint.pt`` (written atomically after every epoch) and ``summary.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from deepspike.config import RunConfig, load_config
from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.core.options import check_switches
from deepspike.training.pretrained import InputCheck, check_pretrained, load_pretrained, zoo_card, zoo_table
from deepspike.training.reload import RunInputCheck, evaluate_run
from deepspike.training.reload import load_run as _load_run
from deepspike.training.reproduce import reproduce as reproduce_run
from deepspike.training.run_open import resume_recipe
from deepspike.training.run_setup import RunParts
from deepspike.training.runs import RunDir
from deepspike.training.trainer import Trainer
from deepspike.training.training_setup import SPLITS

__all__ = ["check_pretrained", "evaluate", "load_run", "pretrained", "reproduce", "train", "zoo", "zoo_card"]


def train(
    recipe: str | Path | RunConfig | None,
    out: str | Path,
    overrides: Sequence[str] = (),
    resume: bool = False,
) -> dict[str, Any] | None:
    """Train ``recipe`` (a YAML path, a loaded ``RunConfig`` or None for the defaults) with a list of ``key=value``
    ``overrides`` (none with a ``RunConfig``, which is trained as it is: ``ConfigError``) into run directory
    ``out``, which may hold no run files; ``resume`` continues the run there exactly, with the run's config except
    for ``train.epochs`` and how it runs (``training.run_open``: other changes are refused in one line; without a
    recipe it continues with the run's ``config.yaml``). A non-finite loss raises ``TrainingDiverged``. Returns the
    summary (``test_accuracy``, ``epochs``, ``train_seconds``, the method's measures, ...). Under ``torchrun`` every
    rank calls this; the process group is left together before returning, and only the main rank (0) gets
    the summary (the others get None). ``resume`` other than True or False (``"no"``, 1) is a ``ConfigError``: a
    truthy ``"no"`` resumed the run."""
    check_switches(resume=resume)
    if isinstance(recipe, RunConfig) and overrides:
        raise ConfigError("overrides apply to a recipe file: load_config(path, overrides), or pass the path; "
                          "a loaded RunConfig is trained as it is")
    if recipe is None and resume:
        recipe = resume_recipe(RunDir(out))
    config = recipe if isinstance(recipe, RunConfig) else load_config(recipe, overrides)
    trainer = Trainer(config, out, resume=resume)
    summary = trainer.fit()  # leaves the process group; an exception ends this rank, torchrun stops the others
    return summary if trainer.dist.is_main else None


def reproduce(recipe: str | Path, out: str | Path, overrides: Sequence[str] = (), resume: bool = False
              ) -> dict[str, Any] | None:
    """Train the YAML ``recipe`` into ``out`` and compare its test accuracy with the recipe's ``expected``
    section (``training.reproduce``): ``{"expected_test_accuracy", "measured_test_accuracy", "difference_pp",
    "as_recorded", "reproduced", ...}``, also written to ``out/reproduce.json``. ``reproduced`` needs the recipe as
    recorded: overrides other than how the run runs (``train.progress``, ``data.data_dir``, ...) make it false, and
    overrides of ``expected.*`` are refused (``ConfigError``). Under ``torchrun`` only the main rank (0) writes and
    gets the report (the others get None). ``resume`` is True or False (else ``ConfigError``, as in ``train``)."""
    check_switches(resume=resume)
    config = load_config(recipe, overrides)
    name = "" if recipe is None else str(recipe)  # None (the defaults) was named "recipe None" in the refusal
    return reproduce_run(config, out, recipe=name, resume=resume, overrides=list(overrides))


def evaluate(run_dir: str | Path, split: str = "test", unquantised: bool = False, round_delays: bool = False
             ) -> dict[str, Any]:
    """Reload the run's checkpoint and score it on ``split``: ``{"test_accuracy", "test_loss", "samples", ...}``;
    ``unquantised``: a QCFS ANN with its activations' quantisation taken out (its converted SNN's large-T limit);
    ``round_delays``: a net with learnable synaptic delays with every delay rounded to a whole step, as hardware
    runs it (the result then holds ``"delays_rounded": True``; a net without delays is refused, ``ConfigError``).
    The checkpoint is never modified."""
    if split not in SPLITS:
        raise unknown_choice("split", split, SPLITS)
    check_switches(unquantised=unquantised, round_delays=round_delays)
    return evaluate_run(run_dir, split=split, unquantised=unquantised, round_delays=round_delays)


def load_run(run_dir: str | Path, device: str = "auto") -> tuple[RunConfig, RunParts]:
    """``(config, parts)`` of the run in ``run_dir`` on ``device`` (``auto``: CUDA where there is one, ``cpu``,
    ``cuda`` or ``cuda:N``): ``parts.model`` holds the checkpoint's weights (the weight average when the run kept
    one) in eval mode and takes a batch as the run's data holds it (images ``[B, *parts.data.input_shape]``) to
    ``[B, K]`` class scores (output spike times for ``ttfs`` and ``stdbp`` runs); ``parts.method`` scores its
    outputs, ``parts.data`` is the run's data. A folder that is no run is a ``DataNotFoundError``, a bad device a
    ``ConfigError``, and so is input the net cannot take (``training.reload.RunInputCheck``: no tensor, not
    floating-point, not on the net's device, or not shaped as the run's data: images ``[B, *input_shape]``, sequences
    ``[B, T, F]`` and event frames ``[B, T, C, H, W]``)."""
    config, parts, _ = _load_run(run_dir, device=device)
    parts.model.register_forward_pre_hook(RunInputCheck(run_dir, parts.data.input_shape,
                                                        parts.data.steps_per_sample()))
    return config, parts


def zoo() -> list[dict[str, Any]]:
    """The cards of the pretrained models shipped in the package (``training.pretrained``): name, method,
    model, data set, test accuracy, spikes per sample, energy, the command that made it."""
    return zoo_table()


def pretrained(name: str, device: str = "cpu") -> torch.nn.Module:
    """The shipped pretrained model ``name`` (``zoo()`` lists them) in eval mode: images ``[B, *input_shape]``
    in [0, 1], preprocessed as its card's ``input`` says, to ``[B, K]`` outputs: output spike times for the
    ``ttfs`` and ``stdbp`` nets (the earliest, ``argmin``, is the decision; ``inf`` = no spike), class scores for the
    others, ``ttfs_window`` included (``argmax``). A net with a Poisson encoder draws new spikes at each call; its
    card's accuracy was measured with a fixed evaluation seed. Input that is no floating-point tensor ``[B,
    *input_shape]`` on the net's device is a one-line ``ConfigError``; float16/bfloat16/float64 images are cast to
    float32 (``training.pretrained.InputCheck``)."""
    model = load_pretrained(name, device)[2]
    model.register_forward_pre_hook(InputCheck(name, tuple(zoo_card(name)["input_shape"])))
    return model
