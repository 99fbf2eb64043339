"""Config loading: overrides, defaults, and one-line errors for every kind of bad input."""

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

import deepspike
from deepspike.cli import build_parser, main
from deepspike.commands.train import split_config_arg
from deepspike.config import load_config, load_saved_config, parse_overrides, save_config
from deepspike.config.schema import SET_ELSEWHERE, check_settings_used
from deepspike.core.errors import ConfigError, DataCorruptError, DataNotFoundError, UnusedOptionError
from deepspike.data import load_dataset
from deepspike.methods.registry import method_from_options
from deepspike.methods.stbp import StbpOptions
from deepspike.models.registry import create_architecture


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
        (["method.stdp_layers=[0,a]"], "bad value 'a' for method.stdp_layers[1]: expected int"),  # a list's item
        (["train.epochs=0"], "bad value 0 for train.epochs: expected >= 1"),
        (["optim.name=rmsprop"], "bad value 'rmsprop' for optim.name; valid: sgd, adam, adamw"),
        (["data.val_fraction=1.5"], "bad value 1.5 for data.val_fraction: expected in [0, 1)"),
        (["method.name=nope"], "unknown method 'nope'; valid: "),
        (["method.name=ann", "method.timesteps=3"], "unknown key method.timesteps; valid keys: "),
        (["trian.epochs=3"], "unknown config section 'trian'"),
        (["epochs"], "bad override 'epochs': expected key=value"),
        (["[=[]"], "bad override '[=[]'"),  # omegaconf's key grammar raised IndexError (hypothesis found it)
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


def test_a_folder_given_as_recipe_is_named_a_folder(tmp_path):
    """Once 'config file not found: DIR' of a folder that exists."""
    with pytest.raises(ConfigError, match=r"is a folder, not a recipe file \(YAML\)$"):
        load_config(tmp_path)


@pytest.mark.parametrize(("path", "overrides", "message"), [
    (5, None, "a recipe is a path to a YAML file (or None for the defaults), got int 5"),  # once a TypeError
    (None, "train.epochs=3", "overrides must be a list of key=value strings, e.g. ['train.epochs=3'], got "
                             "'train.epochs=3'"),  # once read letter by letter: "bad override 't'"
    (None, ["train.epochs=3", 4], "overrides must be a list of key=value strings"),
])
def test_arguments_of_the_wrong_type_are_one_line(path, overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_overrides_may_be_a_tuple():
    assert load_config(None, ("train.epochs=3",)).train.epochs == 3


def test_parse_overrides_types():
    cfg = parse_overrides(["a.b=3", "a.c=0.5", "d=[1,2]", "e=null"])
    assert cfg.a.b == 3 and cfg.a.c == 0.5 and list(cfg.d) == [1, 2] and cfg.e is None


@pytest.mark.parametrize("item", ["train.epochs=[" + "1," * 15_000, "x" * 30_000, "train.epochs.x[=" + "1" * 30_000])
def test_a_very_long_override_is_not_echoed_whole(item):
    """The override was repr'd whole into its error: a 30,000-character value gave a 30 KB error line."""
    with pytest.raises(ConfigError) as info:
        parse_overrides([item])
    assert len(str(info.value)) < 400 and item[:20] in str(info.value)


OUT_OF_RANGE = [
    (["method=5"], "bad value 5 for section method: expected a mapping of its keys"),
    (["train=[1, 2]"], "bad value [1, 2] for section train: expected a mapping"),
    (["model.width=.inf"], "bad value inf for model.width: expected a finite number"),
    (["optim.lr=inf"], "bad value inf for optim.lr: expected a finite number"),
    (["optim.lr=nan"], "bad value nan for optim.lr: expected > 0"),
    (["optim.lr=1e400"], "bad value inf for optim.lr: expected a finite number"),
    (["optim.betas=[2,3]"], "bad value [2.0, 3.0] for optim.betas: expected a list of two numbers in [0, 1)"),
    (["optim.betas=[0.9, 1]"], "for optim.betas: expected a list of two numbers in [0, 1)"),
    (["optim.momentum=1.5"], "bad value 1.5 for optim.momentum: expected in [0, 1)"),
    (["optim.name=sgd", "optim.nesterov=true", "optim.momentum=0"],
     "bad value True for optim.nesterov: expected false with optim.momentum=0 (Nesterov momentum needs a momentum"),
    (["optim.weight_decay=-1"], "bad value -1.0 for optim.weight_decay: expected >= 0"),
    (["optim.lr=1e300"], "bad value 1e+300 for optim.lr: expected at most float32's 3.403e+38"),
    (["optim.weight_decay=1e39"], "bad value 1e+39 for optim.weight_decay: expected at most float32's 3.403e+38"),
    # were accepted: 0 or subnormal in float32, the step (or the clipped gradient) was 0 and nothing was learnt
    (["optim.lr=1e-320"], "bad value 1e-320 for optim.lr: expected at least float32's smallest normal 1.175e-38"),
    (["optim.lr=1e-39"], "bad value 1e-39 for optim.lr: expected at least float32's smallest normal 1.175e-38"),
    (["optim.weight_decay=1e-320"], "for optim.weight_decay: expected 0 or at least float32's smallest normal"),
    (["train.grad_clip=1e-320"], "bad value 1e-320 for train.grad_clip: expected at least float32's smallest normal"),
    # was accepted: float32 holds no such norm (the clip's max_norm became inf), so nothing was clipped
    (["train.grad_clip=1e39"], "bad value 1e+39 for train.grad_clip: expected at most float32's 3.403e+38 or null"),
    (["schedule.gamma=1e-320"], "bad value 1e-320 for schedule.gamma: expected at least float32's smallest normal"),
    (["train.seed=99999999999999999999"], "bad value 99999999999999999999 for train.seed: expected in [0, 2**63 - 1]"),
    (["train.seed=-1"], "bad value -1 for train.seed: expected in [0, 2**63 - 1]"),
    (["data.args.seed=5"], "data.args.seed is not a data set option: set train.seed instead"),
    (["data.args.val_fraction=0.5"], "set data.val_fraction instead"),
    # was "TypeError: load_dataset() got multiple values for argument 'name'" (a traceback, exit 1)
    (["data.args.name=x"], "data.args.name is not a data set option: set data.name instead"),
    (["model.args.width=2"], "model.args.width is not a model option: set model.width instead"),
    (["model.args.num_classes=3"], "model.args.num_classes is not a model option: the data set sets it"),
    (["model.args.input_shape=[1, 8, 8]"], "model.args.input_shape is not a model option: the data set sets it"),
    # was "TypeError: create_architecture() got multiple values for argument 'name'" (a traceback, exit 1)
    (["model.args.name=x"], "model.args.name is not a model option: set model.name instead"),
    (["schedule.min_factor=-1"], "bad value -1.0 for schedule.min_factor: expected in [0, 1]"),
    (["schedule.min_factor=1.5"], "bad value 1.5 for schedule.min_factor: expected in [0, 1]"),
    (["schedule.milestones=[3, -1]"], "bad value [3, -1] for schedule.milestones: expected epochs >= 0"),
    (["model.args.dropout=.nan"], "bad value nan for model.args.dropout: expected a finite number"),
    (["data.args.size=[1, -.inf]"], "bad value -inf for data.args.size[1]: expected a finite number"),
    (["method.name=stbp", "method.threshold=-.inf"], "bad value -inf for method.threshold: expected a finite number"),
    (["model.args.n=" + "9" * 30], "bad value 999999999999999999999999999999 for model.args.n: expected an integer in"),
    (["model.args.n=" + "9" * 300], "bad value (an integer of 997 bits) for model.args.n"),
    (["model.args.x=[]", "model.args.x.name=1"], "bad override 'model.args.x.name=1': invalid literal for int()"),
    (["model.args.x=[]", "model.args.x.5=1"], "bad override 'model.args.x.5=1': list index out of range"),
    (["method.name='${train.seed}'"], "the interpolation at method.name reads train.seed, which the recipe and its "
                                      "overrides do not set (an interpolation reads the keys written there, not "
                                      "defaults)"),
    # was "Interpolation key 'train.seed' not found" of a key the override writes
    (["train.seed='${train.seed}'"], "cannot resolve the interpolation at train.seed: Recursive interpolation "),
    # the null dropped the key set before it (lif with the section's defaults), or was dropped by the key after it
    # (the recipe's section kept), in silence
    (["method.neuron=plif", "method=null"], "overrides 'method.neuron=plif' and 'method=null' conflict: 'method=null' "
                                            "sets method as a whole (null: each of its keys at its default), which "
                                            "would drop the other in silence: give one of the two"),
    (["model.args=null", "train.epochs=1", "model.args.hidden=[3]"],
     "overrides 'model.args=null' and 'model.args.hidden=[3]' conflict: 'model.args=null' sets model.args as a whole"),
]


@pytest.mark.parametrize("override, message", OUT_OF_RANGE)
def test_out_of_range_values_are_one_line_errors_and_exit_2(override, message, tmp_path, capsys):
    with pytest.raises(ConfigError) as info:
        load_config(None, override)
    assert message in str(info.value) and "\n" not in str(info.value)
    out = tmp_path / "out"
    assert main(["train", *override, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"deepspike: error: {info.value}\n"
    assert not out.exists()


def test_range_limits_are_accepted():
    cfg = load_config(None, ["optim.betas=[0, 0.999]", "optim.momentum=0", "schedule.min_factor=1",
                             "train.seed=9223372036854775807", "schedule.milestones=[0, 5]",
                             "model.args.n=-9223372036854775808"])
    assert cfg.train.seed == 2**63 - 1 and cfg.optim.betas == [0.0, 0.999] and cfg.schedule.min_factor == 1.0


def test_data_args_set_elsewhere_are_the_loader_common_arguments():
    common = set(inspect.signature(load_dataset).parameters) - {"kwargs"}  # name too: it was a TypeError
    assert set(SET_ELSEWHERE) == common


def test_binary_recipe_is_one_line_exit_2(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes(bytes(range(128, 256)))
    assert main(["train", str(recipe), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"deepspike: error: {recipe} is not a UTF-8 text file (byte 0x80 at offset 0)\n"


def test_malformed_interpolation_in_a_recipe_is_one_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {args: {a: '${'}}\n")
    with pytest.raises(ConfigError, match=r"^cannot load .*r.yaml: no viable alternative at input '\$\{'$"):
        load_config(recipe)


@pytest.mark.parametrize(("text", "missing"), [("", "method, model, data, optim, schedule, train"),
                                               ("method: {name: stbp}\n", "model, data, optim, schedule, train"),
                                               ("{}", "method, model")])
def test_a_run_config_without_its_sections_is_refused(tmp_path, text, missing):
    whole = tmp_path / "whole.yaml"
    save_config(load_config(None, ["method.timesteps=2"]), whole)
    damaged = tmp_path / "config.yaml"
    damaged.write_text(text)
    with pytest.raises(DataCorruptError, match=f"is not a whole run config \\(missing {missing}"):
        load_saved_config(damaged)
    without_method_name = whole.read_text().replace("  name: stbp\n", "")
    damaged.write_text(without_method_name)
    with pytest.raises(DataCorruptError, match="missing method.name"):
        load_saved_config(damaged)
    assert load_saved_config(whole).method.options.timesteps == 2


def test_a_run_of_a_method_not_registered_here_says_how_to_read_it(tmp_path):
    """A run trained by a method of the user's own, read by the deepspike command (which never imports it)."""
    path = tmp_path / "config.yaml"
    save_config(load_config(None), path)
    path.write_text(path.read_text().replace("  name: stbp\n", "  name: my_alif\n"))
    with pytest.raises(ConfigError) as e:
        load_saved_config(path)
    assert str(e.value) == (f"{path} is a run of method 'my_alif', which is not registered here: a method of your "
                            "own registers when its module is imported, so read the run through the Python API after "
                            "that import (ds.evaluate, ds.analyze, ds.load_run; ds.train(..., resume=True) to "
                            "train on)")


def test_a_run_config_saved_before_the_expected_section_loads(tmp_path):
    path = tmp_path / "config.yaml"
    save_config(load_config(None), path)
    text = path.read_text()
    path.write_text(text[:text.index("expected:")])
    assert load_saved_config(path).expected.test_accuracy is None


@pytest.mark.parametrize(("override", "value"), [("train=3", "3"), ("method=stbp", "'stbp'"), ("data=[1]", "[1]")])
def test_a_section_set_to_a_value_is_refused_whatever_follows(override, value):
    section = override.split("=")[0]
    with pytest.raises(ConfigError, match=re.escape(f"bad value {value} for section {section}: expected a mapping")):
        load_config(None, ["train.epochs=1", override, "train.progress=false"])


@pytest.mark.parametrize("text", ["method: 3\n", "method: rename\n"])
def test_a_run_config_whose_section_is_not_a_mapping_is_one_line(tmp_path, text):
    """``method: 3`` once met ``"name" in 3`` (TypeError); ``method: rename`` passed the substring test."""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="for section method: expected a mapping of its keys"):
        load_saved_config(path)


@pytest.mark.parametrize("text, key", [
    ("data: {data_dir: off}\n", "data.data_dir"),  # once the folder "False"
    ("expected: {measured_by: yes}\n", "expected.measured_by"),  # once recorded as "True"
    ("method: {name: stbp, surrogate: on}\n", "method.surrogate"),
])
def test_an_unquoted_yes_no_on_off_in_a_text_key_is_refused_not_stored_as_true(tmp_path, capsys, text, key):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    assert main(["train", str(recipe), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepspike: error: bad value ") and f" for {key}: expected a string (" in err
    assert "quote the text" in err and err.count("\n") == 1 and not (tmp_path / "out").exists()


def test_a_quoted_yes_or_off_in_a_text_key_keeps_its_text(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: {data_dir: 'off'}\nexpected: {measured_by: \"yes\"}\n")
    config = load_config(recipe)
    assert (config.data.data_dir, config.expected.measured_by) == ("off", "yes")


@pytest.mark.parametrize("text", ["${name}", "runs/${train.seed}/x", "\\${name}", "a\\\\${oc.env:HOME}", "$ {x}", "${"])
def test_a_saved_config_reads_back_text_holding_an_interpolation_as_that_text(tmp_path, text):
    """A recipe's escaped ``\\${...}`` is the literal text ``${...}``; a run's config.yaml wrote it unescaped, so
    reading the run (resume, eval) resolved it: ``${name}`` in data.data_dir came back as the data set's name, and
    ``${train.seed}`` was "Interpolation key 'train.seed' not found" (exit 2)."""
    config = load_config(None, ["method.name=ann"])
    config.data.data_dir = text
    config.expected.measured_by = text
    config.model.args = {"note": [text]}
    save_config(config, tmp_path / "config.yaml")
    back = load_saved_config(tmp_path / "config.yaml")
    assert (back.data.data_dir, back.expected.measured_by, back.model.args) == (text, text, {"note": [text]})
    assert back == config


def test_an_interpolation_reads_a_key_of_another_section_or_one_beside_it(tmp_path, capsys):
    """Each section but method used to be resolved alone: ``${method.timesteps}`` in train was "invalid train config:
    Interpolation key 'method.timesteps' not found" though the recipe set it (exit 2), while the method section read
    other sections. Now every section reads the whole recipe, a key by its full path or beside it (``${.key}``)."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: {timesteps: 4, eval_timesteps: '${train.epochs}'}\n"
                      "train: {epochs: 3, batch_size: '${method.timesteps}', seed: '${.epochs}'}\n")
    config = load_config(recipe)
    assert (config.train.batch_size, config.train.seed, config.method.options.eval_timesteps) == (4, 3, 3)
    assert load_config(recipe, ["method.timesteps=6"]).train.batch_size == 6  # resolved after the overrides
    out = tmp_path / "out"
    assert main(["train", str(recipe), "train.seed=${method.nope}", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "deepspike: error: the interpolation at train.seed reads method.nope, which the recipe and its overrides do "
        "not set (an interpolation reads the keys written there, not defaults): write that key, or read one by its "
        "full path, e.g. ${train.epochs}, or beside it, e.g. ${.epochs}\n")
    assert not out.exists()


def test_a_literal_interpolation_in_the_method_section_is_that_text_and_a_saved_run_reads_it_back(tmp_path):
    """The method section was resolved twice: an escaped ``\\${x}`` in method.init_from came out of the first
    resolution as ``${x}`` and the second said "invalid method config: Interpolation key 'x' not found" (exit 2); a run
    saved with such text (``save_config`` escapes it) could not be read."""
    config = load_config(None, ["method.init_from=runs/\\${x}.nir"])
    assert config.method.options.init_from == "runs/${x}.nir"
    save_config(config, tmp_path / "config.yaml")
    assert load_saved_config(tmp_path / "config.yaml") == config


DEMO = Path(deepspike.__file__).parent / "recipes" / "demo.yaml"  # the README's quick-start recipe: method.decay: 0.5


def _loaded_from_command_line(argv: list[str]):
    """``deepspike train ...`` as far as its config: the CLI's parser and ``commands.train``'s argument split."""
    args = build_parser().parse_args(argv)
    return load_config(*split_config_arg(args.config, args.overrides))


def _options_used(config) -> None:
    """The refusals of options a new run would not read (``training.reload.build_new_run``), without the net."""
    check_settings_used(config)
    method_from_options(config.method.name, config.method.options).check_options_used()


def test_a_recipe_value_an_override_makes_unused_is_reset_to_its_default_with_one_note(tmp_path, capsys):
    config = _loaded_from_command_line(["train", str(DEMO), "method.neuron=plif", "--out", str(tmp_path / "r")])
    assert config.method.options.decay == StbpOptions().decay == 0.25  # was 0.5: the run then refused to start
    assert config.method.options.neuron == "plif" and config.method.options.threshold == 0.5  # the rest as written
    _options_used(config)  # the run starts
    err = capsys.readouterr().err.splitlines()
    assert err == [f"deepspike: note: method.decay=0.5 from {DEMO} has no effect with method.neuron=plif: it takes "
                   "effect only when method.neuron is one with a fixed decay, not plif (which learns its own, started "
                   "from method.tau_init); using the default 0.25"]
    save_config(config, tmp_path / "config.yaml")  # the run's config holds the value used: a reload reproduces it
    assert load_saved_config(tmp_path / "config.yaml") == config
    assert "decay: 0.25" in (tmp_path / "config.yaml").read_text()


def test_recipe_values_a_schedule_override_makes_unused_are_each_reset(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("schedule: {name: step, step_size: 5, gamma: 0.5}\n")
    config = load_config(recipe, ["train.epochs=2", "schedule={name: cosine}"])  # a whole section given too
    assert (config.schedule.step_size, config.schedule.gamma) == (30, 0.1)  # ScheduleConfig's defaults
    _options_used(config)
    notes = capsys.readouterr().err.splitlines()
    assert [line.split(": it takes")[0] for line in notes] == [
        f"deepspike: note: schedule.step_size=5 from {recipe} has no effect with schedule={{name: cosine}}",
        f"deepspike: note: schedule.gamma=0.5 from {recipe} has no effect with schedule={{name: cosine}}"]


def test_the_note_of_a_reset_is_printed_by_torchruns_first_process_only(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")  # torchrun's second process: every process loads the recipe
    assert load_config(DEMO, ["method.neuron=plif"]).method.options.decay == 0.25
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    load_config(DEMO, ["method.neuron=plif"])
    assert capsys.readouterr().err.startswith("deepspike: note: method.decay=0.5 from ")


def test_an_unused_value_set_on_the_command_line_is_still_refused(tmp_path, capsys):
    config = load_config(DEMO, ["method.neuron=plif", "method.decay=0.5"])
    assert config.method.options.decay == 0.5 and capsys.readouterr().err == ""
    with pytest.raises(UnusedOptionError, match=r"^method\.decay=0\.5 has no effect unless method\.neuron is one "
                                                r"with a fixed decay.*leave method\.decay at its default 0\.25$"):
        _options_used(config)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("schedule: {name: step, gamma: 0.5}\n")
    config = load_config(recipe, ["schedule.name=cosine", "schedule.step_size=5"])  # first unused: the user's own
    with pytest.raises(ConfigError, match=r"^schedule\.step_size=5 has no effect unless schedule\.name=step"):
        _options_used(config)


def test_a_recipe_inconsistent_by_itself_is_still_refused_with_or_without_overrides(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("schedule: {name: cosine, step_size: 5}\nmethod: {name: stbp, neuron: plif, decay: 0.5}\n")
    for overrides in ([], ["train.epochs=2"], ["schedule.min_factor=0.1", "method.timesteps=3"]):
        config = load_config(recipe, overrides)
        assert (config.schedule.step_size, config.method.options.decay) == (5, 0.5)
        with pytest.raises(UnusedOptionError, match=r"^schedule\.step_size=5 has no effect unless"):
            _options_used(config)
    assert capsys.readouterr().err == ""


def test_recipe_values_a_sections_own_check_refuses_are_reset_when_an_override_made_them_unused(tmp_path, capsys):
    """``train.time_segment`` without ``temporal_grad: checkpoint`` and ``method.membrane_decay`` without ``readout:
    membrane`` are refused when the config loads: the recipe's values, after an override of the mode they belong to,
    were refused the same way ('bad value 2 for train.time_segment: expected null unless ...')."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: {timesteps: 2, readout: membrane, membrane_decay: 0.9, loss: ce}\n"
                      "train: {temporal_grad: checkpoint, time_segment: 2}\n")
    config = load_config(recipe, ["train.temporal_grad=sltt", "method.readout=rate"])
    assert (config.train.time_segment, config.method.options.membrane_decay) == (None, 1.0)
    assert capsys.readouterr().err.splitlines() == [
        f"deepspike: note: train.time_segment=2 from {recipe} has no effect with train.temporal_grad=sltt: it takes "
        "effect only when train.temporal_grad=checkpoint; using the default null",
        f"deepspike: note: method.membrane_decay=0.9 from {recipe} has no effect with method.readout=rate: it takes "
        "effect only when method.readout=membrane; using the default 1.0"]
    with pytest.raises(UnusedOptionError, match=r"^bad value 2 for train\.time_segment: expected null unless train\."
                                                r"temporal_grad=checkpoint$"):
        load_config(recipe, ["train.temporal_grad=sltt", "train.time_segment=2"])  # the user's own: refused
    recipe.write_text("train: {temporal_grad: bptt, time_segment: 2}\n")
    with pytest.raises(UnusedOptionError, match=r"^bad value 2 for train\.time_segment"):
        load_config(recipe, ["train.epochs=2"])  # the recipe alone sets it unused: refused


@pytest.mark.parametrize("recipe", ["ann_fmnist_vgg_qcfs.yaml", "ann_fmnist_resnet_qcfs.yaml"])
def test_the_qcfs_recipes_plain_relu_override_resets_their_levels_and_a_user_set_level_is_refused(recipe, capsys):
    """The recipes' comment says "the plain ReLU ANN of the same shape: add method.activation=relu": their
    ``levels: 4`` and ``qcfs_threshold: 2.0`` were kept, read by no layer, in the run's config; a user's
    ``method.levels=4`` with relu was accepted in silence (ann had no ``check_options_used``)."""
    path = Path(__file__).resolve().parents[2] / "configs" / recipe
    config = load_config(path, ["method.activation=relu"])
    assert (config.method.options.levels, config.method.options.qcfs_threshold) == (8, 8.0)  # AnnOptions' defaults
    _options_used(config)  # the run starts
    assert [line.split(": it takes")[0] for line in capsys.readouterr().err.splitlines()] == [
        f"deepspike: note: method.{key} from {path} has no effect with method.activation=relu"
        for key in ("levels=4", "qcfs_threshold=2.0")]
    config = load_config(path, ["method.activation=relu", "method.levels=4"])
    with pytest.raises(UnusedOptionError, match=r"^method\.levels=4 has no effect unless method\.activation=qcfs: "
                                                r"set that, or leave method\.levels at its default 8$"):
        _options_used(config)


def test_recipe_values_a_model_override_makes_unused_are_reset_and_user_set_ones_still_refused(tmp_path, capsys):
    """The checks that need the model (stbp's ``norm`` and ``neunorm``, spikebp's ``pool_threshold``, ttfs's
    ``batchnorm``) refused the recipe's value when a ``model.*`` override took away the layers it sets ('method.norm=bn
    sets the kind of the model's batch-norm layers, but model 'mlp' has none'), where the other checks reset it."""
    cases = [("method: {name: stbp, timesteps: 2, norm: bn, neunorm: true}\nmodel: {name: fang2021_fmnist}\n",
              "model.name=mlp", {"norm": "none", "neunorm": False}),
             ("method: {name: spikebp, timesteps: 2, pool_threshold: 0.5}\nmodel: {name: vgg, args: {pool: avg}}\n",
              "model.args.pool=max", {"pool_threshold": 0.75}),
             ("method: {name: ttfs, batchnorm: true}\nmodel: {name: zhou2021_cifar_small}\n",
              "model.name=zhang2021_fc340", {"batchnorm": False})]
    for i, (text, override, reset) in enumerate(cases):
        recipe = tmp_path / f"r{i}.yaml"
        recipe.write_text(text)
        config = load_config(recipe, [override])
        assert {key: getattr(config.method.options, key) for key in reset} == reset
        method = method_from_options(config.method.name, config.method.options)
        method.check_new_run(create_architecture(config.model.name, **config.model.args))  # the run starts
    notes = [line.split(" has no effect")[0] for line in capsys.readouterr().err.splitlines()]
    assert notes == [f"deepspike: note: method.norm='bn' from {tmp_path / 'r0.yaml'}",
                     f"deepspike: note: method.neunorm=True from {tmp_path / 'r0.yaml'}",
                     f"deepspike: note: method.pool_threshold=0.5 from {tmp_path / 'r1.yaml'}",
                     f"deepspike: note: method.batchnorm=True from {tmp_path / 'r2.yaml'}"]
    config = load_config(tmp_path / "r0.yaml", ["model.name=mlp", "method.norm=bn"])  # the user's own: refused
    assert config.method.options.norm == "bn"
    with pytest.raises(UnusedOptionError, match=r"^method\.norm=bn sets the kind of the model's batch-norm layers, "
                                                r"but model 'mlp' has none"):
        method_from_options("stbp", config.method.options).check_new_run(create_architecture("mlp"))


def test_recipe_neuron_settings_a_neuron_override_makes_unused_are_reset_not_refused(tmp_path, capsys):
    """The neuron options' own checks (``methods.neuron_choice``) refused the recipe's value when an override chose a
    neuron that has no use for it: the Spikformer recipe's ``detach_reset: true`` with ``method.neuron=psn`` stopped
    the loading ('method.detach_reset acts on a reset, and method.neuron=psn has none')."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: {name: stbp, timesteps: 2, detach_reset: true, neuron: plif, neuron_params: channel, "
                      "learn_threshold: true}\n")
    config = load_config(recipe, ["method.neuron=psn"])
    o = config.method.options
    assert (o.neuron, o.detach_reset, o.neuron_params) == ("psn", False, "layer")
    assert [line.split(" has no effect")[0] for line in capsys.readouterr().err.splitlines()][:2] == [
        f"deepspike: note: method.detach_reset=True from {recipe}", f"deepspike: note: method.neuron_params='channel' "
                                                                  f"from {recipe}"]
    config = load_config(recipe, ["method.neuron=alif"])  # the fixed-parameter alif: both learning options unused
    assert (config.method.options.learn_threshold, config.method.options.neuron_params) == (False, "layer")
    with pytest.raises(UnusedOptionError, match=r"^method\.detach_reset acts on a reset, and method\.neuron=psn has "
                                                r"none$"):
        load_config(recipe, ["method.neuron=psn", "method.detach_reset=true"])  # the user's own: refused


def test_a_method_name_override_leaves_out_the_recipes_options_of_its_own_method(tmp_path, capsys):
    """configs/ttfs_window_cifar10_vgg11.yaml says 'convert a trained ReLU VGG-11: deepspike train ...
    method.name=ann': that stopped with 'unknown key method.margin', the recipe's option of ttfs_window."""
    recipe = Path(__file__).resolve().parents[2] / "configs" / "ttfs_window_cifar10_vgg11.yaml"
    config = load_config(recipe, ["method.name=ann"])
    assert config.method.name == "ann" and config.model.name == "vgg11"
    assert capsys.readouterr().err == (f"deepspike: note: method.margin=1.5 from {recipe} is an option of method "
                                       "'ttfs_window', not of method.name=ann: left out\n")
    config = load_config(DEMO, ["method.name=spikebp"])  # the options both have are kept: timesteps 8, loss mse
    assert (config.method.options.timesteps, config.method.options.loss) == (8, "mse")
    with pytest.raises(ConfigError, match=r"^unknown key method\.margin; valid keys: loss, init"):
        load_config(recipe, ["method.name=ann", "method.margin=2"])  # the user's own: refused
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: {margin: 1.5}\n")  # an option of neither stbp nor ann: refused
    with pytest.raises(ConfigError, match=r"^unknown key method\.margin"):
        load_config(recipe, ["method.name=ann"])


def test_a_recipes_vote_group_a_readout_override_makes_unused_is_reset(tmp_path, capsys):
    """configs/stbp_fashion_mnist.yaml's ``vote_group: 10`` with ``method.readout=membrane`` stopped the loading
    ('method.vote_group > 1 needs method.readout: rate'): the options' own check raised a plain ConfigError."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: {name: stbp, timesteps: 2, readout: rate, vote_group: 10}\n")
    assert load_config(recipe, ["method.readout=membrane"]).method.options.vote_group == 1
    assert capsys.readouterr().err.startswith(f"deepspike: note: method.vote_group=10 from {recipe} has no effect with "
                                              "method.readout=membrane: it takes effect only when method.readout=rate")
    with pytest.raises(UnusedOptionError, match=r"^method\.vote_group > 1 needs method\.readout: rate"):
        load_config(recipe, ["method.readout=membrane", "method.vote_group=10"])


def test_a_recipes_nesterov_an_override_of_no_momentum_makes_unused_is_reset(tmp_path, capsys):
    """``optim: {name: sgd, momentum: 0.9, nesterov: true}`` with ``optim.momentum=0`` stopped the loading ('bad value
    True for optim.nesterov: expected false with optim.momentum=0'), the recipe's nesterov never set by the user."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("optim: {name: sgd, momentum: 0.9, nesterov: true}\n")
    assert load_config(recipe, ["optim.momentum=0"]).optim.nesterov is False
    assert capsys.readouterr().err.startswith(f"deepspike: note: optim.nesterov=True from {recipe} has no effect with "
                                              "optim.momentum=0: it takes effect only when optim.momentum is above 0")
    with pytest.raises(UnusedOptionError, match=r"^bad value True for optim\.nesterov: expected false with optim\."
                                                r"momentum=0 \(Nesterov momentum needs a momentum > 0\)$"):
        load_config(recipe, ["optim.momentum=0", "optim.nesterov=true"])


def test_the_note_of_a_reset_names_the_override_that_made_the_value_unused(tmp_path, capsys):
    """The note named the overrides of the reset value's section, or when there were none every override: the demo
    with ``method.name=wta_stdp train.epochs=1`` said 'optim.lr=0.003 ... has no effect with method.name=wta_stdp,
    train.epochs=1', and ``method.timesteps=2 train.temporal_grad=sltt`` blamed ``method.timesteps=2`` for the
    recipe's ``method.detach_reset`` that ``sltt`` makes unused. It names the override that does so alone."""
    load_config(DEMO, ["method.name=wta_stdp", "train.epochs=1", "train.progress=false"])
    notes = [line for line in capsys.readouterr().err.splitlines() if "has no effect" in line]
    assert [line.split(": it takes")[0] for line in notes] == [
        f"deepspike: note: optim.lr=0.003 from {DEMO} has no effect with method.name=wta_stdp",
        f"deepspike: note: schedule.name='cosine' from {DEMO} has no effect with method.name=wta_stdp"]
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: {name: stbp, timesteps: 4, detach_reset: true}\ntrain: {temporal_grad: bptt}\n")
    assert load_config(recipe, ["method.timesteps=2", "train.temporal_grad=sltt"]).method.options.detach_reset is False
    assert capsys.readouterr().err.startswith(f"deepspike: note: method.detach_reset=True from {recipe} has no effect "
                                              "with train.temporal_grad=sltt: it takes effect only when")


def test_the_note_of_a_value_two_overrides_make_unused_together_names_its_sections_overrides(tmp_path, capsys):
    """``schedule.name=multistep`` alone is refused (no milestones) and ``schedule.milestones=[3]`` alone leaves the
    recipe's step schedule: only together do they make its ``step_size`` unused; the note names both, not the rest."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("schedule: {name: step, step_size: 5}\n")
    config = load_config(recipe, ["train.epochs=2", "schedule.name=multistep", "schedule.milestones=[3]"])
    assert (config.schedule.step_size, config.schedule.milestones) == (30, [3])
    assert capsys.readouterr().err.splitlines() == [
        f"deepspike: note: schedule.step_size=5 from {recipe} has no effect with schedule.name=multistep, "
        "schedule.milestones=[3]: it takes effect only when schedule.name=step; using the default 30"]
