"""bf16 autocast and channels-last training (CUDA is where they pay off; checked here on the CPU); runs too large for
memory are refused before anything is allocated."""

import json
import math
from types import SimpleNamespace

import pytest
import torch

from deepspike.cli import main
from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.core.memory import GiB
from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.training import runtime
from deepspike.training.trainer import Trainer
from deepspike.training.training_setup import check_training_steps_fit
from option_effect import assert_refused_where_it_builds_nothing


def test_bf16_autocast_reaches_the_convolutions(tmp_path, monkeypatch):
    seen = []
    original = torch.nn.Conv2d.forward

    def recording_forward(self, x):
        out = original(self, x)
        seen.append((out.dtype, self.weight.is_contiguous(memory_format=torch.channels_last)))
        return out

    monkeypatch.setattr(torch.nn.Conv2d, "forward", recording_forward)
    cfg = load_config(
        None,
        [
            "method.name=ann",
            "model.name=scnn_digits",
            "model.width=0.25",
            "train.epochs=1",
            "train.max_steps_per_epoch=2",
            "train.precision=bf16",
            "train.channels_last=true",
            "train.progress=false",
        ],
    )
    summary = Trainer(cfg, tmp_path / "run").fit()
    assert seen and all(dtype == torch.bfloat16 for dtype, _ in seen)  # training and evaluation
    assert all(channels_last for _, channels_last in seen)
    assert math.isfinite(summary["test_accuracy"])


@pytest.mark.parametrize("method", ["stbp", "spikebp", "ttfs_window"])
def test_every_method_autocast_reaches_trains_under_bf16(tmp_path, method):
    model = "mlp" if method == "ttfs_window" else "scnn_digits"
    extra = ["method.timesteps=2"] if method in ("stbp", "spikebp") else []
    cfg = load_config(
        None,
        [
            f"method.name={method}",
            f"model.name={model}",
            "model.width=0.25",
            *extra,
            "train.epochs=1",
            "train.max_steps_per_epoch=2",
            "train.precision=bf16",
            "train.progress=false",
            "train.eval_batch_size=512",
        ],
    )
    Trainer(cfg, tmp_path / "run").fit()
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["train_loss"] is not None and math.isfinite(record["train_loss"])  # non-finite is logged as null


def test_bad_precision_is_rejected():
    from deepspike.core.errors import ConfigError

    with pytest.raises(ConfigError, match="bad value 'fp16' for train.precision; valid: fp32, bf16"):
        load_config(None, ["train.precision=fp16"])


def test_steps_and_parameters_that_cannot_fit_are_refused_before_anything_is_allocated(monkeypatch):
    """The refusals say both sizes in core.memory's one format (GiB with one decimal): they said whole GiB, so a need
    of 1.4 GiB on a machine of 1 GiB read 'needs at least 1 GiB ...; the cpu has 1 GiB'."""
    monkeypatch.setattr(runtime, "device_memory_bytes", lambda device: GiB)
    cpu = torch.device("cpu")
    runtime.check_steps_fit(GiB // 8, 8, cpu, "x")  # exactly the memory: fits
    with pytest.raises(ConfigError, match=r"^training T=11 needs at least 1.4 GiB for x; the cpu has 1.0 GiB: not "
                                          r"even T=9 fits$"):
        runtime.check_steps_fit(GiB // 8, 11, cpu, "x", "training ")
    runtime.check_parameters_fit(GiB // 4, cpu, "model m")
    with pytest.raises(ConfigError, match=r"^model m has 375,809,638 parameters, 1.4 GiB in float32; the cpu has "
                                          r"1.0 GiB: lower model.width$"):
        runtime.check_parameters_fit(7 * GiB // 20, cpu, "model m")


@pytest.mark.parametrize(("override", "message"), [
    ("method.timesteps=100000000", "training T=100000000 needs at least"),
    # eval_timesteps was not checked: the run trained its first epoch, then its first scoring pass was the
    # allocator's RuntimeError (a traceback, exit 1)
    ("method.eval_timesteps=10000000000", "inference T=10000000000 needs at least"),
    # the largest width and hidden size each allowed (65,536; 1e30 is refused as a width now): 74 x 2^32 weights
    ("model.args.hidden=[65536] model.width=65536", "model mlp at width 65536 has 317,827,579,904 parameters"),
])
def test_a_run_too_large_for_memory_is_one_line_and_writes_nothing(tmp_path, capsys, override, message):
    run = tmp_path / "R"
    argv = ["train", "method.name=stbp", "model.name=mlp", "model.args.hidden=[8]", *override.split(), "--out",
            str(run)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"deepspike: error: {message}") and err.count("\n") == 1
    assert not run.exists()


def test_the_training_memory_bound_counts_a_ranks_part_of_the_batch(monkeypatch):
    """train.batch_size is the global batch: under 4 ranks each holds 16 of 64 samples. 64 x 1 x 8 x 8 float32 x T=10
    is 163,840 bytes, a quarter of it 40,960."""
    monkeypatch.setattr(runtime, "device_memory_bytes", lambda device: 100_000)
    config = load_config(None, ["method.name=stbp", "method.timesteps=10", "train.batch_size=64",
                                "train.eval_batch_size=64"])  # the evaluation batch, checked too, as large
    cpu = torch.device("cpu")
    with pytest.raises(ConfigError, match="training T=10 needs at least"):
        check_training_steps_fit(config, (1, 8, 8), cpu)
    check_training_steps_fit(config, (1, 8, 8), cpu, world_size=4)


def test_the_evaluation_memory_bound_takes_eval_timesteps_and_the_eval_batch(monkeypatch):
    """256 x 1 x 8 x 8 float32 x T=2 is 131,072 bytes: over 100,000 (the training batch, 64 x 256 x 1 bytes, fits)."""
    monkeypatch.setattr(runtime, "device_memory_bytes", lambda device: 100_000)
    cpu = torch.device("cpu")
    config = load_config(None, ["method.name=stbp", "method.timesteps=1", "method.eval_timesteps=2"])
    with pytest.raises(ConfigError, match=r"^inference T=2 needs at least 0.0 GiB for one evaluation batch's \[T, B, "
                                          r"\.\.\.\] input \(256 samples of shape \[1, 8, 8\]\)"):
        check_training_steps_fit(config, (1, 8, 8), cpu)
    check_training_steps_fit(config, (1, 8, 8), cpu, world_size=2)
    smaller = load_config(None, ["method.name=stbp", "method.timesteps=1", "method.eval_timesteps=2",
                                 "train.eval_batch_size=128"])
    check_training_steps_fit(smaller, (1, 8, 8), cpu)
    same = load_config(None, ["method.name=stbp", "method.timesteps=2"])  # eval_timesteps null: timesteps
    with pytest.raises(ConfigError, match="^inference T=2"):
        check_training_steps_fit(same, (1, 8, 8), cpu)


@pytest.mark.parametrize("name, message", [
    ("cuda:2", "train.device=cuda:2 but this machine has 2 CUDA device(s), cuda:0 .. cuda:1"),
    ("cuda:99999999999999999999", "train.device=cuda:99999999999999999999 but this machine has 2 CUDA"),
    ("cuda:\u00b2", "bad device 'cuda:\u00b2': expected auto, cpu, cuda or cuda:N"),  # str.isdigit() takes a "²"
    ("cuda:\u0663", "bad device"),  # an Arabic-Indic 3
])
def test_a_cuda_device_the_machine_lacks_is_a_one_line_error(monkeypatch, name, message):
    """train.device=cuda:N was checked only for CUDA being there: a device index past the last device, or digits
    torch does not read, went on to torch.device or the first tensor moved there, a RuntimeError traceback (CUDA
    faked here: 2 devices)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match=f"^{message.replace('(', '[(]').replace(')', '[)]')}"):
        runtime.resolve_device(name)
    assert runtime.resolve_device("cuda:1") == torch.device("cuda", 1)
    assert runtime.resolve_device("cuda") == torch.device("cuda")


def test_a_batch_size_beyond_its_split_is_bounded_by_the_split(monkeypatch, tmp_path):
    """A batch holds at most its whole split: digits' 1,437 training and 360 test samples at T=8 are 2.9 MB and 0.7
    MB of input. ``train.batch_size`` or ``train.eval_batch_size`` = 1e9 (one batch of the whole split) was refused
    as 'training T=8 needs at least 1,907 GiB ... (1000000000 samples ...)' on a machine it fits (exit 2)."""
    monkeypatch.setattr(runtime, "device_memory_bytes", lambda device: 4_000_000)
    cpu = torch.device("cpu")
    huge = ["method.name=stbp", "method.timesteps=8", "train.batch_size=1000000000",
            "train.eval_batch_size=1000000000"]
    config = load_config(None, huge)
    check_training_steps_fit(config, (1, 8, 8), cpu, samples=(1437, 360))  # 1437 x 256 B x 8 = 2.9 MB: fits
    with pytest.raises(ConfigError, match=r"^training T=8 needs at least .* \(2874 samples of shape"):
        check_training_steps_fit(config, (1, 8, 8), cpu, samples=(1437 * 2, 360))
    with pytest.raises(ConfigError, match=r"^inference T=8 needs at least .* \(2000 samples of shape"):
        check_training_steps_fit(config, (1, 8, 8), cpu, samples=(1437, 2000))
    with pytest.raises(ConfigError, match=r"\(1000000000 samples of shape"):  # sizes not known: the batch as set
        check_training_steps_fit(config, (1, 8, 8), cpu)
    summary = Trainer(load_config(None, [*huge, "model.name=mlp", "model.args.hidden=[8]", "data.name=digits",
                                         "train.epochs=1", "train.progress=false"]), tmp_path / "run").fit()
    assert summary["epochs"] == 1  # trained in one batch of the whole training split


def test_a_run_without_deterministic_kernels_does_not_keep_an_earlier_runs_setting():
    """seed_everything turned torch's deterministic algorithms on for train.deterministic=true and left them on for a
    later run of the same process (the Python API) with train.deterministic=false."""
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        runtime.seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        runtime.seed_everything(0, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def test_a_machine_that_does_not_say_its_memory_refuses_nothing(monkeypatch):
    """Where ``os.sysconf`` cannot say the memory (no SC_PHYS_PAGES, no sysconf at all on Windows), every check of
    steps and parameters ended in its ValueError / AttributeError traceback; now, as ``core.memory.physical_memory``
    says 0 (not known), the checks refuse nothing."""
    import os

    def unknown(name):
        raise ValueError(f"unrecognized configuration name {name!r}")

    monkeypatch.setattr(os, "sysconf", unknown)
    cpu = torch.device("cpu")
    assert runtime.device_memory_bytes(cpu) == 0
    runtime.check_steps_fit(2**40, 2**20, cpu, "x")
    runtime.check_parameters_fit(2**50, cpu, "model m")


def test_channels_last_on_a_net_without_a_convolution_is_refused_for_a_new_run(tmp_path, capsys):
    """``train.channels_last=true`` on ``mlp`` (no 4-D weight: ``model.to(memory_format=channels_last)`` moves nothing,
    the channels-last image batch is flattened to the same values) trained as without it, in silence; ``scnn_digits``
    (three 2-D convolutions) takes it. Refused where a new run starts (``build_new_run``), exit 2 from the CLI."""
    method = get_method("ann", {})
    mlp = create_architecture("mlp", num_classes=10, input_shape=(1, 8, 8))
    conv = create_architecture("scnn_digits", num_classes=10, input_shape=(1, 8, 8))
    channels_last = SimpleNamespace(build=method.build, check_new_run=lambda arch: runtime.check_channels_last(
        True, method.build(arch), arch.name))
    assert_refused_where_it_builds_nothing(channels_last, torch.nn.Conv2d, mlp, conv,
                                           r"^train.channels_last=true lays out the 4-D weights of 2-D convolutions, "
                                           r"and model 'mlp' has none: set train.channels_last: false$")
    runtime.check_channels_last(False, method.build(mlp), "mlp")  # off: nothing to refuse
    out = tmp_path / "run"
    assert main(["train", "model.name=mlp", "train.channels_last=true", "train.epochs=1", "--out", str(out)]) == 2
    assert capsys.readouterr().err == ("deepspike: error: train.channels_last=true lays out the 4-D weights of 2-D "
                                       "convolutions, and model 'mlp' has none: set train.channels_last: false\n")
    assert not (out / "config.yaml").exists()


@pytest.mark.parametrize("method, model", [("ttfs", "scnn_digits"), ("stdbp", "zhang2021_fc400")])
def test_bf16_under_a_method_autocast_does_not_reach_is_refused_for_a_new_run(tmp_path, capsys, method, model):
    """Before: train.precision=bf16 under ttfs or stdbp trained bit for bit as fp32 (the closed-form layers compute
    float32 times in their own kernels; autocast casts none of their inputs), without a word. The reference: the
    net's scores and gradients with and without CPU bfloat16 autocast (a seeded jitter draw each)."""
    m = get_method(method, {})
    torch.manual_seed(0)
    net = m.build(create_architecture(model, num_classes=10, input_shape=(1, 8, 8)))
    x, y = torch.rand(8, 1, 8, 8), torch.arange(8)
    seen = []
    for bf16 in (False, True):
        net.zero_grad()
        torch.manual_seed(1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
            loss = m.loss(out, y)
        loss.backward()
        seen.append([out.detach(), *(p.grad.clone() for p in net.parameters())])
    assert all(torch.equal(a, b) for a, b in zip(*seen, strict=True))
    out = tmp_path / "run"
    assert main(["train", f"method.name={method}", f"model.name={model}", "train.precision=bf16", "--out",
                 str(out)]) == 2
    assert capsys.readouterr().err == (f"deepspike: error: train.precision=bf16 changes nothing under method {method}: "
                                       "its layers compute in float32 whatever autocast says; set train.precision: "
                                       "fp32\n")
    assert not (out / "config.yaml").exists()


def test_model_device_finds_the_first_parameter_without_walking_parameters(monkeypatch):
    """An api.pretrained net's InputCheck hook asks model_device on every forward: it walked the generators of
    ``parameters()`` (7.1 us on the 19-module stbp_fmnist net; first_parameter: 0.4 us). Same answer: the first
    parameter's device, else the first buffer's, else the CPU."""
    net = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 2))
    def walked(self, recurse=True):
        raise AssertionError("model_device walked parameters()")

    monkeypatch.setattr(torch.nn.Module, "parameters", walked)
    assert runtime.model_device(net) == net[1].weight.device
    monkeypatch.undo()
    buffered = torch.nn.BatchNorm1d(2, affine=False)
    assert runtime.model_device(buffered) == buffered.running_mean.device
    assert runtime.model_device(torch.nn.ReLU()) == torch.device("cpu")
