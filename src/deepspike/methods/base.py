"""The method interface: how a training method builds, runs and scores a network.

A method turns an ``Architecture`` into an ``nn.Module`` mapping images ``[B, C, H, W]`` to outputs,
defines the loss on those outputs, and how outputs become class predictions. The one ``Trainer``
serves every method through this interface. Options are a dataclass per method, validated from the
recipe's ``method`` section.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from deepspike.models.spec import Architecture

INIT_FROM_EXPECTED = "a run directory to start from, or null (empty text named no run and started from scratch)"
"""What ``method.init_from`` of a method that starts from runs expects (its refusal of empty text)."""


class Method(ABC):
    """Base class; subclasses set ``name``, ``Options`` (a dataclass) and implement ``build``/``loss``."""

    name: ClassVar[str]
    Options: ClassVar[type]
    description: ClassVar[str] = ""
    init_sources: ClassVar[tuple[str, ...]] = ("ann",)  # methods whose runs ``method.init_from`` may name
    init_files: ClassVar[tuple[str, ...]] = ()  # file suffixes ``method.init_from`` may name (training.init_files)
    made_by: ClassVar[str] = ""  # a method whose nets are not trained: the command that makes them
    learns_locally: ClassVar[bool] = False  # learns without gradients: the trainer calls ``learn``, no optimizer step
    autocasts: ClassVar[bool] = True  # train.precision=bf16 reaches its arithmetic (False: float32 kernels whatever)

    def __init__(self, options: Any) -> None:
        self.options = options

    @abstractmethod
    def build(self, arch: Architecture) -> nn.Module:
        """The network for ``arch``: ``[B, C, H, W]`` images -> outputs scored by ``loss``/``predict``."""

    def check_new_run(self, arch: Architecture) -> None:
        """A one-line ``ConfigError`` for settings a run may no longer start with though runs saved with them still
        load (a refusal added after such runs were made); called when a run starts training, not when one is
        read. Default: ``check_options_used``, then ``check_options_fit``."""
        self.check_options_used()
        self.check_options_fit(arch)

    def check_options_used(self) -> None:
        """The part of ``check_new_run`` the options alone decide: an ``UnusedOptionError`` (``core.options.
        check_unused``) for an option set away from its default where the run would not read it. ``config.load``
        also calls it, to reset a recipe's value that a command-line override made unused. Default: none."""
        return None

    def check_options_fit(self, arch: Architecture) -> None:
        """The part of ``check_new_run`` the options and the architecture ``arch`` decide: an ``UnusedOptionError``
        for an option set away from its default that the model's layers would not read (stbp's ``norm`` on a model
        without batch-norm). ``config.load`` also calls it, with the model at its registered default input shape
        (the data is not read there), to reset a recipe's value that a ``model.*`` override made unused. Default:
        none."""
        return None

    def built_architecture(self, arch: Architecture) -> Architecture:
        """The architecture ``build`` makes a network of: ``arch`` itself, unless the method reshapes it (stbp's
        voting widens the classifier); what the parameter counts and the memory check count."""
        return arch

    @abstractmethod
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar training loss of ``output`` for integer class ``target`` ``[B]``."""

    def loss_at(self, output: torch.Tensor, target: torch.Tensor, timesteps: int | None) -> torch.Tensor:
        """``loss`` of the scores ``output`` ``[B, K]`` a time-stepped net gave when run for ``timesteps`` steps
        (None: its own T; ``training.evaluate``); default: ``loss``, which does not depend on T."""
        return self.loss(output, target)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """Predicted class ``[B]``; default: the largest score of ``output`` ``[B, K]``."""
        return output.argmax(dim=1)

    def class_scores(self, output: torch.Tensor) -> torch.Tensor | None:
        """The class scores ``[B, K]`` of ``output`` that a softmax turns into class probabilities (the logits of
        knowledge distillation, ``training.distill``); None for a method whose outputs are no such scores (spike
        times, votes). Default: None."""
        return None

    @property
    def reads_sequences(self) -> bool:
        """Whether the network reads samples that hold a time axis (sequences ``[T', F]``, event frames
        ``[T', C, H, W]``); a run on such data with a method that does not is refused. Default: False."""
        return False

    def input_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """One sample's per-step shape as the network's first layer sees it, for data whose samples are ``shape``:
        the architecture is built for it. Default: ``shape``; an encoder that widens the input (population coding)
        says so here."""
        return shape

    # Optional hooks the Trainer calls; ``model`` is always the bare network (never the DDP wrapper).

    def init_from_ann(self, model: nn.Module, ann_state: dict[str, torch.Tensor]) -> None:
        """Start ``model`` from the state dict of a trained ``ann`` run (``method.init_from``; the run directory
        is read by ``train``, methods do no file I/O). Methods without that option never get this call."""
        raise NotImplementedError(f"method {self.name!r} cannot start from an ANN")

    def init_from_run(self, model: nn.Module, method_name: str, source: nn.Module) -> None:
        """Start ``model`` from the trained network ``source`` of a run of method ``method_name`` (one of
        ``init_sources``); default: ``init_from_ann`` with the source's state dict."""
        self.init_from_ann(model, source.state_dict())

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        """A regulariser added to every training loss (e.g. zhou2021's weight-sum cost); None for none."""
        return None

    def learn(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """A method that ``learns_locally``: learn from the training batch ``x``, ``y [B]`` (a local rule, no
        gradient, no optimizer) and return its outputs, scored by ``loss``/``predict`` for the epoch's record."""
        raise NotImplementedError(f"method {self.name!r} learns by gradients")

    def end_training_pass(self, model: nn.Module, batches) -> None:
        """Called after each epoch's training batches, before it is scored, with those batches (iterable again as
        ``(x, y)``: a local learner may label its neurons by its responses to them)."""
        return None

    def after_backward(self, model: nn.Module) -> None:
        """Called after ``backward`` and before the optimizer step (e.g. method-specific gradient clipping)."""
        return None

    def epoch_measures(self, model: nn.Module, batches) -> dict[str, float]:
        """Extra measures on the test batches after each epoch (latency, sparsity, ...), merged into the
        epoch's ``metrics.jsonl`` record and the final ``summary.json``. Must not change the model."""
        return {}
