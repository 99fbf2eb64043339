"""``training.resume``: a checkpoint whose optimizer or schedule state does not fit the run is refused in one line
before anything trains. Such a file passes the checksum when made by hand (or has none, from an older version); it
used to load, then fail at the first optimizer or schedule step with a traceback (exit 1)."""

import json
import shutil

import pytest
import torch

from deepspike.cli import main
from deepspike.config import OptimConfig, load_config
from deepspike.layers.delays import DelayedLinear
from deepspike.training import training_setup
from deepspike.training.checkpoint_format import CHECKSUM_KEY
from deepspike.training.distributed import DistContext
from deepspike.training.optim import make_optimizer
from deepspike.training.random_streams import set_rng_state
from deepspike.training.resume import optimizer_state_problem, restore_training
from deepspike.training.runs import load_checkpoint, save_checkpoint
from deepspike.training.trainer import Trainer
from deepspike.training.training_setup import build_training
from fakedata import write_dataset
from nested_edit import with_entry
from tiny_run import full_and_resumed_weights

QUICK = ["method.name=ann", "model.name=mlp", "model.args.hidden=[8]", "train.epochs=1", "train.batch_size=64",
         "train.max_steps_per_epoch=2", "train.progress=false", "optim.name=adam"]


@pytest.fixture(scope="module")
def adam_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("resume") / "run"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    return run


DOES_NOT_FIT = [  # (where in the payload, value, the end of the one-line error); the first layer's weight is [8, 64]
    (("optimizer", "state", 0, "exp_avg"), torch.zeros(3), "parameter 0 of group 0's exp_avg is [3], the parameter "
                                                           "[8, 64])"),
    (("optimizer", "state", 0, "exp_avg"), ..., "parameter 0 of group 0 has the slots ['exp_avg_sq', 'step'], a step "
                                               "keeps ['exp_avg', 'exp_avg_sq', 'step'])"),
    (("optimizer", "state", 0, "step"), torch.tensor([1.0, 2.0]), "parameter 0 of group 0's step is [2], not one "
                                                                  "number)"),
    (("scheduler", "base_lrs"), [0.1, 0.2, 0.3], "the schedule's base_lrs has 3 rates for 1 parameter group(s))"),
    # these were tracebacks at the first step: ZeroDivisionError (Adam's bias correction), TypeError
    (("optimizer", "state", 0, "step"), torch.tensor(-1.0), "parameter 0 of group 0's step is -1, not a count of steps "
                                                            ">= 1)"),
    (("optimizer", "param_groups", 0, "betas"), None, "group 0's betas is None, where the run's config gives "
                                                      "(0.9, 0.999))"),
    # was an AssertionError traceback (torch steps a capturable Adam only on a GPU's parameters)
    (("optimizer", "param_groups", 0, "capturable"), True, "group 0's settings fail a step of Adam on this device (If "
                                                           "capturable=True, params and state_steps must be on "
                                                           "supported devices: ['cuda', "),
]


@pytest.mark.parametrize(("path", "value", "message"), DOES_NOT_FIT)
def test_an_optimizer_or_schedule_state_that_does_not_fit_is_one_line_and_keeps_the_run(
    adam_run, tmp_path, capsys, path, value, message
):
    run = tmp_path / "run"
    shutil.copytree(adam_run, run)
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    del payload[CHECKSUM_KEY]
    save_checkpoint(run / "checkpoint.pt", with_entry(payload, path, value))  # checksummed: made by hand
    log = (run / "metrics.jsonl").read_text()
    assert main(["train", "--out", str(run), "--resume", "train.epochs=2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"deepspike: error: {run / 'checkpoint.pt'}: its optimizer or schedule state does not fit "
                          f"the run ({message}") and err.endswith(")\n") and err.count("\n") == 1  # torch's words end
    assert (run / "metrics.jsonl").read_text() == log


@pytest.mark.parametrize("settings", [{"name": "sgd", "momentum": 0.9}, {"name": "sgd", "momentum": 0.0},
                                      {"name": "adam"}, {"name": "adamw", "weight_decay": 0.01}])
def test_the_state_a_step_leaves_fits(settings):
    """What each optimizer keeps after real steps passes, the delay positions' own group included; a fresh optimizer
    (no state yet) too."""
    layer = DelayedLinear(3, 2, 4)
    optimizer = make_optimizer(OptimConfig(**settings, lr=0.01), layer.parameters())
    assert optimizer_state_problem(optimizer) is None
    for _ in range(2):
        layer(torch.rand(5, 4, 3)).sum().backward()
        optimizer.step()
    assert optimizer_state_problem(optimizer) is None
    restored = make_optimizer(OptimConfig(**settings, lr=0.01), layer.parameters())
    restored.load_state_dict(optimizer.state_dict())
    assert optimizer_state_problem(restored) is None


RESUMED = ["data.name=digits", "train.epochs=2", "train.batch_size=64", "train.progress=false",
           "train.max_steps_per_epoch=3", "model.name=mlp", "model.args.hidden=[12]"]
EXACT_RESUMES = {  # method and option combinations whose state crosses the cut, each not resumed in another test
    "sgd_nesterov_decay_clip_step_warmup": ["method.name=ann", "optim.name=sgd", "optim.nesterov=true",
                                            "optim.weight_decay=0.01", "train.grad_clip=0.5", "schedule.name=step",
                                            "schedule.step_size=1", "schedule.warmup_epochs=1.5"],
    "adamw_linear_warmup_ema": ["method.name=ann", "optim.name=adamw", "optim.weight_decay=0.05",
                                "schedule.name=linear", "schedule.warmup_epochs=0.5", "train.ema_decay=0.9"],
    "spikebp": ["method.name=spikebp", "method.timesteps=3", "optim.name=sgd"],
    "stdbp": ["method.name=stdbp"],
    "ttfs": ["method.name=ttfs"],
    "ttfs_window": ["method.name=ttfs_window"],
    "stbp_bf16_ema_val_multistep_normalize": ["method.name=stbp", "method.timesteps=2", "train.precision=bf16",
                                              "train.ema_decay=0.5", "data.val_fraction=0.2", "data.normalize=true",
                                              "schedule.name=multistep", "schedule.milestones=[1]",
                                              "data.augment.rotate=10", "data.augment.cutout=2"],
    "ann_qcfs_ema_val": ["method.name=ann", "method.activation=qcfs", "method.levels=4", "method.qcfs_threshold=1.0",
                         "optim.lr=0.05", "train.ema_decay=0.5", "data.val_fraction=0.2"],  # conversion-aware
    "spikebp_poisson_time_fixed_dropout": ["method.name=spikebp", "method.timesteps=3", "method.encoder=poisson",
                                           "model.args.dropout=0.3"],
    "stbp_ottt_bf16_ema": ["method.name=stbp", "method.timesteps=3", "train.temporal_grad=ottt",
                           "train.precision=bf16", "train.ema_decay=0.9"],
    "stbp_eprop_readout_decay_poisson_dropout": ["method.name=stbp", "method.timesteps=3", "method.encoder=poisson",
                                                 "train.temporal_grad=eprop", "train.eprop_readout_decay=0.5",
                                                 "model.args.dropout=0.3"],
    "ttfs_ema_val_cosine_clip": ["method.name=ttfs", "train.ema_decay=0.8", "data.val_fraction=0.2",
                                 "schedule.name=cosine", "train.grad_clip=0.1"],  # val peaks in epoch 1
    "ttfs_window_ema_val": ["method.name=ttfs_window", "train.ema_decay=0.7", "data.val_fraction=0.2"],
}
TIMING = ("epoch_seconds", "train_seconds")


@pytest.mark.parametrize("name", EXACT_RESUMES)
def test_a_run_cut_after_its_first_epoch_resumes_to_the_uncut_runs_weights(name, tmp_path):
    full, cut = full_and_resumed_weights(load_config(None, [*RESUMED, *EXACT_RESUMES[name]]), tmp_path)
    assert full.keys() == cut.keys()
    assert [k for k in full if not torch.equal(full[k], cut[k])] == []
    averages = [load_checkpoint(tmp_path / run / "checkpoint.pt").get("ema") for run in ("full", "cut")]
    assert (averages[0] is None) == ("train.ema_decay" not in " ".join(EXACT_RESUMES[name]))
    if averages[0] is not None:  # the weight average too, and its update count
        assert averages[0]["updates"] == averages[1]["updates"] == 6
        assert all(torch.equal(v, averages[1]["average"][k]) for k, v in averages[0]["average"].items())
    logs = [[{k: v for k, v in json.loads(line).items() if k not in TIMING}
             for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()] for run in ("full", "cut")]
    assert logs[0] == logs[1] and [r["epoch"] for r in logs[1]] == [1, 2]  # no epoch lost or logged twice
    summaries = [{k: v for k, v in json.loads((tmp_path / run / "summary.json").read_text()).items()
                  if k not in TIMING} for run in ("full", "cut")]
    assert summaries[0] == summaries[1]  # best_val_accuracy too: the best of epoch 1 survives the cut
    if "val_accuracy" in logs[1][0]:
        assert summaries[1]["best_val_accuracy"] == max(r["val_accuracy"] for r in logs[1])


def test_epochs_added_on_resume_and_other_workers_end_where_a_run_of_that_many_epochs_does(tmp_path):
    """A step schedule does not depend on ``train.epochs``, so a 1-epoch run resumed to 2 epochs (with another
    ``data.num_workers``, which may change on resume) trains what a 2-epoch run trains, weights and log alike."""
    recipe = [*RESUMED, "method.name=stbp", "method.timesteps=2", "model.args.dropout=0.3", "schedule.name=step",
              "schedule.step_size=1", "data.augment.crop_padding=1"]
    Trainer(load_config(None, recipe), tmp_path / "full").fit()
    Trainer(load_config(None, [*recipe, "train.epochs=1"]), tmp_path / "cut").fit()
    Trainer(load_config(None, [*recipe, "data.num_workers=2"]), tmp_path / "cut", resume=True).fit()
    full, cut = (load_checkpoint(tmp_path / run / "checkpoint.pt")["model"] for run in ("full", "cut"))
    assert [k for k in full if not torch.equal(full[k], cut[k])] == []
    timing = ("epoch_seconds", "train_seconds")
    logs = [[{k: v for k, v in json.loads(line).items() if k not in timing}
             for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()] for run in ("full", "cut")]
    assert logs[0] == logs[1] and [r["epoch"] for r in logs[1]] == [1, 2]


def test_a_streamed_run_resumed_with_data_loader_workers_ends_where_the_uncut_run_does(tmp_path):
    """The test above resumes digits, which the batches take from memory (``data.num_workers`` is not used); files
    read by a DataLoader are the case where workers run: a run cut after epoch 1 in the main process and resumed with
    2 worker processes ends with the uncut run's weights and generators (Poisson input, dropout, crops, MixUp)."""
    root = write_dataset("imagefolder", tmp_path / "data", n=10)
    recipe = ["data.name=imagefolder", f"data.data_dir={root}", "data.args.size=8", "data.args.in_memory=false",
              "train.epochs=2", "train.batch_size=8", "train.progress=false", "train.max_steps_per_epoch=3",
              "model.name=mlp", "model.args.hidden=[12]", "model.args.dropout=0.3", "method.name=stbp",
              "method.timesteps=2", "method.encoder=poisson", "data.augment.crop_padding=1", "data.augment.mixup=0.3"]
    Trainer(load_config(None, recipe), tmp_path / "full").fit()
    Trainer(load_config(None, [*recipe, "train.epochs=1"]), tmp_path / "cut").fit()
    Trainer(load_config(None, [*recipe, "data.num_workers=2"]), tmp_path / "cut", resume=True).fit()
    full, cut = (load_checkpoint(tmp_path / run / "checkpoint.pt") for run in ("full", "cut"))
    assert [k for k in full["model"] if not torch.equal(full["model"][k], cut["model"][k])] == []
    generators = [run["rng_per_rank"][0] for run in (full, cut)]
    assert [k for k in ("python", "numpy", "torch") if str(generators[0][k]) != str(generators[1][k])] == []


def test_a_rank_the_checkpoint_holds_no_generators_for_draws_other_numbers_than_rank_0(adam_run, monkeypatch):
    """A 1-process run resumed by 2 ranks: rank 1 took rank 0's generators, so both drew the same Poisson spikes and
    dropout masks for different samples (the same 8 numbers here). Rank 0 takes its own; rank 1 keeps those seeded
    ``train.seed + 1`` at setup, as a fresh rank 1 does."""
    monkeypatch.setattr(training_setup, "wrap_data_parallel", lambda model, ctx, device: model)  # no process group
    config = load_config(None, [*QUICK, "train.epochs=2"])
    path = adam_run / "checkpoint.pt"
    state = load_checkpoint(path)
    draws = []
    for ctx in (DistContext(0, 2, 0), DistContext(1, 2, 1)):
        setup = build_training(config, ctx, torch.device("cpu"), resume=True)
        restore_training(setup, state, ctx, path)
        draws.append(torch.rand(8))
    set_rng_state(state["rng_per_rank"][0])
    assert torch.equal(draws[0], torch.rand(8))  # rank 0: the checkpoint's generators
    build_training(config, DistContext(1, 2, 1), torch.device("cpu"), resume=True)
    assert torch.equal(draws[1], torch.rand(8))  # rank 1: its own seeding's, not rank 0's
    assert not torch.equal(draws[0], draws[1])


DAMAGES = {  # how a latest checkpoint.pt was damaged (a write or copy cut part-way, a flipped bit) -> what is said
    "cut_to_half": (lambda data: data[: len(data) // 2], "it is cut off (a zip archive without its end"),
    "emptied": (lambda data: b"", "it is empty (0 bytes)"),
    "one_byte_flipped": (lambda data: data[:-200] + bytes([data[-200] ^ 0xFF]) + data[-199:], "it is damaged: "),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_resume_from_a_damaged_checkpoint_is_one_line_and_changes_nothing(adam_run, tmp_path, capsys, damage):
    """The CLI refuses it with exit 2 and one line naming the file; no file of the run is written or removed."""
    run = tmp_path / "run"
    shutil.copytree(adam_run, run)
    cut, says = DAMAGES[damage]
    (run / "checkpoint.pt").write_bytes(cut((run / "checkpoint.pt").read_bytes()))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["train", "--out", str(run), "--resume", "train.epochs=2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("deepspike: error: ") and "Traceback" not in err
    assert str(run / "checkpoint.pt") in err and says in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
