"""The typed ``method`` section: the name and the method's ``Options`` instance, validated once per run."""

import dataclasses

import pytest
import torch
import yaml

from deepspike.config import MethodConfig, RunConfig, load_config, save_config
from deepspike.config.method_section import resolve_method_section
from deepspike.core.errors import ConfigError
from deepspike.methods.ann import AnnOptions
from deepspike.methods.registry import method_from_options
from deepspike.methods.stbp import StbpMethod, StbpOptions
from deepspike.training.run_setup import build_run
from deepspike.training.trainer import Trainer


def test_section_holds_the_options_object():
    cfg = load_config(None, ["method.timesteps=3"])  # no name: stbp
    assert isinstance(cfg.method, MethodConfig) and cfg.method.name == "stbp"
    assert isinstance(cfg.method.options, StbpOptions)
    assert cfg.method.options == dataclasses.replace(StbpOptions(), timesteps=3)
    ann = load_config(None, ["method.name=ann"]).method
    assert ann.name == "ann" and ann.options == AnnOptions()
    assert RunConfig().method == MethodConfig("stbp", StbpOptions())  # a recipe without a method section


def test_saved_yaml_is_flat_name_and_every_option(tmp_path):
    cfg = load_config(None, ["method.name=stbp", "method.timesteps=5"])
    save_config(cfg, tmp_path / "config.yaml")
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert list(saved) == ["method", "model", "data", "optim", "schedule", "train", "expected"]
    assert saved["method"] == {"name": "stbp", **dataclasses.asdict(StbpOptions()), "timesteps": 5}
    assert list(saved["method"])[0] == "name"
    assert load_config(tmp_path / "config.yaml").method == cfg.method


def test_resolve_takes_dicts_and_rejects_bad_options():
    assert resolve_method_section({"name": "ann"}) == MethodConfig("ann", AnnOptions())
    with pytest.raises(ConfigError, match="unknown key method.timesteps"):
        resolve_method_section({"name": "ann", "timesteps": 3})


def test_method_from_options_needs_that_methods_options():
    method = method_from_options("stbp", StbpOptions(timesteps=2))
    assert isinstance(method, StbpMethod) and method.options.timesteps == 2
    with pytest.raises(TypeError, match="stbp.*StbpOptions.*AnnOptions"):
        method_from_options("stbp", AnnOptions())
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        method_from_options("nope", StbpOptions())


def _count_validations(monkeypatch) -> list[int]:
    """Every ``StbpOptions`` built (each validation of an stbp section builds one) adds 1 to ``calls[0]``."""
    calls = [0]
    check = StbpOptions.__post_init__

    def counting(self):
        calls[0] += 1
        check(self)

    monkeypatch.setattr(StbpOptions, "__post_init__", counting)
    return calls


def test_method_section_is_validated_once_per_run(tmp_path, monkeypatch):
    calls = _count_validations(monkeypatch)
    recipe = ["method.name=stbp", "method.timesteps=2", "model.name=mlp", "model.args.hidden=[8]",
              "train.epochs=1", "train.max_steps_per_epoch=1", "train.progress=false"]
    cfg = load_config(None, recipe)
    assert calls[0] == 1
    parts = build_run(cfg, torch.device("cpu"))
    assert parts.method.options is cfg.method.options
    Trainer(cfg, tmp_path / "run").fit()
    assert calls[0] == 1  # building and training the run did not validate the options again
