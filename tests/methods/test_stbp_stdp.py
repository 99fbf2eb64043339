"""``method.stdp_layers`` through the trainer: STDP layers learn by the rule only, the run resumes exactly, and the
recipe keys and the training modes STDP cannot follow are refused in one line."""

import pytest
import torch

from deepspike.analysis.qat import quantization_aware_retrain
from deepspike.analysis.quantize import quantize_weight
from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.methods.create import create_model
from deepspike.training.runs import load_checkpoint
from deepspike.training.temporal_grad import prepare_temporal_grad
from deepspike.training.trainer import Trainer
from tiny_run import TINY, full_and_resumed_weights

STDP = [*TINY, "method.stdp_layers=[0]", "method.stdp_rate_plus=0.001", "method.stdp_rate_minus=0.001",
        "model.args.dropout=0.0"]


def test_a_run_moves_the_stdp_layer_by_the_rule_alone(tmp_path):
    """With rates 0 the STDP layer ends as it started whatever the gradient layers do (two learning rates); with
    rates > 0 the rule moves it, inside the bounds."""
    runs = {"frozen": [*STDP, "method.stdp_rate_plus=0", "method.stdp_rate_minus=0"],
            "frozen_fast": [*STDP, "method.stdp_rate_plus=0", "method.stdp_rate_minus=0", "optim.lr=0.05"],
            "stdp": STDP}
    weights = {}
    for name, overrides in runs.items():
        Trainer(load_config(None, overrides), tmp_path / name).fit()
        weights[name] = load_checkpoint(tmp_path / name / "checkpoint.pt")["model"]
    assert torch.equal(weights["frozen"]["body.1.module.weight"], weights["frozen_fast"]["body.1.module.weight"])
    assert not torch.equal(weights["frozen"]["body.3.module.weight"], weights["frozen_fast"]["body.3.module.weight"])
    assert not torch.equal(weights["frozen"]["body.1.module.weight"], weights["stdp"]["body.1.module.weight"])


def test_resume_is_exact(tmp_path):
    full, cut = full_and_resumed_weights(load_config(None, STDP), tmp_path)
    for key, value in full.items():
        assert torch.equal(cut[key], value), key


@pytest.mark.parametrize("override, message", [
    ("method.stdp_bounds=clip", "method.stdp_bounds"),
    ("method.stdp_decay_pre=1.5", "method.stdp_decay_pre"),
    ("method.stdp_w_max=-2", "method.stdp_w_min/stdp_w_max"),
    ("method.stdp_layers=3", "method.stdp_layers"),
    ("method.stdp_epochs=0", "method.stdp_epochs"),
])
def test_bad_recipe_values_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_config(None, [*STDP, override])
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("mode", ["checkpoint", "sltt", "ottt"])
def test_time_in_pieces_is_refused(mode):
    net = create_model("mlp", method="stbp", timesteps=3, model_args={"hidden": [24]}, stdp_layers=[0])
    with pytest.raises(ConfigError, match=f"temporal_grad={mode} runs time in pieces, but STDP"):
        prepare_temporal_grad(net, mode, None, "stbp")


def test_stdp_epochs_stop_the_rule_after_them_and_resume_does_the_same(tmp_path):
    """``stdp_epochs=1`` of 2: the STDP layer ends as epoch 1 left it while the classifier goes on learning; a run
    cut after epoch 1 and resumed ends the same."""
    def weights_per_epoch(overrides, folder):
        kept = {}

        def after_epoch(trainer, record):
            kept[record["epoch"]] = {k: v.clone() for k, v in trainer.parts.model.state_dict().items()}

        Trainer(load_config(None, overrides), folder, callbacks=(after_epoch,)).fit()
        return kept

    kept = weights_per_epoch([*STDP, "method.stdp_epochs=1"], tmp_path / "run")
    assert torch.equal(kept[1]["body.1.module.weight"], kept[2]["body.1.module.weight"])
    assert not torch.equal(kept[1]["body.3.module.weight"], kept[2]["body.3.module.weight"])
    every = weights_per_epoch(STDP, tmp_path / "every")
    assert not torch.equal(every[1]["body.1.module.weight"], every[2]["body.1.module.weight"])  # no limit: it moves
    config = load_config(None, [*STDP, "method.stdp_epochs=1"])
    full, cut = full_and_resumed_weights(config, tmp_path / "resumed")
    for key, value in full.items():
        assert torch.equal(cut[key], value), key


def test_a_learner_out_of_its_epochs_records_nothing():
    net = create_model("mlp", method="stbp", timesteps=3, model_args={"hidden": [24]}, stdp_layers=[0], stdp_epochs=2)
    net.train()
    net.stdp.begin_epoch(2, 5)
    net(torch.rand(4, 1, 28, 28))
    assert net.stdp._sums == [None] and not net.body[2]._forward_hooks
    net.stdp.begin_epoch(1, 5)
    net(torch.rand(4, 1, 28, 28))
    assert net.stdp._sums[0] is not None


def test_quantization_aware_retraining_keeps_the_stdp_layer(tmp_path):
    """QAT retrains by the loss alone: the STDP layer of the stage is the run's, quantized (a large rate would have
    moved it far)."""
    Trainer(load_config(None, [*STDP, "method.stdp_rate_plus=0.5", "train.epochs=1"]), tmp_path / "run").fit()
    quantization_aware_retrain(tmp_path / "run", tmp_path / "qat", stages=(8,), epochs=1)
    run = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["model"]
    stage = load_checkpoint(tmp_path / "qat" / "bits8" / "checkpoint.pt")["model"]
    assert torch.equal(stage["body.1.module.weight"], quantize_weight(run["body.1.module.weight"], 8))
    assert not torch.equal(stage["body.3.module.weight"], quantize_weight(run["body.3.module.weight"], 8))
