"""Method wta_stdp (Diehl & Cook 2015): options, the architecture it reads, the vote error, and whole runs."""

import json

import pytest
import torch

import deepspike as ds
from deepspike.config.load import load_config
from deepspike.core.errors import ConfigError
from deepspike.methods import wta_stdp as wta_method
from deepspike.methods.registry import get_method, method_from_options, method_options
from deepspike.methods.wta_stdp import WtaStdpOptions, population_sizes, wta_constants
from deepspike.models.registry import create_architecture
from deepspike.training.evaluate import evaluate
from deepspike.training.trainer import Trainer
from deepspike.training.training_setup import check_local_learning
from tiny_run import full_and_resumed_weights
from wta_run import SMALL, trained_wta_run


def test_the_defaults_are_diehl_and_cooks():
    c = wta_constants(WtaStdpOptions())
    assert (c.dt, c.exc_tau, c.exc_thresh, c.theta_offset, c.w_ei, c.w_ie) == (0.5, 100.0, -52.0, 20.0, 10.4, 17.0)
    assert (c.exc_refractory_steps, c.inh_refractory_steps) == (10.0, 4.0)  # 5 ms and 2 ms at 0.5 ms steps
    assert (c.nu_pre, c.nu_post, c.tau_post2, c.tau_theta) == (1e-4, 1e-2, 40.0, 1e7)


@pytest.mark.parametrize("values, key", [({"dt": 0.3}, "present_ms"), ({"exc_tau": -1.0}, "exc_tau"),
                                         ({"nu_post": float("nan")}, "nu_post"), ({"max_presentations": 0},
                                                                                 "max_presentations"),
                                         ({"label_window": 0}, "label_window"), ({"weight_sum": 0.0}, "weight_sum"),
                                         ({"exc_refractory": 5.2}, "exc_refractory"), ({"dt": 20.0}, "dt"),
                                         ({"present_ms": 1e9}, "present_ms"),
                                         ({"tau_ge": 0.4}, "at most tau_ge"), ({"delay_max": 0.7}, "delay_max"),
                                         ({"delay_max": 200.0}, "delay_max")])
def test_options_that_make_no_network_are_one_line_errors(values, key):
    with pytest.raises(ConfigError, match=key):
        method_options("wta_stdp", values)


@pytest.mark.parametrize("model, args", [("scnn_digits", {}), ("mlp", {"hidden": [20, 20]})])
def test_only_one_excitatory_layer_and_the_vote_are_accepted(model, args):
    arch = create_architecture(model, 10, (1, 8, 8), **args)
    with pytest.raises(ConfigError, match="needs the model Flatten, Linear"):
        population_sizes(arch)


def test_an_mlp_with_one_hidden_size_is_the_same_network():
    assert population_sizes(create_architecture("mlp", 10, (1, 8, 8), hidden=[30])) == (64, 30, 10)
    net = method_from_options("wta_stdp", method_options("wta_stdp", {})).build(
        create_architecture("diehl_cook", 10, (1, 28, 28), neurons=50))
    assert net.presentation.weight_sum == pytest.approx(78.0) and net.presentation.steps == 700


@pytest.mark.parametrize("values", [{"w_max": 0.05}, {"weight_sum": 64.5}, {"weight_sum": 1e308}])
def test_a_column_sum_the_inputs_cannot_reach_under_w_max_is_refused(values, tmp_path):
    """64 inputs of at most w_max each sum to at most 64 w_max (the default sum: 78 / 784 x 64 = 6.37): w_max 0.05
    trained silently with weights up to 0.226 and the columns never at their sum (test accuracy 0.17 against 0.61)."""
    arch = create_architecture("diehl_cook", 10, (1, 8, 8), neurons=5)
    with pytest.raises(ConfigError, match="method.weight_sum: the 64 input weights of a neuron cannot sum to"):
        method_from_options("wta_stdp", method_options("wta_stdp", values)).build(arch)
    overrides = [f"method.{key}={value}" for key, value in values.items()]
    with pytest.raises(ConfigError, match="lower weight_sum or raise w_max"):
        Trainer(load_config(None, [*SMALL, *overrides]), tmp_path / "run").fit()
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    edge = {"weight_sum": 64.0} if "weight_sum" in values else {"w_max": 78 / 784 + 1e-12}  # just inside
    assert method_from_options("wta_stdp", method_options("wta_stdp", edge)).build(arch).presentation.weight_sum > 6


def test_the_vote_error_by_hand():
    method = method_from_options("wta_stdp", method_options("wta_stdp", {}))
    scores = torch.tensor([[3.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    loss = method.loss(scores, torch.tensor([0, 1, 1]))
    assert float(loss) == pytest.approx(((1 - 0.75) + 1.0 + 0.5) / 3)


def test_a_sample_no_labelled_neuron_answers_has_no_decision():
    """All-zero scores were argmax'd to class 0: such samples of class 0 counted as right while the vote error called
    them wholly wrong (a run cut before any block was labelled: train_loss 1.0, train_acc 0.09)."""
    method = method_from_options("wta_stdp", method_options("wta_stdp", {}))
    scores = torch.tensor([[0.0, 0.0, 0.0], [0.0, 2.0, 2.0], [1.0, 0.0, 3.0]])
    assert method.predict(scores).tolist() == [-1, 1, 2]  # ties: the lower class
    net = method.build(create_architecture("diehl_cook", 3, (1, 2, 2), neurons=4))  # no neuron labelled yet
    x, y = torch.rand(6, 1, 2, 2), torch.zeros(6, dtype=torch.long)
    assert evaluate(net, method, [(x, y)])["accuracy"] == 0.0  # was 1.0: every sample "predicted" class 0


def test_a_run_learns_digits_without_gradients(tmp_path):
    trained_wta_run(tmp_path / "run", "train.epochs=1")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.4  # chance: 0.1 (these fast settings, not the paper's, suit one epoch)
    assert summary["trainable_parameters"] == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1] and all("lr" not in r for r in records)
    evaluated = ds.evaluate(tmp_path / "run")
    assert evaluated["test_accuracy"] == summary["test_accuracy"]  # scoring is seeded: the same draws


def test_a_resumed_run_ends_where_the_uncut_one_does(tmp_path):
    """Three batches an epoch (learning, the labelling pass and the blocks' state all cross the cut)."""
    full, cut = full_and_resumed_weights(load_config(None, [*SMALL, "train.max_steps_per_epoch=3",
                                                            "method.label_window=250"]), tmp_path)
    assert full.keys() == cut.keys() and all(torch.equal(full[k], cut[k]) for k in full)


@pytest.mark.parametrize("override, words", [("train.ema_decay=0.9", "weight average"),
                                             ("train.compile=true", "not compiled"),
                                             ("train.temporal_grad=sltt", "takes no gradient"),
                                             ("train.grad_clip=1.0", r"has no gradient to clip \(train.grad_clip "
                                                                     r"must be null\)"),  # before: ignored
                                             ("train.precision=bf16", "runs no autocast"),
                                             ("train.distill_from=teacher", "no loss a teacher could blend into")])
def test_settings_it_cannot_honour_are_refused_before_training(tmp_path, override, words):
    with pytest.raises(ConfigError, match=words):
        Trainer(load_config(None, [*SMALL, override]), tmp_path / "run").fit()
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_several_processes_are_refused():
    with pytest.raises(ConfigError, match="runs in one process \\(torchrun started 2\\)"):
        check_local_learning(load_config(None, SMALL), world_size=2)
    check_local_learning(load_config(None, SMALL), world_size=1)


def test_without_numba_it_is_refused_not_run_for_days(monkeypatch):
    monkeypatch.setattr(wta_method, "HAVE_NUMBA", False)
    with pytest.raises(ConfigError, match="deepspike\\[fast\\]"):
        get_method("wta_stdp").build(create_architecture("diehl_cook", 10, (1, 8, 8), neurons=5))


def test_the_net_stays_on_the_cpu_and_answers_on_the_input_device():
    net = get_method("wta_stdp", {"present_ms": 20.0}).build(create_architecture("diehl_cook", 10, (1, 8, 8),
                                                                                 neurons=5))
    assert net.to(torch.float16).to("meta") is net and net.weight.device.type == "cpu"
    assert net.weight.dtype == torch.float64
    assert net(torch.rand(3, 1, 8, 8)).shape == (3, 10)


@pytest.mark.parametrize("values, refused, needs", [
    ({"min_spikes": 0, "rate_step": 10.0}, "rate_step=10.0", "method.min_spikes is above 0"),
    ({"min_spikes": 0, "max_presentations": 3}, "max_presentations=3", "method.min_spikes is above 0"),
    ({"max_presentations": 1, "rate_step": 10.0}, "rate_step=10.0", "method.max_presentations is above 1"),
    ({"max_presentations": 1, "min_spikes": 2}, "min_spikes=2", "method.max_presentations is above 1"),
])
def test_repeat_options_where_no_sample_is_shown_twice_are_refused_for_a_new_run(values, refused, needs):
    """Before: with min_spikes 0 (every response has >= 0 spikes) or max_presentations 1 the show loop of
    ``CompetitiveStdpLayer`` ends after the first show, so the other repeat options were ignored without a word."""
    arch = create_architecture("diehl_cook", 10, (1, 8, 8), neurons=4)
    method = get_method("wta_stdp", values)
    with pytest.raises(ConfigError, match=rf"^method.{refused} has no effect unless {needs}: set that, or leave "):
        method.check_new_run(arch)
    for fine in ({"min_spikes": 0}, {"max_presentations": 1}, {"min_spikes": 2, "max_presentations": 3,
                                                               "rate_step": 10.0}):
        get_method("wta_stdp", fine).check_new_run(arch)
