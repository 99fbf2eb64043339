"""Knowledge distillation: a trained run's net teaches the net being trained (``train.distill_from``).

Hinton, Vinyals and Dean, "Distilling the knowledge in a neural network" (2015): the student matches the teacher's
class probabilities softened by a temperature tau as well as the labels. With student scores ``s`` and teacher
scores ``t`` (``[B, K]``, ``Method.class_scores``; the teacher's computed without gradient, in eval mode)::

    p = softmax(t / tau),   q = softmax(s / tau)
    KD = tau^2 * (1/B) sum_b sum_k p_bk (log p_bk - log q_bk)            KL(p || q), averaged over the batch
    loss = (1 - alpha) * task_loss + alpha * KD                           alpha = train.distill_weight

The ``tau^2`` keeps the soft term's gradients, which scale as ``1 / tau^2``, comparable to the task's when tau
changes (Hinton et al., section 2). A spiking student taught by an ANN of the same data is the usual use in the SNN
literature (an ANN of the same or a larger architecture; e.g. Kushawaha et al. 2021, Xu et al. CVPR 2023); any run
whose method has class scores can teach (an ANN, a rate-coded SNN).

The teacher sees the batch the student sees (after augmentation and mixing); a mixed batch's task loss is mixed,
the soft term needs no labels. Reading the teacher and running it leave the global random streams as they were (a
stochastic teacher, Poisson input, draws on a fork of them), so ``distill_weight: 0`` trains exactly as no teacher
does. ``train_loss`` in the metrics is the blended loss; validation and test losses are
the method's alone.

The teacher's net is built for the student's data (its own are not read again), after its ``config.yaml`` showed the
same data (``_check_same_data``) and a validation split holding out every sample the student validates on
(``_check_split``). Each student checkpoint records the teacher's absolute folder and its checkpoint's SHA-256
(``TEACHER_FIELD``): a resume finds the teacher from any working directory and refuses one retrained since.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from deepspike.config.schema import RunConfig
from deepspike.core.errors import ConfigError, UserError, one_line
from deepspike.data import dataset_options
from deepspike.methods.base import Method
from deepspike.methods.registry import list_methods
from deepspike.training.random_streams import rng_state, set_rng_state
from deepspike.training.reload import load_run
from deepspike.training.run_setup import RunParts
from deepspike.training.runs import RunDir
from deepspike.training.temporal_grad import ONLINE

TEACHER_FIELD = "teacher"
"""The student's checkpoint field naming its teacher: ``{"run": the teacher's absolute folder, "checkpoint_sha256":
the SHA-256 of its checkpoint.pt as read}``. A resume reads the teacher from there and refuses another one."""


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``tau^2 KL(softmax(teacher / tau) || softmax(student / tau))``, averaged over the batch; ``student`` and
    ``teacher`` ``[B, K]`` class scores (module docstring), computed in float32 (under bf16 autocast too)."""
    log_q = F.log_softmax(student.float() / temperature, dim=1)
    log_p = F.log_softmax(teacher.float() / temperature, dim=1)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True) * temperature**2


@dataclass
class Distillation:
    """A teacher net with its method, and the blend of its soft targets with the task loss (module docstring)."""

    teacher: nn.Module
    teacher_method: Method
    weight: float
    temperature: float
    record: dict[str, str] | None = None  # what the student's checkpoint keeps of its teacher (``TEACHER_FIELD``)
    source: RunConfig | None = None  # the teacher run's config (``near_uniform_warning``)

    def blend(self, task_loss: torch.Tensor, student_scores: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``(1 - alpha) task_loss + alpha KD`` for the batch ``x [B, ...]`` whose student scores are
        ``student_scores [B, K]``."""
        with torch.no_grad(), torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            teacher_scores = self.teacher_method.class_scores(self.teacher(x))
        soft = distillation_loss(student_scores, teacher_scores, self.temperature)
        return (1.0 - self.weight) * task_loss + self.weight * soft


def load_teacher(config: RunConfig, student: RunParts, device: torch.device,
                 recorded: dict[str, str] | None = None) -> Distillation | None:
    """The ``Distillation`` of ``config.train`` (None without ``train.distill_from``): the teacher run read as
    ``deepspike eval`` reads it (its weight average when it kept one), on ``device``, in eval mode, frozen, its net
    built for the student's data (``student.data``: not read a second time). ``recorded``: the teacher the student's
    checkpoint names (``TEACHER_FIELD``; a resume), found where it was (``teacher_folder``) and refused when its
    checkpoint is another one now. A one-line ``ConfigError`` for an online temporal-gradient mode (its per-step
    losses have no whole-batch loss to blend into), when the student's or teacher's method has no class scores, the
    teacher was trained on other data (name, arguments, normalisation; ``_check_same_data``) or on samples the
    student validates on (``_check_split``), or its checkpoint changed while it was read."""
    t = config.train
    if t.distill_from is None:
        return None
    _check_student(config, student)
    path = teacher_folder(t.distill_from, recorded)
    run = RunDir(path)
    stamp = run.checkpoint_stamp()  # compared after the weights are read: the file hashed is the file loaded
    with _named_key():
        digest = run.checkpoint_digest()
        source = run.read_config()
    _check_recorded_digest(path, digest, recorded)
    _check_same_data(config, source, path)
    _check_split(config, source, path)
    before = rng_state()  # building the teacher draws initial weights: the student's streams stay as they were
    try:
        with _named_key():
            _, parts, _ = load_run(path, device=str(device), data=student.data)
    finally:
        set_rng_state(before)
    if run.checkpoint_stamp() != stamp:
        raise ConfigError(f"train.distill_from: the teacher's {run.checkpoint_path} changed while it was "
                          f"read (is the teacher still training?); start this run once the teacher has finished")
    if not has_class_scores(type(parts.method)):
        raise ConfigError(f"train.distill_from: {path} is a {source.method.name!r} run, which has no class "
                          f"scores to teach with; teachers: runs of {scored_methods()}")
    parts.model.requires_grad_(False)
    return Distillation(parts.model.eval(), parts.method, t.distill_weight, t.distill_temperature,
                        {"run": str(path), "checkpoint_sha256": digest}, source)


ONE_HOT_LOSSES = ("mse", "sse", "mse_count")  # method.loss values that train the scores towards one-hot targets
NEAR_UNIFORM_ODDS = 10.0  # near_uniform_warning: below this largest probability ratio, softened scores say little


def near_uniform_warning(config: RunConfig, scored: RunConfig | None = None) -> str | None:
    """The one-line warning for a student (``scored`` None) or teacher (``scored``: the teacher run's config) whose
    class scores stay in about [0, 1] (a spike-rate readout's firing rates, a converted teacher's rates of 0/1
    spikes, or scores a ``method.loss`` of ``ONE_HOT_LOSSES`` trains towards one-hot targets), taught at a temperature
    tau where ``e^(1/tau) < NEAR_UNIFORM_ODDS``: scores spanning at most 1 give softened probabilities of which none
    is more than ``e^(1/tau)`` times another (tau = 4: 1.28), near uniform: a student's cannot follow the teacher's,
    a teacher's pull the student towards uniform outputs (docs/methods/distillation.md). None otherwise, and without
    a soft term (``train.distill_weight`` 0)."""
    t, o = config.train, (config if scored is None else scored).method.options
    loss = getattr(o, "loss", None)
    readout, zero_one = getattr(o, "readout", None), getattr(o, "spike_value", None) == "one" and not o.signed
    why = ("method.readout=rate: firing rates" if readout == "rate" else
           "method.readout=spike, spike_value=one: a converted net's 0/1 spike rates" if readout == "spike" and zero_one
           else f"method.loss={loss} trains them towards one-hot targets" if loss in ONE_HOT_LOSSES else None)
    odds = math.exp(min(1.0 / t.distill_temperature, 700.0))
    if t.distill_from is None or t.distill_weight == 0 or why is None or odds >= NEAR_UNIFORM_ODDS:
        return None
    whose, effect, remedy = (("student's", "cannot follow the teacher's", "distill into") if scored is None else
                             ("teacher's", "pull the student towards uniform outputs", "teach with"))
    scores = ("a net converted with --readout membrane or --spike-value threshold (scores in the ANN's units)"
              if readout == "spike" and zero_one else
              "scores trained with method.loss=ce (stbp: with method.readout=membrane)")  # converted: not trained
    return (f"train.distill_from: the {whose} class scores stay in about [0, 1] ({why}), so softened by "
            f"train.distill_temperature={t.distill_temperature:g} no class is more than e^(1/tau) = {odds:.3g} times "
            f"as probable as another: near-uniform probabilities that {effect}; {remedy} {scores} or lower the "
            f"temperature")


def teacher_folder(typed: str, recorded: dict[str, str] | None = None) -> Path:
    """Where the teacher run is: ``typed`` (``train.distill_from`` as the config says it, relative to the working
    directory) made absolute; on a resume (``recorded``: the student checkpoint's ``TEACHER_FIELD``) the first of the
    absolute folder the run read it from when it started (so that a resume from another working directory finds it)
    and ``typed`` (the runs moved together) that holds the recorded checkpoint, else the first that holds a run (its
    checkpoint is then refused: ``_check_recorded_digest``). A one-line ``ConfigError`` when neither holds one."""
    here = Path(typed).absolute()
    if recorded is None:
        return here
    held = [p for p in dict.fromkeys((Path(recorded["run"]), here)) if RunDir(p).is_run_dir()]
    if not held:
        raise ConfigError(f"train.distill_from: the teacher run is neither at {recorded['run']}, where this run "
                          f"read it, nor at {typed}: put it back to resume, or train a new run")
    with _named_key():
        same = [p for p in held if RunDir(p).checkpoint_digest() == recorded["checkpoint_sha256"]]
    return (same or held)[0]


def _check_recorded_digest(path: Path, digest: str | None, recorded: dict[str, str] | None) -> None:
    """A one-line ``ConfigError`` when the teacher's checkpoint (SHA-256 ``digest``) is not the one the student's
    checkpoint ``recorded``: a resume would continue with another teacher than the epochs trained so far had."""
    if recorded is None or digest is None or digest == recorded["checkpoint_sha256"]:
        return
    was = recorded["checkpoint_sha256"]
    raise ConfigError(f"train.distill_from: the teacher {path} is not the one this run was trained with (its "
                      f"checkpoint.pt has sha256 {digest[:12]}..., this run recorded {was[:12]}...): it was retrained "
                      f"or replaced since; put the teacher back or train a new run")


def check_distill_mode(config: RunConfig) -> None:
    """A one-line ``ConfigError`` for ``train.distill_from`` with an online temporal-gradient mode (its per-step losses
    have no whole-batch loss to blend into); from the settings alone, so the trainer asks before the data is read."""
    t = config.train
    if t.distill_from is not None and t.temporal_grad in ONLINE:
        raise ConfigError(f"train.distill_from: distillation blends into the loss of the whole batch, which "
                          f"train.temporal_grad={t.temporal_grad} replaces by per-step losses; use bptt or checkpoint")


def _check_student(config: RunConfig, student: RunParts) -> None:
    """A one-line ``ConfigError`` when the student cannot be taught: an online temporal-gradient mode, or a method
    without class scores."""
    check_distill_mode(config)
    if not has_class_scores(type(student.method)):
        raise ConfigError(f"train.distill_from: method {student.method.name!r} has no class scores to distill into "
                          f"(it scores by spike times or votes); methods with class scores that train: "
                          f"{scored_methods(trained=True)}")


@contextmanager
def _named_key() -> Iterator[None]:
    """A user error reading the teacher run becomes a ``ConfigError`` saying which key named it."""
    try:
        yield
    except UserError as e:
        raise ConfigError(f"train.distill_from: {one_line(e)}") from None


def has_class_scores(method_class: type[Method]) -> bool:
    """Whether the methods of ``method_class`` give class scores (it overrides ``Method.class_scores``)."""
    return method_class.class_scores is not Method.class_scores


def scored_methods(trained: bool = False) -> str:
    """The registered methods with class scores, e.g. "ann, converted, spikebp, stbp, ttfs_window"; ``trained``:
    only those whose nets are trained (not made by another command, ``Method.made_by``: not ``converted``)."""
    return ", ".join(m.name for m in list_methods() if has_class_scores(m) and not (trained and m.made_by))


def _check_same_data(config: RunConfig, source: RunConfig, path: Path) -> None:
    """A one-line ``ConfigError`` when the teacher's data (its config ``source``) differ from the student's: its
    dataset and data arguments (a default given or left out is the same), or whether its input was normalised (the
    teacher runs on the student's batches). Told from the configs alone: the teacher's net is built for the student's
    data, and a teacher of other classes or sample shapes does not fit it (its weights are refused)."""
    theirs_args, ours_args = (dataset_options(config.data.name, c.data.args) for c in (source, config))
    differ = sorted(k for k in {*theirs_args, *ours_args} if theirs_args.get(k) != ours_args.get(k))
    pairs = (("data.name", source.data.name, config.data.name),  # data.args with the data set's defaults filled in
             ("data.args", {k: theirs_args.get(k) for k in differ}, {k: ours_args.get(k) for k in differ}),
             ("data.normalize", source.data.normalize, config.data.normalize))
    for what, theirs, ours in pairs:
        if theirs != ours:
            raise ConfigError(f"train.distill_from: the teacher {path} was trained on other data ({what} {theirs} "
                              f"against this run's {ours}); a teacher must have read the same data")


def _check_split(config: RunConfig, source: RunConfig, path: Path) -> None:
    """A one-line ``ConfigError`` when the teacher (config ``source``) trained on samples the student validates on.
    The validation part is drawn by ``data.splits.split_indices`` from ``train.seed``: per class a fixed permutation
    of the seed, of which the first ``round(val_fraction * n_c)`` are held out. With the same seed a teacher's held-out
    part is therefore the student's or a superset of it when its ``data.val_fraction`` is at least the student's;
    any other teacher (another seed, a smaller fraction, none held out) trained on some of the student's validation
    samples. A student that holds none out (``data.val_fraction`` 0) accepts any teacher."""
    ours, theirs = config.data.val_fraction, source.data.val_fraction
    if ours == 0 or (theirs >= ours and source.train.seed == config.train.seed):
        return
    raise ConfigError(f"train.distill_from: the teacher {path} trained on samples this run validates on (its "
                      f"data.val_fraction {theirs} with train.seed {source.train.seed}, against this run's {ours} with "
                      f"train.seed {config.train.seed}); teach with a run of the same train.seed and a "
                      f"data.val_fraction of at least {ours}, or set data.val_fraction=0")
