"""Knowledge distillation (``train.distill_from``): the soft loss against a hand-computed reference, the blend inside
a real training step, exact resume, and one-line refusals."""

import json
import math
import re
import shutil

import numpy as np
import pytest
import torch

from deepspike.cli import main
from deepspike.config import load_config
from deepspike.config.load import save_config
from deepspike.core.errors import ConfigError
from deepspike.data import load_dataset
from deepspike.data.splits import split_indices
from deepspike.methods.registry import method_from_options, method_names
from deepspike.training import distill, run_setup
from deepspike.training.distill import distillation_loss, load_teacher, near_uniform_warning, scored_methods
from deepspike.training.reload import load_run
from deepspike.training.runs import RunDir, load_checkpoint, save_checkpoint
from deepspike.training.trainer import Trainer
from fakedata import write_dataset
from tiny_run import TINY, StopAfterFirstEpoch, _stop_after_first_epoch, full_and_resumed_weights
from torchrun import one_and_two_processes

TEACHER = ["method.name=ann", "model.name=mlp", "model.args.hidden=[16]", "data.name=digits", "data.val_fraction=0.1",
           "train.epochs=1",
           "train.batch_size=128", "train.progress=false", "optim.lr=0.01"]


def _reference_kd(student: np.ndarray, teacher: np.ndarray, tau: float) -> float:
    """``tau^2 / B sum_b sum_k p log(p / q)`` from the definitions, in float64 numpy."""
    def softmax(z):
        e = np.exp(z / tau - (z / tau).max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    p, q = softmax(teacher), softmax(student)
    return float(tau**2 * (p * np.log(p / q)).sum(axis=1).mean())


@pytest.mark.parametrize("tau", [1.0, 4.0, 0.5])
def test_distillation_loss_is_tau_squared_kl_of_the_softened_probabilities(tau):
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(5, 7, generator=g) * 3, torch.randn(5, 7, generator=g) * 3
    got = float(distillation_loss(student, teacher, tau))
    assert got == pytest.approx(_reference_kd(student.double().numpy(), teacher.double().numpy(), tau), rel=1e-5)
    assert float(distillation_loss(teacher, teacher, tau)) == pytest.approx(0.0, abs=1e-6)  # matched: no loss


def test_distillation_loss_hand_computed_two_classes():
    # student scores (0, 0) -> q = (1/2, 1/2); teacher (ln 3, 0) at tau 1 -> p = (3/4, 1/4)
    # KL = 3/4 ln(3/2) + 1/4 ln(1/2) = 0.130812...
    got = float(distillation_loss(torch.zeros(1, 2), torch.tensor([[math.log(3.0), 0.0]]), 1.0))
    assert got == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5), rel=1e-6)


def test_the_methods_with_class_scores_and_what_stbp_scores():
    assert scored_methods() == "ann, converted, spikebp, stbp, ttfs_window"
    assert {"ttfs", "stdbp", "wta_stdp"} <= set(method_names())  # times and votes: no class scores
    stbp = load_config(None, TINY)
    method = method_from_options("stbp", stbp.method.options)
    per_step = torch.arange(24.0).reshape(2, 3, 4)  # TET's [T, B, K]
    assert torch.equal(method.class_scores(per_step), (per_step[0] + per_step[1]) / 2)
    assert torch.equal(method.class_scores(per_step[0]), per_step[0])


def _trained(folder, overrides):
    Trainer(load_config(None, overrides), folder / "run").fit()
    return folder / "run"


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    return _trained(tmp_path_factory.mktemp("teacher"), TEACHER)


@pytest.fixture(scope="module")
def poisson_teacher_run(tmp_path_factory):
    """An stbp run with Poisson input: its forward passes draw random numbers."""
    return _trained(tmp_path_factory.mktemp("poisson"), [*TINY, "train.epochs=1", "train.max_steps_per_epoch=2"])


def _two_step_run(tmp_path, overrides):
    config = load_config(None, [*TINY, "train.epochs=1", "train.max_steps_per_epoch=2", "method.encoder=direct",
                                "data.augment.crop_padding=0", *overrides])
    Trainer(config, tmp_path).fit()
    (record,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    return record["train_loss"], load_checkpoint(tmp_path / "checkpoint.pt")["model"]


def test_weight_zero_trains_as_without_a_teacher_and_weight_one_on_the_soft_loss_alone(teacher_run,
                                                                                        poisson_teacher_run, tmp_path):
    plain, plain_weights = _two_step_run(tmp_path / "plain", [])
    for teacher in (teacher_run, poisson_teacher_run):  # reading and running a teacher leave the streams alone
        zero, zero_weights = _two_step_run(tmp_path / teacher.parent.name, [f"train.distill_from={teacher}",
                                                                            "train.distill_weight=0"])
        assert zero == plain and all(torch.equal(plain_weights[k], zero_weights[k]) for k in plain_weights)
    soft, soft_weights = _two_step_run(tmp_path / "soft", [f"train.distill_from={teacher_run}",
                                                          "train.distill_weight=1", "train.distill_temperature=2"])
    assert soft != plain and any(not torch.equal(plain_weights[k], soft_weights[k]) for k in plain_weights)


@pytest.mark.parametrize("overrides, why", [
    ([], "method.readout=rate: firing rates"),
    (["method.readout=membrane", "method.loss=mse"], "method.loss=mse trains them towards one-hot targets"),
    (["method.readout=membrane", "method.loss=ce"], None)])
def test_a_student_whose_scores_stay_in_0_1_is_warned_once_at_the_start(teacher_run, tmp_path, capsys, overrides,
                                                                          why):
    """Before: no word; docs/methods/distillation.md measured such students' soft targets at a largest probability
    of 0.12 (uniform: 0.1) at tau = 4. Scores spanning at most 1, divided by tau = 4: odds at most e^0.25 = 1.28."""
    _two_step_run(tmp_path, [f"train.distill_from={teacher_run}", *overrides])
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    if why is None:
        assert lines == []
        return
    assert lines == [f"deepspike: warning: train.distill_from: the student's class scores stay in about [0, 1] "
                     f"({why}), so softened by train.distill_temperature=4 no class is more than e^(1/tau) = 1.28 "
                     f"times as probable as another: near-uniform probabilities that cannot follow the teacher's; "
                     f"distill into scores trained with method.loss=ce (stbp: with method.readout=membrane) or lower "
                     f"the temperature"]
    for quiet in (["train.distill_weight=0"], ["train.distill_temperature=0.4"]):  # no soft term; odds e^2.5 = 12
        assert near_uniform_warning(load_config(None, [*TINY, f"train.distill_from={teacher_run}", *overrides,
                                                       *quiet])) is None
    assert near_uniform_warning(load_config(None, [*TINY, f"train.distill_from={teacher_run}", *overrides,
                                                   "train.distill_temperature=0.5"])) is not None  # e^2 = 7.4


def test_a_teacher_whose_scores_stay_in_0_1_is_warned_once_at_the_start(teacher_run, poisson_teacher_run, tmp_path,
                                                                          capsys):
    """Before: a student scored by membrane and ce, taught by a rate-readout teacher, trained without a word,
    though the teacher's soft targets at tau = 4 are near uniform (odds at most e^0.25 = 1.28;
    docs/methods/distillation.md)."""
    student = ["method.readout=membrane", "method.loss=ce"]
    for teacher, why in ((poisson_teacher_run, "method.readout=rate: firing rates"), (teacher_run, None)):
        _two_step_run(tmp_path / teacher.parent.name, [f"train.distill_from={teacher}", *student])
        lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
        assert lines == ([] if why is None else [
            f"deepspike: warning: train.distill_from: the teacher's class scores stay in about [0, 1] ({why}), so "
            f"softened by train.distill_temperature=4 no class is more than e^(1/tau) = 1.28 times as probable as "
            f"another: near-uniform probabilities that pull the student towards uniform outputs; teach with scores "
            f"trained with method.loss=ce (stbp: with method.readout=membrane) or lower the temperature"])
    config = load_config(None, [*TINY, *student, f"train.distill_from={teacher_run}"])
    mse_ann = load_config(None, [*TEACHER, "method.loss=mse"])  # an ANN trained towards one-hot targets
    assert "(method.loss=mse trains them towards one-hot targets)" in near_uniform_warning(config, mse_ann)
    assert near_uniform_warning(config, load_config(None, TEACHER)) is None
    converted = ["method.name=converted", "method.timesteps=8"]  # a converted net's rates of 0/1 output spikes
    warned = near_uniform_warning(config, load_config(None, converted))
    assert "(method.readout=spike, spike_value=one: a converted net's 0/1 spike rates)" in warned
    # its remedy is a conversion's option, not a training loss: a converted net is made by deepspike convert
    assert warned.endswith("teach with a net converted with --readout membrane or --spike-value threshold (scores in "
                           "the ANN's units) or lower the temperature")
    for scaled in (["method.spike_value=threshold"], ["method.readout=membrane"]):  # scores in ANN units
        assert near_uniform_warning(config, load_config(None, [*converted, *scaled])) is None


def test_the_blended_loss_of_a_batch_is_the_reference_blend(teacher_run):
    _, student, _ = load_run(teacher_run)  # an ANN student of the teacher's own shape
    config = load_config(None, [*TEACHER, f"train.distill_from={teacher_run}", "train.distill_weight=0.3",
                                "train.distill_temperature=3"])
    distill = load_teacher(config, student, torch.device("cpu"))
    x = torch.randn(6, *student.data.input_shape, generator=torch.Generator().manual_seed(1))
    y = torch.arange(6) % 10
    with torch.no_grad():
        s = student.model(x) * 0.5  # another student: half the teacher's logits
        t = distill.teacher(x)
    task = torch.nn.functional.cross_entropy(s, y)
    got = float(distill.blend(task, s, x))
    want = 0.7 * float(task) + 0.3 * _reference_kd(s.double().numpy(), t.double().numpy(), 3.0)
    assert got == pytest.approx(want, rel=1e-5)


def test_a_distilled_run_resumes_exactly(teacher_run, tmp_path):
    config = load_config(None, [*TINY, f"train.distill_from={teacher_run}", "train.max_steps_per_epoch=3"])
    full, resumed = full_and_resumed_weights(config, tmp_path)
    assert all(torch.equal(full[k], resumed[k]) for k in full)


@pytest.mark.parametrize(("overrides", "message"), [
    (["train.distill_weight=1.5"], r"^bad value 1.5 for train.distill_weight: expected in \[0, 1\]$"),
    (["train.distill_weight=nan"], r"^bad value nan for train.distill_weight"),
    (["train.distill_temperature=0"], r"^bad value 0.0 for train.distill_temperature: expected in \[0.001, 1000\]$"),
    (["train.distill_from=' '"], r"^bad value ' ' for train.distill_from: expected a run directory"),
])
def test_bad_distillation_settings_are_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [*TINY, *overrides])


@pytest.mark.parametrize(("overrides", "message"), [
    (["train.distill_from={teacher}", "train.temporal_grad=sltt"],
     "^train.distill_from: distillation blends into the loss of the whole batch, which train.temporal_grad=sltt"),
    (["train.distill_from={teacher}", "data.name=mnist", "data.data_dir={mnist}", "data.val_fraction=0"],
     r"^train.distill_from: the teacher .* was trained on other data \(data.name digits against this run's mnist\)"),
    (["train.distill_from={teacher}", "data.normalize=true"],  # the teacher would see inputs it never read
     r"^train.distill_from: the teacher .* \(data.normalize False against this run's True\)"),
    (["train.distill_from={missing}"], r"^train.distill_from: .*missing"),
    (["train.distill_from={teacher}", "method.name=ttfs", "model.args.hidden=[8]"],
     "^train.distill_from: method 'ttfs' has no class scores to distill into .*; methods with class scores that "
     "train: ann, spikebp, stbp, ttfs_window$"),  # not converted, which is not trained
])
def test_the_cli_refuses_an_unusable_teacher_in_one_line(teacher_run, tmp_path, capsys, overrides, message):
    mnist = write_dataset("mnist", tmp_path / "data") if "data.name=mnist" in overrides else None
    filled = [o.format(teacher=teacher_run, missing=tmp_path / "missing", mnist=mnist) for o in overrides]
    tiny = [o for o in TINY if not o.startswith("method.") or "method.name=ttfs" not in filled]
    assert main(["train", *tiny, *filled, "train.epochs=1", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.search(message, err.removeprefix("deepspike: error: ")), err


def test_a_teacher_whose_data_args_spell_out_a_default_is_the_same_data(tmp_path):
    # digits_events' timesteps default to 8: {} and {timesteps: 8} read the same frames; a teacher of
    # {timesteps: 4} read other ones
    events = ["data.name=digits_events", "method.encoder=frames", "data.args.substeps=1"]
    teacher = _trained(tmp_path / "teacher", [*TINY, *events, "train.epochs=1", "train.max_steps_per_epoch=1"])
    student = [*TINY, *events, "train.epochs=1", f"train.distill_from={teacher}"]
    parts = load_run(teacher)[1]
    for spelt in ("data.args.timesteps=8", "data.args.threshold=0.2"):
        assert load_teacher(load_config(None, [*student, spelt]), parts, torch.device("cpu")) is not None
    with pytest.raises(ConfigError, match=r"\(data.args {'timesteps': 8} against this run's {'timesteps': 4}\)"):
        load_teacher(load_config(None, [*student, "data.args.timesteps=4"]), parts, torch.device("cpu"))


def test_the_teacher_is_built_for_the_students_data_without_reading_its_own(teacher_run, monkeypatch):
    student = load_config(None, [*TEACHER, f"train.distill_from={teacher_run}"])
    parts = load_run(teacher_run)[1]
    want = load_run(teacher_run)[1].model.state_dict()

    def no_second_read(config):
        raise AssertionError("the teacher's data were read again")
    monkeypatch.setattr(run_setup, "load_data", no_second_read)
    distill = load_teacher(student, parts, torch.device("cpu"))
    assert all(torch.equal(want[k], v) for k, v in distill.teacher.state_dict().items())


def _teacher_with_split(teacher_run, folder, val_fraction, seed):
    """A copy of ``teacher_run`` whose config says it held out ``val_fraction`` drawn with ``train.seed`` ``seed``."""
    shutil.copytree(teacher_run, folder)
    saved = load_config(folder / "config.yaml", [f"data.val_fraction={val_fraction}", f"train.seed={seed}"])
    save_config(saved, folder / "config.yaml")
    return folder


def test_a_teacher_that_trained_on_the_students_validation_samples_is_refused(teacher_run, tmp_path):
    labels = load_dataset("digits").train.y  # the training split the validation part is drawn from
    student_parts = load_run(teacher_run)[1]
    cases = [((0.1, 0), 0.1, 0), ((0.1, 0), 0.2, 0), ((0.1, 0), 0.0, 0), ((0.1, 0), 0.05, 0), ((0.1, 0), 0.1, 1),
             ((0.0, 5), 0.3, 1)]
    for i, ((ours, our_seed), theirs, their_seed) in enumerate(cases):
        # the reference: the samples each side holds out, drawn as the data sets draw them
        validated = set(split_indices(labels, ours, our_seed)[1].tolist()) if ours else set()
        taught_on = set(split_indices(labels, theirs, their_seed)[0].tolist()) if theirs else set(range(len(labels)))
        teacher = _teacher_with_split(teacher_run, tmp_path / str(i), theirs, their_seed)
        student = load_config(None, [*TEACHER, f"train.distill_from={teacher}", f"data.val_fraction={ours}",
                                     f"train.seed={our_seed}"])
        if validated & taught_on:
            with pytest.raises(ConfigError, match=rf"^train.distill_from: the teacher {teacher} trained on samples "
                                                  rf"this run validates on \(its data.val_fraction {theirs} with "
                                                  rf"train.seed {their_seed}, against this run's {ours} "):
                load_teacher(student, student_parts, torch.device("cpu"))
        else:
            assert load_teacher(student, student_parts, torch.device("cpu")) is not None, (ours, theirs)


def _cut_student(out, teacher, extra=()):
    """A student of ``teacher`` (as typed) cut after its first epoch in ``out``."""
    config = load_config(None, [*TINY, f"train.distill_from={teacher}", "train.max_steps_per_epoch=2", *extra])
    with pytest.raises(StopAfterFirstEpoch):
        Trainer(config, out, callbacks=(_stop_after_first_epoch,)).fit()
    return config


def test_a_resume_from_another_folder_finds_the_teacher_named_by_a_relative_path(teacher_run, tmp_path,
                                                                               monkeypatch):
    monkeypatch.chdir(teacher_run.parent)  # the teacher is "run" here
    _cut_student(tmp_path / "cut", "run")
    monkeypatch.chdir(tmp_path)  # where "run" is no run
    assert main(["train", "--resume", "--out", str(tmp_path / "cut")]) == 0  # exactly: a_distilled_run_resumes_exactly
    assert [r["epoch"] for r in RunDir(tmp_path / "cut").metrics.read()] == [1, 2]
    assert load_config(tmp_path / "cut" / "config.yaml", []).train.distill_from == "run"  # as typed
    recorded = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["teacher"]
    assert recorded == {"run": str(teacher_run), "checkpoint_sha256": RunDir(teacher_run).checkpoint_digest()}


def test_a_resume_after_the_runs_moved_together_reads_the_teacher_as_typed(teacher_run, tmp_path, monkeypatch):
    shutil.copytree(teacher_run, tmp_path / "old" / "teacher")
    monkeypatch.chdir(tmp_path / "old")
    _cut_student(tmp_path / "old" / "student", "teacher")
    (tmp_path / "old").rename(tmp_path / "new")
    monkeypatch.chdir(tmp_path / "new")
    assert main(["train", "--resume", "--out", "student"]) == 0
    assert load_checkpoint(tmp_path / "new" / "student" / "checkpoint.pt")["teacher"]["run"] == str(
        tmp_path / "new" / "teacher")


def test_a_resume_refuses_a_teacher_retrained_since_naming_both_digests(teacher_run, tmp_path, capsys):
    teacher = tmp_path / "teacher"
    shutil.copytree(teacher_run, teacher)
    _cut_student(tmp_path / "cut", teacher)
    before = RunDir(teacher).checkpoint_digest()
    state = load_checkpoint(teacher / "checkpoint.pt")
    state["model"] = {k: v + 0.01 for k, v in state["model"].items()}  # retrained: other weights, same run
    save_checkpoint(teacher / "checkpoint.pt", state)
    after = RunDir(teacher).checkpoint_digest()
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(tmp_path / "cut")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"sha256 {after[:12]}..., this run recorded {before[:12]}..." in err, err
    assert err.startswith(f"deepspike: error: train.distill_from: the teacher {teacher} is not the one"), err


def test_a_teacher_whose_checkpoint_is_replaced_while_it_is_read_is_refused(teacher_run, tmp_path, monkeypatch):
    teacher = tmp_path / "teacher"
    shutil.copytree(teacher_run, teacher)
    read = distill.load_run

    def read_then_replace(*args, **kwargs):  # the teacher checkpoints its next epoch meanwhile
        loaded = read(*args, **kwargs)
        save_checkpoint(teacher / "checkpoint.pt", {**load_checkpoint(teacher / "checkpoint.pt"), "epoch": 2})
        return loaded
    monkeypatch.setattr(distill, "load_run", read_then_replace)
    student = load_config(None, [*TEACHER, f"train.distill_from={teacher}"])
    with pytest.raises(ConfigError, match=r"^train.distill_from: the teacher's .*checkpoint.pt changed while it was "
                                          r"read \(is the teacher still training\?\)"):
        load_teacher(student, load_run(teacher_run)[1], torch.device("cpu"))


def test_a_resume_takes_the_teacher_as_typed_when_the_recorded_folder_holds_another_one(teacher_run, tmp_path,
                                                                                       monkeypatch):
    # the runs were copied to new/ and old/teacher retrained since: new/teacher is the one the student learnt from
    shutil.copytree(teacher_run, tmp_path / "old" / "teacher")
    monkeypatch.chdir(tmp_path / "old")
    _cut_student(tmp_path / "old" / "student", "teacher")
    shutil.copytree(tmp_path / "old", tmp_path / "new")
    state = load_checkpoint(tmp_path / "old" / "teacher" / "checkpoint.pt")
    save_checkpoint(tmp_path / "old" / "teacher" / "checkpoint.pt", {**state, "epoch": 2})
    monkeypatch.chdir(tmp_path / "new")
    assert main(["train", "--resume", "--out", "student"]) == 0
    assert load_checkpoint(tmp_path / "new" / "student" / "checkpoint.pt")["teacher"]["run"] == str(
        tmp_path / "new" / "teacher")


@pytest.mark.timeout(300)
def test_two_processes_distil_as_one_does(teacher_run, tmp_path):
    """Under torchrun each rank runs the teacher on its part of the global batch: the blended loss's gradients,
    averaged by DDP, give one process's weights (the tolerance of tests/training/test_distributed.py)."""
    recipe = ["method.name=stbp", "method.timesteps=2", "method.encoder=direct", "method.readout=membrane",
              "method.loss=ce", "model.name=mlp", "model.args.hidden=[32]", "data.name=digits",
              "data.augment.crop_padding=1", "data.val_fraction=0.1", "optim.name=sgd", "optim.lr=0.1",
              "train.epochs=2", "train.batch_size=50", "train.progress=false", f"train.distill_from={teacher_run}",
              "train.distill_weight=0.7", "train.distill_temperature=2"]
    one, two = one_and_two_processes(recipe, tmp_path, timeout=240)
    assert two["world_size"] == 2 and set(one["model"]) == set(two["model"])
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)
