"""Config loading: overrides, defaults, and one-line errors for every kind of bad input."""

import dataclasses

import pytest

from deepspike.config import load_config, parse_overrides, save_config
from deepspike.core.errors import ConfigError, DataNotFoundError
from deepspike.methods.stbp import StbpOptions


def test_defaults_and_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train: {epochs: 4}\noptim: {name: sgd, lr: 0.1}\n")
    cfg = load_config(recipe, ["train.epochs=7", "data.augment.hflip=true", "model.args.dropout=0.2"])
    assert cfg.train.epochs == 7  # override beats the file
    assert cfg.optim.name == "sgd" and cfg.optim.lr == 0.1
    assert cfg.data.augment.hflip is True
    assert cfg.model.args == {"dropout": 0.2}
    assert cfg.train.batch_size == 64  # schema default


def test_method_section_gets_every_option(tmp_path):
    cfg = load_config(None, ["method.name=stbp", "method.timesteps=3"])
    defaults = dataclasses.asdict(StbpOptions())
    assert cfg.method.as_dict() == {"name": "stbp", **defaults, "timesteps": 3}


def test_save_and_reload_round_trip(tmp_path):
    cfg = load_config(None, ["train.epochs=3", "optim.lr=0.01"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


@pytest.mark.parametrize(
    "override, message",
    [
        (["train.epoch=3"], "unknown key train.epoch; valid keys: epochs,"),
        (["data.augment.flip=true"], "unknown key data.augment.flip; valid keys: crop_padding, hflip"),
        (["train.epochs=abc"], "bad value 'abc' for train.epochs: expected int"),
        (["train.epochs=0"], "bad value 0 for train.epochs: expected >= 1"),
        (["optim.name=rmsprop"], "bad value 'rmsprop' for optim.name; valid: sgd, adam, adamw"),
        (["data.val_fraction=1.5"], "bad value 1.5 for data.val_fraction: expected in [0, 1)"),
        (["method.name=nope"], "unknown method 'nope'; valid: "),
        (["method.name=ann", "method.timesteps=3"], "unknown key method.timesteps; valid keys: "),
        (["trian.epochs=3"], "unknown config section 'trian'"),
        (["epochs"], "bad override 'epochs': expected key=value"),
    ],
)
def test_bad_values_give_one_line_errors(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, override)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(DataNotFoundError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(scalar)


def test_parse_overrides_types():
    cfg = parse_overrides(["a.b=3", "a.c=0.5", "d=[1,2]", "e=null"])
    assert cfg.a.b == 3 and cfg.a.c == 0.5 and list(cfg.d) == [1, 2] and cfg.e is None
