"""The run configuration: what a YAML recipe may contain.

A recipe has six sections::

    method:   {name: stbp, timesteps: 8, ...}     # options depend on the method (config.method_section)
    model:    {name: scnn_digits, width: 1.0, args: {}}
    data:     {name: digits, data_dir: null, val_fraction: 0.0, ...}
    optim:    {name: adam, lr: 0.001, ...}
    schedule: {name: cosine, ...}
    train:    {epochs: 10, batch_size: 64, seed: 0, ...}

Unknown keys, values of the wrong type or out of range (each ``__post_init__``), non-finite numbers and
integers beyond 64 bits (``core.options.check_numbers``) are rejected with a one-line ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from deepspike.config.method_section import MethodConfig, default_method_section
from deepspike.core.errors import ConfigError, UnusedOptionError
from deepspike.core.options import FLOAT32_MAX, FLOAT32_TINY, check_unused, is_finite, shown_value
from deepspike.data.augment import Augment
from deepspike.methods.registry import learns_locally
from deepspike.models.registry import refuse_core_args

# Arguments every data set loader takes that the recipe sets elsewhere (``training.run_setup.load_data``);
# ``data.args`` holds the data set's own options only (data.args.name was a TypeError, "got multiple values").
SET_ELSEWHERE = {"name": "data.name", "data_dir": "data.data_dir", "val_fraction": "data.val_fraction",
                 "seed": "train.seed", "download": "data.download"}
SEED_MAX = 2**63 - 1


@dataclass
class ModelConfig:
    """``name``: a registered model (``deepspike models``); ``width``: a channel multiplier (> 0, e.g. 0.25 for a
    quarter of every layer's channels); ``args``: the model factory's own keyword options (``deepspike.models``,
    e.g. ``vgg``'s ``blocks``, ``pool``, ``dropout``)."""

    name: str = "scnn_digits"
    width: float = 1.0
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.width > 0, "model.width", self.width, "> 0")
        refuse_core_args(self.args)


@dataclass(frozen=True)
class AugmentConfig(Augment):
    """Training inputs only (``deepspike.data.Augment``, whose fields these are): ``crop_padding`` (>= 0) pads each
    side with zeros and crops back at a random place; ``hflip`` flips half the pictures left-right; ``roll``
    (pixels, >= 0), ``rotate`` (degrees, [0, 180]), ``shear`` (degrees, [0, 90)) and ``cutout`` (side, >= 0) move
    or mask each picture at random; ``one_of`` applies one of those four per sample (NDA); ``drop_event``
    ([0, 1)) drops each event of count data; ``channel_shift``, ``time_mask``, ``channel_mask`` (>= 0) shift or
    mask the channels and steps of sequences ``[T, F]``; ``mixup``, ``cutmix`` (Beta's alpha, 0: off) mix samples
    and their labels. Event frames ``[T, C, H, W]`` take the same draw at every step."""

    def __post_init__(self) -> None:
        try:
            super().__post_init__()
        except ConfigError as error:
            raise ConfigError(f"data.{error}") from None


@dataclass
class DataConfig:
    """``name``: a registered data set (``deepspike datasets``); ``data_dir``: where its files are searched first
    (then ``$DEEPSPIKE_DATA``, ``~/.cache/deepspike``; ``data.paths``); ``val_fraction``: the share of the
    training split held out for validation, in [0, 1); ``download``: fetch missing files, checksum-verified;
    ``normalize``: standardise inputs by the training split's per-channel mean and std (a channel with std 0 there
    is only centred); ``num_workers``:
    data-loader processes (>= 0); ``augment``: random crops, flips, rolls, rotations, shears, cutouts and event
    drops of the training inputs (``data.augment.*``); ``args``: the data set's own options."""

    name: str = "digits"
    data_dir: str | None = None
    val_fraction: float = 0.0
    download: bool = False
    normalize: bool = False
    num_workers: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(0.0 <= self.val_fraction < 1.0, "data.val_fraction", self.val_fraction, "in [0, 1)")
        _check(self.num_workers >= 0, "data.num_workers", self.num_workers, ">= 0")
        clash = sorted(set(self.args) & set(SET_ELSEWHERE))
        if clash:
            raise ConfigError(f"data.args.{clash[0]} is not a data set option: set {SET_ELSEWHERE[clash[0]]} instead")


OPTIMIZERS = ("sgd", "adam", "adamw")
PRECISIONS = ("fp32", "bf16")
TEMPORAL_GRADS = ("bptt", "checkpoint", "sltt", "ottt", "eprop")  # training.temporal_grad
ONLINE_GRADS = ("sltt", "ottt", "eprop")  # the modes that carry the state detached from step to step
EPROP_FEEDBACKS = ("symmetric", "random")  # training.eprop: how the output error reaches the hidden neurons
LOG_SINKS = ("csv", "tensorboard")  # training.metric_sinks, besides metrics.jsonl
SCHEDULES = ("none", "step", "multistep", "cosine", "linear")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # train.compile's modes of torch.compile
CHOICES = {"optim.name": OPTIMIZERS, "schedule.name": SCHEDULES, "train.precision": PRECISIONS,
           "train.temporal_grad": TEMPORAL_GRADS, "train.log": LOG_SINKS,
           "train.eprop_feedback": EPROP_FEEDBACKS}  # keys with a fixed set of values


@dataclass
class OptimConfig:
    """``name``: sgd, adam or adamw; ``lr`` (at least float32's smallest normal 1.18e-38, else the float32 step is
    0); ``weight_decay`` (0 or that); ``momentum`` (sgd, in [0, 1)) and ``nesterov`` (sgd, with a momentum > 0);
    ``betas`` (adam and adamw: two numbers in [0, 1))."""

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])

    def __post_init__(self) -> None:
        _choice(self.name, "optim.name")
        _check(self.lr > 0, "optim.lr", self.lr, "> 0")
        _check(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, ">= 0")
        for key in ("lr", "weight_decay"):  # the optimizer's float32 step refuses a larger one (inf: check_numbers)
            value = getattr(self, key)
            _check(not FLOAT32_MAX < value < math.inf, f"optim.{key}", value, f"at most float32's {FLOAT32_MAX:.4g}")
            # below float32's smallest normal the step's float32 factor is 0 or subnormal: nothing is learnt/decayed
            _check(not 0 < value < FLOAT32_TINY, f"optim.{key}", value,
                   f"{'' if key == 'lr' else '0 or '}at least float32's smallest normal {FLOAT32_TINY:.4g}")
        _check(0 <= self.momentum < 1, "optim.momentum", self.momentum, "in [0, 1)")
        if self.name == "sgd" and self.nesterov and self.momentum == 0:  # config.load resets a recipe's true
            raise UnusedOptionError(f"bad value {self.nesterov!r} for optim.nesterov: expected false with "
                                    "optim.momentum=0 (Nesterov momentum needs a momentum > 0)", "optim", "nesterov",
                                    self.nesterov, False, "optim.momentum is above 0")
        _check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "optim.betas", self.betas,
               "a list of two numbers in [0, 1)")


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, as a factor of ``optim.lr`` per (fractional) epoch.

    ``step``: times ``gamma`` every ``step_size`` epochs; ``multistep``: times ``gamma`` at each of
    ``milestones``; ``cosine``: half cosine from 1 to ``min_factor``; ``linear``: linear decay from 1 to
    ``min_factor``. ``warmup_epochs`` ramps linearly from 0 first.
    """

    name: str = "none"
    step_size: int = 30
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    min_factor: float = 0.0
    warmup_epochs: float = 0.0

    def __post_init__(self) -> None:
        _choice(self.name, "schedule.name")
        _check(self.step_size >= 1, "schedule.step_size", self.step_size, ">= 1")
        _check(self.gamma > 0, "schedule.gamma", self.gamma, "> 0")
        _check(self.gamma >= FLOAT32_TINY, "schedule.gamma", self.gamma,
               f"at least float32's smallest normal {FLOAT32_TINY:.4g} (a smaller factor makes the learning rate 0)")
        _check(all(m >= 0 for m in self.milestones), "schedule.milestones", self.milestones, "epochs >= 0")
        _check(0 <= self.min_factor <= 1, "schedule.min_factor", self.min_factor, "in [0, 1]")
        _check(self.warmup_epochs >= 0, "schedule.warmup_epochs", self.warmup_epochs, ">= 0")


@dataclass
class TrainConfig:
    """``seed``: in [0, 2**63 - 1], what Python, torch (``manual_seed``) and NumPy's generators all take
    (the global NumPy generator gets ``seed % 2**32``). ``temporal_grad``: bptt, checkpoint (exact, segments of
    ``time_segment`` steps recomputed in backward), sltt (``sltt_steps``: K random steps), ottt or eprop
    (``eprop_feedback``: symmetric, the default, or random; ``eprop_readout_decay``: the leak ``kappa`` in [0, 1) of
    e-prop's readout ``y_t = kappa y_{t-1} + o_t``, null or 0 memoryless; ``training.temporal_grad``,
    ``training.eprop``);
    ``log``: extra epoch logs besides ``metrics.jsonl``, csv and/or tensorboard
    (``training.metric_sinks``); ``compile``: false, true (torch.compile's default mode) or a mode (default,
    reduce-overhead, max-autotune): the training and scoring forward passes run through ``torch.compile``
    (``training.compiled``; checkpoints hold the plain module's weights). ``distill_from``: a run directory whose
    net teaches this one (knowledge distillation, ``training.distill``): the loss becomes ``(1 - distill_weight)``
    times the method's plus ``distill_weight`` times ``distill_temperature**2 KL(teacher || student)`` of the
    class probabilities softened by ``distill_temperature``."""

    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 256
    grad_clip: float | None = None
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    deterministic: bool = True
    max_steps_per_epoch: int | None = None
    precision: str = "fp32"
    channels_last: bool = False
    ema_decay: float | None = None
    temporal_grad: str = "bptt"
    time_segment: int | None = None
    sltt_steps: int | None = None
    eprop_feedback: str | None = None
    eprop_readout_decay: float | None = None
    log: list[str] = field(default_factory=list)
    compile: bool | str = False
    distill_from: str | None = None
    distill_weight: float = 0.5
    distill_temperature: float = 4.0

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, "train.epochs", self.epochs, ">= 1")
        _check(0 <= self.seed <= SEED_MAX, "train.seed", self.seed, "in [0, 2**63 - 1]")
        _check(self.batch_size >= 1, "train.batch_size", self.batch_size, ">= 1")
        _check(self.eval_batch_size >= 1, "train.eval_batch_size", self.eval_batch_size, ">= 1")
        _check(self.grad_clip is None or self.grad_clip > 0, "train.grad_clip", self.grad_clip, "> 0 or null")
        _check(self.grad_clip is None or self.grad_clip >= FLOAT32_TINY, "train.grad_clip", self.grad_clip,
               f"at least float32's smallest normal {FLOAT32_TINY:.4g} or null (a smaller norm zeroes the gradients)")
        _check(self.grad_clip is None or not FLOAT32_MAX < self.grad_clip < math.inf, "train.grad_clip",
               self.grad_clip, f"at most float32's {FLOAT32_MAX:.4g} or null (a larger norm clips nothing)")
        _check(
            self.max_steps_per_epoch is None or self.max_steps_per_epoch >= 1,
            "train.max_steps_per_epoch",
            self.max_steps_per_epoch,
            ">= 1 or null (smoke tests: stop each epoch after this many steps)",
        )
        _choice(self.precision, "train.precision")
        _choice(self.temporal_grad, "train.temporal_grad")
        for name in self.log:
            _choice(name, "train.log")
        _check(self.time_segment is None or self.time_segment >= 1, "train.time_segment", self.time_segment,
               ">= 1 or null (checkpointed BPTT: steps per segment; null: ceil(sqrt(T)))")
        _null_unless(self.time_segment, "time_segment", self.temporal_grad, "checkpoint")
        _check(self.sltt_steps is None or self.sltt_steps >= 1, "train.sltt_steps", self.sltt_steps,
               ">= 1 or null (SLTT-K: backpropagate at K random steps; null: all)")
        _null_unless(self.sltt_steps, "sltt_steps", self.temporal_grad, "sltt")
        if self.eprop_feedback is not None:
            _choice(self.eprop_feedback, "train.eprop_feedback")
        _null_unless(self.eprop_feedback, "eprop_feedback", self.temporal_grad, "eprop")
        kappa = self.eprop_readout_decay
        _check(kappa is None or is_finite(kappa) and 0 <= kappa < 1, "train.eprop_readout_decay", kappa,
               "a number in [0, 1) or null (the leak of e-prop's readout)")
        _null_unless(kappa, "eprop_readout_decay", self.temporal_grad, "eprop")
        _check(
            self.ema_decay is None or 0 < self.ema_decay < 1,
            "train.ema_decay",
            self.ema_decay,
            "in (0, 1) or null (evaluate an exponential moving average of the weights)",
        )
        if not isinstance(self.compile, bool) and self.compile not in COMPILE_MODES:
            raise ConfigError(f"bad value {shown_value(self.compile)} for train.compile; valid: false, true, "
                              f"{', '.join(COMPILE_MODES)}")
        self._check_distillation()
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ConfigError(f"bad value {self.device!r} for train.device: expected auto, cpu, cuda or cuda:N")

    def _check_distillation(self) -> None:
        """The three ``distill_*`` keys (class docstring): a teacher named by non-empty text, a weight in [0, 1] and a
        temperature in [1e-3, 1e3] (logits divided by a smaller one leave float32's range)."""
        _check(self.distill_from is None or str(self.distill_from).strip() != "", "train.distill_from",
               self.distill_from, "a run directory whose net teaches this one, or null")
        _check(0.0 <= self.distill_weight <= 1.0, "train.distill_weight", self.distill_weight, "in [0, 1]")
        _check(1e-3 <= self.distill_temperature <= 1e3, "train.distill_temperature", self.distill_temperature,
               "in [0.001, 1000]")


@dataclass
class ExpectedConfig:
    """What a recipe is known to reach (``deepspike reproduce``): ``test_accuracy`` (a fraction; null: nothing
    recorded) within ``tolerance`` (a fraction, 0.005 = 0.5 pp), as measured by ``measured_by`` (where the
    figure was recorded, e.g. a RESULTS.md section)."""

    test_accuracy: float | None = None
    tolerance: float = 0.005
    measured_by: str = ""

    def __post_init__(self) -> None:
        _check(self.test_accuracy is None or 0.0 <= self.test_accuracy <= 1.0, "expected.test_accuracy",
               self.test_accuracy, "a fraction in [0, 1] or null")
        _check(0.0 <= self.tolerance <= 1.0, "expected.tolerance", self.tolerance, "a fraction in [0, 1]")


@dataclass
class RunConfig:
    """The whole recipe. ``method`` holds the method's name and its validated ``Options`` instance."""

    method: MethodConfig = field(default_factory=default_method_section)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    expected: ExpectedConfig = field(default_factory=ExpectedConfig)


def check_settings_used(config: RunConfig) -> None:
    """A one-line ``ConfigError`` for a key of ``optim``, ``schedule`` or ``train`` set away from its default while the
    choice it belongs to is off (``core.options.check_unused``): ``momentum`` / ``nesterov`` without sgd, ``betas``
    with sgd, ``step_size``, ``gamma``, ``milestones`` or ``min_factor`` under a schedule that reads none of them,
    ``distill_weight`` / ``distill_temperature`` without ``distill_from``; any key of ``optim`` or ``schedule`` under a
    method that learns without gradients (``Method.learns_locally``: no optimizer steps, so no rate to schedule); a
    ``train.log`` sink named twice (each writes once); ``multistep`` without ``milestones`` (the rate never
    changes); ``method.detach_reset`` under an online temporal-gradient mode (``_check_reset_gradient``). For new runs
    only (``training.reload``): runs saved with such a setting still load. Defaults spelt out pass."""
    o, s, t = config.optim, config.schedule, config.train
    twice = [name for name in dict.fromkeys(t.log) if t.log.count(name) > 1]
    if twice:
        raise ConfigError(f"train.log={shown_value(t.log)} names {twice[0]} twice: name each sink once "
                          f"(valid: {', '.join(LOG_SINKS)})")
    if learns_locally(config.method.name):
        needs = f"the method learns by gradients (method {config.method.name} has no optimizer or schedule)"
        for section, options in (("optim", o), ("schedule", s)):
            check_unused(options, ((tuple(f.name for f in dataclasses.fields(options)), False, needs),), section)
    check_unused(o, ((("momentum", "nesterov"), o.name == "sgd", "optim.name=sgd"),
                     (("betas",), o.name != "sgd", "optim.name=adam or adamw")), "optim")
    if s.name == "multistep" and not s.milestones:
        raise ConfigError("schedule.name=multistep with no schedule.milestones never changes the learning rate: list "
                          "the epochs at which it is multiplied by schedule.gamma, or use schedule.name=none")
    check_unused(s, ((("step_size",), s.name == "step", "schedule.name=step"),
                     (("gamma",), s.name in ("step", "multistep"), "schedule.name=step or multistep"),
                     (("milestones",), s.name == "multistep", "schedule.name=multistep"),
                     (("min_factor",), s.name in ("cosine", "linear"), "schedule.name=cosine or linear")), "schedule")
    check_unused(t, ((("distill_weight", "distill_temperature"), t.distill_from is not None,
                      "train.distill_from names a teacher run"),), "train")
    _check_reset_gradient(config)


def _check_reset_gradient(config: RunConfig) -> None:
    """An ``UnusedOptionError`` for ``method.detach_reset`` set under an online ``train.temporal_grad``: the reset
    acts on the membrane carried to the next step, which those modes carry detached, so each step's gradient is the
    same with or without it (``training.temporal_grad``)."""
    options = config.method.options
    if dataclasses.is_dataclass(options) and any(f.name == "detach_reset" for f in dataclasses.fields(options)):
        check_unused(options, ((("detach_reset",), config.train.temporal_grad not in ONLINE_GRADS,
                                "train.temporal_grad is bptt or checkpoint (sltt, ottt and eprop carry the membrane "
                                "detached from step to step, the only path of the reset's gradient)"),))


def _check(ok: bool, key: str, value: object, expected: str) -> None:
    if not ok:
        raise ConfigError(f"bad value {shown_value(value)} for {key}: expected {expected}")


def _null_unless(value: object, key: str, temporal_grad: str, mode: str) -> None:
    """An ``UnusedOptionError`` for ``train.<key>`` set (not null, its default) while ``train.temporal_grad`` is not
    ``mode``, the only one that reads it (``config.load`` resets a recipe's value that an override made unused)."""
    if value is not None and temporal_grad != mode:
        raise UnusedOptionError(f"bad value {shown_value(value)} for train.{key}: expected null unless "
                                f"train.temporal_grad={mode}", "train", key, value, None, f"train.temporal_grad={mode}")


def _choice(value: str, key: str) -> None:
    valid = CHOICES[key]
    if value not in valid:
        raise ConfigError(f"bad value {shown_value(value)} for {key}; valid: {', '.join(valid)}")
