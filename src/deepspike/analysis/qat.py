"""Quantization-aware retraining, staged 32 -> 8 -> 4 -> 2 bits (zhou2021 appendix B.4).

Start from a trained run; for each stage ``k``: parametrize every synaptic weight with ``FakeQuantize(k)`` (forward
uses ``Q_k(w)``, backward updates the full-precision ``w`` straight through), retrain ``epochs`` epochs with the
run's own optimizer/schedule, precision, memory layout and temporal-gradient settings
(``training.loop.train_epoch``, the Trainer's own step, on one process; no weight average: the stage's config says
``ema_decay: null``), evaluate with quantized weights (under the run's autocast, as ``deepspike eval`` scores the
stage), and write ``OUT/bits<k>/`` as a run directory (config, checkpoint with the quantized weights baked in,
summary) that ``deepspike eval``/``analyze`` can load. The next stage starts from the full-precision weights of this
one. Layers that learnt by STDP (``method.stdp_layers``) are quantized and kept: the retraining is by the loss alone.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from deepspike.analysis.quantize import (
    add_fake_quantization,
    check_bits,
    quantized_state_dict,
    remove_fake_quantization,
)
from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite, is_whole
from deepspike.layers.stdp import StdpLearner
from deepspike.methods.registry import learns_locally
from deepspike.training.evaluate import evaluate
from deepspike.training.loop import train_epoch
from deepspike.training.optim import make_optimizer, make_scheduler
from deepspike.training.reload import load_run
from deepspike.training.run_setup import make_batches
from deepspike.training.runs import RunDir
from deepspike.training.runtime import autocast_dtype, model_device, seed_everything
from deepspike.training.temporal_grad import prepare_temporal_grad
from deepspike.training.training_setup import steps_per_epoch


def quantization_aware_retrain(
    run_dir: str | Path,
    out_dir: str | Path,
    stages: tuple[int, ...] = (8, 4, 2),
    epochs: int = 1,
    per_channel: bool = False,
    lr: float | None = None,
) -> list[dict[str, Any]]:
    """Retrain the run in ``run_dir`` stage by stage; returns one summary per stage (module docstring).

    lr: learning rate of the retraining (default: the run's ``optim.lr``).
    """
    check_qat(out_dir, stages, epochs, lr, run_dir)
    config, parts, _ = load_run(run_dir)
    cfg = replace(
        config,
        train=replace(config.train, epochs=epochs, progress=False, ema_decay=None),  # no weight average kept
        optim=replace(config.optim, lr=lr if lr is not None else config.optim.lr),
    )
    t = cfg.train
    prepare_temporal_grad(parts.model, t.temporal_grad, t.time_segment, cfg.method.name, t.eprop_feedback, t.seed,
                          t.eprop_readout_decay, t.sltt_steps)
    for learner in (m for m in parts.model.modules() if isinstance(m, StdpLearner)):
        learner.learning = False  # retrained by the loss alone: STDP layers keep their weights (quantized)
    out_dir = Path(out_dir)
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    model, method, device = parts.model, parts.method, model_device(parts.model)
    train_batches = make_batches(cfg, parts.data, "train", device)
    test_batches = make_batches(cfg, parts.data, "test", device)
    results = []
    for bits in stages:
        stage = RunDir(out_dir / f"bits{bits}")
        add_fake_quantization(model, bits, per_channel)
        train_accuracy = _retrain(cfg, model, method, train_batches)
        test = evaluate(model, method, test_batches, precision=autocast_dtype(cfg.train.precision))
        summary = {
            "method": cfg.method.name,
            "model": cfg.model.name,
            "dataset": cfg.data.name,
            "bits": bits,
            "per_channel": per_channel,
            "source_run": str(run_dir),
            "test_accuracy": test["accuracy"],
            "train_accuracy": train_accuracy,
            "epochs": epochs,
        }
        _write_stage(stage, cfg, model, bits, summary)
        results.append(summary)
    remove_fake_quantization(model, bake=False)
    return results


def check_qat(out_dir: str | Path, stages: tuple[int, ...], epochs: int, lr: float | None = None,
              run_dir: str | Path | None = None) -> None:
    """A one-line ``ConfigError`` before anything is loaded or trained: ``epochs`` not an integer >= 1, no stage, a
    stage's bits not an integer from 2 to 64 or given twice, ``lr`` not a finite number > 0, a stage folder
    ``out_dir/bits<k>`` that already holds a run, or (``run_dir`` given; its ``config.yaml`` is read) a converted
    run or one of a method that learns without gradients (``wta_stdp``). (Each was found only on reaching its
    stage, after the analysis and the stages before it had been run and written: ``--qat 8,1`` and ``--qat 8,8``
    trained and wrote ``bits8``; ``stages=8``, a bare number, was a TypeError.)"""
    if not isinstance(stages, tuple | list):
        raise ConfigError(f"QAT stages must be a list of bit widths, e.g. (8, 4, 2), got {stages!r}")
    if not is_whole(epochs, 1) or not stages:
        raise ConfigError(f"QAT needs epochs >= 1 and at least one stage, got epochs={epochs!r}, stages={stages!r}")
    for bits in stages:
        check_bits(bits)
    if len(set(stages)) < len(stages):
        raise ConfigError(f"QAT stages must differ (each writes OUT/qat/bits<k>), got {tuple(stages)}")
    if lr is not None and not (is_finite(lr) and lr > 0):
        raise ConfigError(f"QAT learning rate must be a finite number > 0, got {lr!r}")
    for bits in stages:
        stage = RunDir(Path(out_dir) / f"bits{bits}")
        if stage.has_checkpoint():
            raise ConfigError(f"{stage.path} already holds a run; pick another output directory")
    method = RunDir(run_dir).read_config().method.name if run_dir is not None else None
    if method == "converted":
        raise ConfigError("a converted run has no trainable SNN; retrain its source ANN run, then convert it")
    if method is not None and learns_locally(method):
        raise ConfigError(f"method {method} learns without gradients, so quantization-aware training has nothing to "
                          "train; analyze --bits measures its accuracy at fewer weight bits")


def _retrain(cfg, model, method, train_batches) -> float:
    """``cfg.train.epochs`` epochs of the Trainer's own step with a fresh optimizer and schedule; returns the
    last epoch's training accuracy."""
    optimizer = make_optimizer(cfg.optim, model.parameters())
    scheduler = make_scheduler(cfg.schedule, optimizer, cfg.train.epochs, steps_per_epoch(cfg, train_batches))
    for epoch in range(cfg.train.epochs):
        train_batches.set_epoch(epoch)
        t = cfg.train
        stats = train_epoch(model, method, optimizer, scheduler, train_batches, grad_clip=t.grad_clip,
                            max_steps=t.max_steps_per_epoch, precision=autocast_dtype(t.precision),
                            channels_last=t.channels_last, temporal_grad=t.temporal_grad, sltt_steps=t.sltt_steps)
    return stats["train_accuracy"]


def _write_stage(stage: RunDir, cfg, model, bits: int, summary: dict[str, Any]) -> None:
    """The stage's run directory: config, checkpoint with the quantized weights baked in, summary."""
    stage.create()
    stage.write_config(cfg)
    stage.write_checkpoint(
        {"model": quantized_state_dict(model), "epoch": cfg.train.epochs, "train_seconds": 0.0, "quant_bits": bits}
    )
    stage.write_summary(summary)
