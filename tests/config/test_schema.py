"""``config.schema.check_settings_used``: keys of optim, schedule and train that a run would ignore are refused for a
new run; their defaults spelt out, and the same keys with their choice on, pass."""

import dataclasses
import re
from pathlib import Path

import pytest

from deepspike.config import load_config
from deepspike.config.schema import OptimConfig, ScheduleConfig, TrainConfig, check_settings_used
from deepspike.core.errors import ConfigError


@pytest.mark.parametrize("overrides, key, needs", [
    (["optim.momentum=0.5"], "optim.momentum=0.5", "optim.name=sgd"),  # adam, the default, has no momentum
    (["optim.name=adamw", "optim.nesterov=true"], "optim.nesterov=True", "optim.name=sgd"),
    (["optim.name=sgd", "optim.betas=[0.8, 0.9]"], "optim.betas=[0.8, 0.9]", "optim.name=adam or adamw"),
    (["schedule.name=cosine", "schedule.step_size=5"], "schedule.step_size=5", "schedule.name=step"),
    (["schedule.gamma=0.5"], "schedule.gamma=0.5", "schedule.name=step or multistep"),  # none, the default
    (["schedule.name=step", "schedule.milestones=[3]"], "schedule.milestones=[3]", "schedule.name=multistep"),
    (["schedule.name=step", "schedule.min_factor=0.1"], "schedule.min_factor=0.1", "schedule.name=cosine or linear"),
    (["train.distill_weight=0.7"], "train.distill_weight=0.7", "train.distill_from names a teacher run"),
    (["train.distill_temperature=2"], "train.distill_temperature=2.0", "train.distill_from names a teacher run"),
])
def test_a_key_of_a_choice_that_is_off_is_refused_in_one_line(overrides, key, needs):
    """Before, each was accepted and ignored: make_optimizer hands momentum/nesterov to SGD only and betas to Adam(W)
    only; schedule_factor reads step_size under step, gamma under step/multistep, milestones under multistep,
    min_factor under cosine/linear; the distillation's weight and temperature only with a teacher."""
    config = load_config(None, overrides)  # loading (a saved run, too) accepts it
    name = key.partition("=")[0]
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)} has no effect unless {needs}: set that, or leave {name} "
                                          "at its default "):
        check_settings_used(config)


@pytest.mark.parametrize("overrides", [
    ["optim.name=sgd", "optim.momentum=0.5", "optim.nesterov=true"],
    ["optim.name=adamw", "optim.betas=[0.8, 0.9]"],
    ["schedule.name=step", "schedule.step_size=5", "schedule.gamma=0.5"],
    ["schedule.name=multistep", "schedule.milestones=[3]", "schedule.gamma=0.5"],
    ["schedule.name=linear", "schedule.min_factor=0.1", "schedule.warmup_epochs=1"],
    ["schedule.warmup_epochs=1"],  # warmup works under every schedule, none included
    ["train.distill_from=runs/teacher", "train.distill_weight=0.7", "train.distill_temperature=2"],
])
def test_the_same_keys_with_their_choice_on_pass(overrides):
    check_settings_used(load_config(None, overrides))


def test_a_log_sink_named_twice_is_refused_in_one_line():
    """Before: train.log=[csv, csv] trained as [csv] (MetricSinks asks whether csv is named) without a word."""
    config = load_config(None, ["train.log=[csv, tensorboard, csv]"])  # loading (a saved run, too) accepts it
    with pytest.raises(ConfigError, match=r"^train.log=\['csv', 'tensorboard', 'csv'\] names csv twice: name each "
                                          r"sink once \(valid: csv, tensorboard\)$"):
        check_settings_used(config)
    check_settings_used(load_config(None, ["train.log=[tensorboard, csv]"]))


def test_a_multistep_schedule_without_milestones_is_refused_in_one_line():
    """Before: schedule.name=multistep with the default milestones [] trained at a constant rate (gamma ** 0) without a
    word, gamma=0.1 included."""
    config = load_config(None, ["schedule.name=multistep", "schedule.gamma=0.1"])  # loading accepts it
    with pytest.raises(ConfigError, match=r"^schedule.name=multistep with no schedule.milestones never changes the "
                                          r"learning rate: list the epochs"):
        check_settings_used(config)


def test_every_default_spelt_out_passes():
    spelt = [f"{section}.{f.name}={_yaml(f)}" for section, schema in (("optim", OptimConfig), ("schedule",
             ScheduleConfig), ("train", TrainConfig)) for f in dataclasses.fields(schema)]
    check_settings_used(load_config(None, spelt))


def _yaml(field: dataclasses.Field) -> str:
    value = field.default_factory() if field.default is dataclasses.MISSING else field.default
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("override, key, default", [
    ("optim.lr=0.005", "optim.lr=0.005", "0.001"),
    ("optim.name=sgd", "optim.name='sgd'", "'adam'"),
    ("schedule.name=cosine", "schedule.name='cosine'", "'none'"),
    ("schedule.warmup_epochs=1", "schedule.warmup_epochs=1.0", "0.0"),
])
def test_optim_and_schedule_under_a_method_without_gradients_are_refused_in_one_line(override, key, default):
    """Before: wta_stdp (``learns_locally``: no optimizer step, an idle optimizer over no parameters) trained the same
    with any optim.* or schedule.* setting, without a word; its defaults spelt out (a saved run's config.yaml) pass."""
    config = load_config(None, ["method.name=wta_stdp", "model.name=diehl_cook", override])  # loading accepts it
    name = key.partition("=")[0]
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)} has no effect unless the method learns by gradients "
                                          rf"\(method wta_stdp has no optimizer or schedule\): set that, or leave "
                                          rf"{re.escape(name)} at its default {re.escape(default)}$"):
        check_settings_used(config)
    spelt = [f"{section}.{f.name}={_yaml(f)}" for section, schema in (("optim", OptimConfig), ("schedule",
             ScheduleConfig)) for f in dataclasses.fields(schema)]
    check_settings_used(load_config(None, ["method.name=wta_stdp", "model.name=diehl_cook", *spelt]))
    check_settings_used(load_config(None, ["model.name=mlp", override]))  # a method with an optimizer reads it


def test_detach_reset_under_an_online_temporal_grad_is_refused_for_a_new_run():
    """Before, ``method.detach_reset=true`` with sltt / ottt / eprop was taken and ignored: the reset acts on the
    membrane those modes carry detached, so the gradients were bit-equal with and without it
    (``tests/training/test_temporal_grad.py::test_detach_reset_changes_no_online_gradient``). Now a new run refuses it;
    the recipe value an override makes unused (the Spikformer recipe's ``detach_reset: true`` with ottt) is reset."""
    for mode in ("sltt", "ottt", "eprop"):
        config = load_config(None, ["method.name=stbp", "method.detach_reset=true", f"train.temporal_grad={mode}"])
        with pytest.raises(ConfigError, match=r"^method.detach_reset=True has no effect unless train.temporal_grad is "
                                              r"bptt or checkpoint \(sltt, ottt and eprop carry the membrane detached"):
            check_settings_used(config)
    for mode in ("bptt", "checkpoint"):
        check_settings_used(load_config(None, ["method.name=stbp", "method.detach_reset=true",
                                               f"train.temporal_grad={mode}"]))
    check_settings_used(load_config(None, ["method.name=stbp", "method.detach_reset=false",
                                           "train.temporal_grad=ottt"]))
    spikformer = Path(__file__).resolve().parents[2] / "configs" / "stbp_fmnist_spikformer.yaml"
    recipe = load_config(spikformer, ["train.temporal_grad=ottt"])
    assert recipe.method.options.detach_reset is False
