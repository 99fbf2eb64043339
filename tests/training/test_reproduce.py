"""``deepspike reproduce``: a recipe's expected figure is met (exit 0), missed (exit 1) or absent (exit 2)."""

import json

import pytest

from deepspike.cli import main
from deepspike.training import reproduce as reproduce_module
from deepspike.training.distributed import DistContext

RECIPE = """
method: {name: ann}
model: {name: mlp, args: {hidden: [16]}}
data: {name: digits}
optim: {lr: 0.01}
train: {epochs: 2, progress: false}
expected: {test_accuracy: EXPECTED, tolerance: 0.02, measured_by: "tests/training/test_reproduce.py"}
"""


def test_reproduce_compares_with_the_recorded_figure(tmp_path, capsys):
    from deepspike.api import train

    reference = train(None, tmp_path / "reference", ["method.name=ann", "model.name=mlp", "model.args.hidden=[16]",
                                                      "data.name=digits", "optim.lr=0.01", "train.epochs=2",
                                                      "train.progress=false"])["test_accuracy"]
    for name, expected, status in (("met", reference + 0.01, 0), ("missed", reference - 0.1, 1)):
        recipe = tmp_path / f"{name}.yaml"
        recipe.write_text(RECIPE.replace("EXPECTED", str(expected)))
        assert main(["reproduce", str(recipe), "--out", str(tmp_path / name)]) == status
        report = json.loads((tmp_path / name / "reproduce.json").read_text())
        assert report["measured_test_accuracy"] == reference  # same recipe, same seed, same machine
        assert report["reproduced"] is (status == 0)
        assert report["difference_pp"] == round(100 * (reference - expected), 4)
        capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "met"), "--resume", "train.epochs=3"]) == 0
    assert not (tmp_path / "met" / "reproduce.json").exists()  # it measured 2 epochs: gone once the run trains on
    plain = tmp_path / "plain.yaml"
    plain.write_text(RECIPE.replace("expected: {test_accuracy: EXPECTED,", "expected: {"))
    assert main(["reproduce", str(plain), "--out", str(tmp_path / "plain")]) == 2
    assert "records no expected.test_accuracy" in capsys.readouterr().err
    assert not (tmp_path / "plain").exists()  # refused before anything trained


def test_the_figure_cannot_be_moved_and_a_changed_recipe_is_no_reproduction(tmp_path, capsys):
    """A sweep made a 21.8% run 'reproduce' an 88.8% figure with expected.tolerance=1.0 (exit 0)."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.replace("EXPECTED", "0.9"))
    assert main(["reproduce", str(recipe), "expected.tolerance=1.0", "--out", str(tmp_path / "moved")]) == 2
    err = capsys.readouterr().err
    assert "expected.* cannot be overridden" in err and err.count("\n") == 1 and not (tmp_path / "moved").exists()
    loose = RECIPE.replace("EXPECTED", "0.5").replace("tolerance: 0.02", "tolerance: 1.0")  # any accuracy is in
    recipe.write_text(loose)
    assert main(["reproduce", str(recipe), "train.epochs=1", "train.progress=false", "--out",
                 str(tmp_path / "short")]) == 1
    report = json.loads((tmp_path / "short" / "reproduce.json").read_text())
    assert report["overrides"] == ["train.epochs=1", "train.progress=false"] and report["as_recorded"] is False
    assert report["reproduced"] is False
    recipe.write_text(loose.replace("tolerance: 1.0", "tolerance: 0.9"))  # the bar edited between two calls
    assert main(["reproduce", str(recipe), "train.epochs=1", "train.progress=false", "--out",
                 str(tmp_path / "short"), "--resume"]) == 2
    assert "expected section differs from the one" in capsys.readouterr().err


@pytest.mark.parametrize("rank", [0, 1])
def test_only_rank_0_writes_and_prints_the_report(tmp_path, capsys, monkeypatch, rank):
    """Under torchrun every rank ran reproduce to its end: each wrote RUN/reproduce.json (on a node of its own, into
    a run folder it made there) and printed the report, where only rank 0 writes a run's files."""

    class RankTrainer:  # the Trainer of one rank of two, its training done
        def __init__(self, config, out, resume=False):
            self.dist = DistContext(rank, 2)

        def fit(self):
            return {"test_accuracy": 0.5}

    monkeypatch.setattr(reproduce_module, "Trainer", RankTrainer)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.replace("EXPECTED", "0.5"))
    assert main(["reproduce", str(recipe), "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    if rank == 0:
        assert json.loads(printed)["reproduced"] is True
        assert json.loads((tmp_path / "run" / "reproduce.json").read_text())["measured_test_accuracy"] == 0.5
    else:
        assert printed == "" and not (tmp_path / "run").exists()
