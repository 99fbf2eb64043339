"""The public API: ``import deepspike as ds`` gives a version and every name in ``__all__``; a user's script trains,
evaluates and reloads a run through it alone."""

import importlib
import pkgutil
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

import deepspike as ds


def test_version_is_the_installed_distributions():
    assert ds.__version__ == version("deepspike")


def test_every_exported_name_resolves():
    missing = [name for name in ds.__all__ if not hasattr(ds, name)]
    assert missing == []
    assert set(ds.api.__all__) == set(ds.__all__)


def test_importing_every_submodule_leaves_every_exported_name_bound():
    """The zoo's data folder was ``deepspike/pretrained/`` (a namespace package): ``import deepspike.pretrained``
    bound it over the function ``ds.pretrained`` for the rest of the process, and ``ds.pretrained(name)`` then raised
    "'module' object is not callable". No importable module may share a name with an exported object."""
    before = {name: getattr(ds, name) for name in ds.__all__}
    modules = [m.name for m in pkgutil.walk_packages(ds.__path__, "deepspike.") if m.name != "deepspike.__main__"]
    folders = Path(ds.__file__).parent.iterdir()  # a data folder (no __init__.py) is importable but walks past
    modules += [f"deepspike.{p.name}" for p in folders if p.is_dir() and p.name.isidentifier() and p.name[0] != "_"]
    for name in modules:
        importlib.import_module(name)
    assert [name for name in ds.__all__ if getattr(ds, name) is not before[name]] == []
    assert callable(ds.pretrained) and callable(ds.zoo)


def test_train_evaluate_reload_round_trip(tmp_path):
    overrides = ["model.name=mlp", "model.args.hidden=[16]", "method.name=stbp", "method.timesteps=2",
                 "data.name=digits", "train.epochs=1", "train.batch_size=128", "train.progress=false"]
    summary = ds.train(None, tmp_path / "run", overrides)
    scored = ds.evaluate(tmp_path / "run")
    assert scored["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    config, parts = ds.load_run(tmp_path / "run")
    assert config.method.name == "stbp"
    with torch.no_grad():
        out = parts.model(torch.rand(3, 1, 8, 8))
    assert out.shape == (3, 10)
    with pytest.raises(ds.ConfigError, match=r"takes images \[B, 1, 8, 8\], got \[3, 3, 8, 8\]$"):
        parts.model(torch.rand(3, 3, 8, 8))  # was torch's "mat1 and mat2 shapes cannot be multiplied"
    with pytest.raises(ds.DataNotFoundError):
        ds.evaluate(tmp_path / "missing")


def test_a_reloaded_ann_run_takes_float64_images_as_the_float32_ones(tmp_path):
    """The loaded ann net (a plain Sequential) given float64 images stopped in its first layer ("expected m1 and m2
    to have the same dtype"), where the rate-coded and converted nets cast them to the weights' dtype."""
    ds.train(None, tmp_path / "run", ["model.name=mlp", "model.args.hidden=[16]", "method.name=ann",
                                      "data.name=digits", "train.epochs=1", "train.progress=false"])
    _, parts = ds.load_run(tmp_path / "run", device="cpu")
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(parts.model(x.double()), parts.model(x))


def test_catalog_lists_what_the_registries_hold():
    assert {row["name"] for row in ds.method_table()} >= {"ann", "stbp", "spikebp", "ttfs", "stdbp", "converted"}
    lenet = next(row for row in ds.model_table() if row["name"] == "lenet")
    assert lenet["parameters"] > 0 and lenet["macs"] > lenet["parameters"]
    assert "digits" in ds.dataset_names()


@pytest.mark.parametrize(("call", "message"), [
    (lambda tmp: ds.compare("runs/x"), r"runs must be a list of run folders, e\.g\. \['runs/x'\]"),  # once letters
    (lambda tmp: ds.compare([]), "no runs given"),
    (lambda tmp: ds.timestep_sweep("runs/x", [1], tmp / "o"), "runs must be a list of run folders"),
    (lambda tmp: ds.timestep_sweep(["runs/x"], 2, tmp / "o"), "eval_steps must be a list of time steps"),
    (lambda tmp: ds.timestep_sweep(["runs/x"], [1], tmp / "o", max_samples=0), "--max-samples must be >= 1"),
    (lambda tmp: ds.timestep_sweep(["runs/x"], [0, 4], tmp / "o"), r"distinct whole numbers >= 1.*got \[0, 4\]"),
    (lambda tmp: ds.timestep_sweep(["runs/x"], [2, 2], tmp / "o"), r"distinct whole numbers >= 1.*got \[2, 2\]"),
    (lambda tmp: ds.timestep_sweep(["runs/x"], ["a"], tmp / "o"), r"distinct whole numbers >= 1.*got \['a'\]"),
    (lambda tmp: ds.timestep_sweep(["runs/x"], [], tmp / "o"), r"distinct whole numbers >= 1.*got \[\]"),
    (lambda tmp: ds.timestep_sweep(["runs/x"], [1], tmp / "o", max_samples="3"), "--max-samples must be >= 1, got '3'"),
    (lambda tmp: ds.timestep_sweep(["runs/x"], [1], tmp / "o", split="tset"), "unknown split 'tset'; valid: test, tr"),
    (lambda tmp: ds.timestep_sweep(["runs/x"], [1], tmp / "o", max_samples=2.5),
     r"--max-samples must be >= 1, got 2\.5$"),  # once a TypeError slicing the batches
    (lambda tmp: ds.convert(tmp, tmp / "c", limit=0),
     r"^limit \(--limit\) must be a whole number >= 1, got 0$"),  # once 0 images as 0%
    (lambda tmp: ds.convert(tmp, tmp / "c", seed=-1), r"--seed must be in \[0, 2\*\*63 - 1\] \(as train.seed\)"),
    (lambda tmp: ds.convert(tmp, tmp / "c", timesteps="64"),
     r"timesteps \(--timesteps\) must be a whole number >= 1, got '64'"),
    (lambda tmp: ds.convert(tmp, tmp / "c", calib_samples=0),
     r"calib_samples \(--calib-samples\) must be a whole number >= 1, got 0"),
    (lambda tmp: ds.convert(tmp, tmp / "c", calib_timesteps=2.5),
     r"calib_timesteps \(--calib-timesteps\) must be a whole number >= 1, got 2.5"),  # the fault: not whole
    (lambda tmp: ds.convert(tmp, tmp / "c", timesteps=10**11),  # once ran on without end
     r"^timesteps \(--timesteps\) must be at most 100,000 steps, got 100000000000$"),
    (lambda tmp: ds.convert(tmp, tmp / "c", calib_timesteps=100_001),
     r"^calib_timesteps \(--calib-timesteps\) must be at most 100,000 steps, got 100001$"),
    (lambda tmp: ds.convert(tmp, tmp / "c", timesteps=10**400), r"must be at most 100,000 steps, got \(an integer of"),
    (lambda tmp: ds.convert(tmp, tmp / "c", norm=3), "norm must be a name or a list of names of spike, max"),
    (lambda tmp: ds.convert(tmp, tmp / "c", norm=[]),  # once an IndexError
     r"norm must be a name or a list of names of spike, max, .*got \[\]"),
    (lambda tmp: ds.convert(tmp, tmp / "c", margin=2.0), "unknown conversion option 'margin'; valid: calib_samples"),
    (lambda tmp: ds.convert(tmp, tmp / "c", norm="max", percentile=50),  # once converted with the max, 50 ignored
     r"^--norm max does not use --percentile \(--norm percentile\)$"),
    (lambda tmp: ds.convert(tmp, tmp / "c", norm=["channel", "max"], seed=3, calib_timesteps=9),
     r"^--norm channel,max does not use --calib-timesteps \(--norm spike\), --seed \(--norm spike\)$"),
    (lambda tmp: ds.convert(tmp, tmp / "c", percentile=99.9), "--norm spike does not use --percentile"),
    (lambda tmp: ds.convert_to_ttfs(tmp, tmp / "c", margin="x"),
     r"margin \(--margin\) must be a finite number, got 'x'"),
    (lambda tmp: ds.convert_to_ttfs(tmp, tmp / "c", margin=1e300),  # was "bad value 1e+300 for method.margin"
     r"^margin \(--margin\) must be > 0 and at most 3\.403e\+38, got 1e\+300$"),
    (lambda tmp: ds.convert_to_ttfs(tmp, tmp / "c", margin=0.0), r"^margin \(--margin\) must be > 0 .*, got 0\.0$"),
    (lambda tmp: ds.convert_to_ttfs(tmp, tmp / "c", limit=0), r"limit \(--limit\) must be a whole"),
    (lambda tmp: ds.convert_to_ttfs(tmp, tmp / "c", timesteps=4), "unknown conversion option 'timesteps'; valid: al"),
    (lambda tmp: ds.train(ds.load_config(None, ["data.name=digits"]), tmp / "t", ["train.epochs=1"]),
     "overrides apply to a recipe file"),  # once trained for the default epochs, the override silently dropped
    (lambda tmp: ds.train(5, tmp / "t"), "a recipe is a path to a YAML file .or None for the defaults., got int 5"),
    (lambda tmp: ds.reproduce(3, tmp / "r"), "a recipe is a path to a YAML file"),
    (lambda tmp: ds.reproduce(None, tmp / "r"),  # was "recipe None records ...", as if a file named None
     r"^recipe \(defaults\) records no expected\.test_accuracy to reproduce$"),
    (lambda tmp: ds.export(tmp, tmp / "m.nir", thresholds_folded=True), "unknown export option 'thresholds_folded'"),
    (lambda tmp: ds.analyze(tmp, tmp / "a", {"limit": 10}), "options must be an AnalysisOptions, e.g. ds.Anal"),
    (lambda tmp: ds.evaluate(tmp, split="bogus"), "unknown split 'bogus'; valid: test, train, val"),
    (lambda tmp: ds.load_run(tmp, device="tpu"), "bad device 'tpu': expected auto, cpu, cuda or cuda:N"),
    (lambda tmp: ds.pretrained("stbp_fmnist", device=0), "bad device 0"),
    (lambda tmp: ds.export(tmp, tmp / "m.nir", check="no"), r"^check must be True or False, got 'no'$"),  # once ran
    (lambda tmp: ds.export(tmp, tmp / "m.nir", round_delays=1), r"^round_delays must be True or False, got 1$"),
    (lambda tmp: ds.evaluate(tmp, unquantised="yes"), r"^unquantised must be True or False, got 'yes'$"),
    (lambda tmp: ds.evaluate(tmp, round_delays=[True]), r"^round_delays must be True or False, got \[True\]$"),
    (lambda tmp: ds.train(None, tmp, resume="no"), r"^resume must be True or False, got 'no'$"),  # resumed the run
    (lambda tmp: ds.train(None, tmp, resume=1), r"^resume must be True or False, got 1$"),
    (lambda tmp: ds.reproduce("x.yaml", tmp, resume="no"), r"^resume must be True or False, got 'no'$"),
])
def test_mistaken_arguments_are_one_line_config_errors(tmp_path, call, message):
    """Checked before any run is read (tmp_path holds none)."""
    with pytest.raises(ds.ConfigError, match=message):
        call(tmp_path)


@pytest.mark.parametrize("options", [
    {"norm": "max", "percentile": None, "seed": None, "calib_timesteps": None},
    {"norm": "spike,percentile", "percentile": 99.0, "seed": 1, "calib_timesteps": 9},
])
def test_convert_accepts_the_options_its_norms_read_up_to_loading_the_run(tmp_path, options):
    """None leaves a norm's option at its default; an option read by one of several norms is used: both get as far as
    the (missing) run."""
    with pytest.raises(ds.DataNotFoundError, match="run"):
        ds.convert(tmp_path / "run", tmp_path / "c", **options)


def test_convert_to_ttfs_reads_none_as_the_default_up_to_loading_the_run(tmp_path):
    """As ``convert``: None leaves ``calib_samples``, ``margin``, ``alpha`` at their defaults (once a TypeError)."""
    with pytest.raises(ds.DataNotFoundError, match="run"):
        ds.convert_to_ttfs(tmp_path / "run", tmp_path / "c", calib_samples=None, margin=None, alpha=None, limit=None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CUDA refusal needs a machine without CUDA")
def test_a_pretrained_model_on_a_missing_gpu_is_one_line():
    with pytest.raises(ds.ConfigError, match="no CUDA device is available"):
        ds.pretrained("stbp_fmnist", device="cuda")


@pytest.mark.parametrize("x, message", [
    (torch.rand(1, 28, 28), r"takes images \[B, 1, 28, 28\], got \[1, 28, 28\] \(add the batch dimension"),
    (torch.rand(2, 784), r"takes images \[B, 1, 28, 28\], got \[2, 784\]$"),
    (torch.rand(2, 3, 28, 28), r"got \[2, 3, 28, 28\]$"),
    (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), "of floating-point values, got torch.uint8"),
    (torch.rand(2, 1, 28, 28).numpy(), "as a torch.Tensor, got ndarray"),
    (torch.empty(2, 1, 28, 28, device="meta"), r"on the net's device cpu, got a tensor on meta: x.to\('cpu'\)"),
])
def test_a_pretrained_net_given_input_it_cannot_take_says_so_in_one_line(x, message):
    """Each was a torch RuntimeError or AttributeError 9 to 18 frames deep (the [1, 28, 28] image ran as 128
    channels into the second conv)."""
    net = ds.pretrained("stbp_fmnist")
    with pytest.raises(ds.ConfigError, match=message):
        net(x)


@pytest.mark.parametrize("name", ["stbp_fmnist", "ttfs_window_fmnist"])
def test_a_pretrained_net_takes_float64_images_as_the_float32_ones(name):
    """float64 images stopped in the first conv or linear layer ("expected scalar type Double but found Float")."""
    net, x = ds.pretrained(name), torch.rand(3, 1, 28, 28)
    torch.manual_seed(0)
    expected = net(x)
    torch.manual_seed(0)
    assert torch.equal(net(x.double()), expected)


@pytest.mark.parametrize("call", [
    lambda: ds.evaluate({}), lambda: ds.load_run(3), lambda: ds.analyze({}), lambda: ds.spike_activity(3),
    lambda: ds.convert({}, "x"), lambda: ds.export({}, "x.nir"), lambda: ds.train(None, {}),
    lambda: ds.convert(None), lambda: ds.convert_to_ttfs(["run"]),  # without out: Path(None)'s TypeError, once
])
def test_something_that_is_not_a_path_is_one_line(call):
    """Once Python's 'expected str, bytes or os.PathLike object' TypeError."""
    with pytest.raises(ds.ConfigError, match="a run folder is a path, got|--out must be a path, got"):
        call()
