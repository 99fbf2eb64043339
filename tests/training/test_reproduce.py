"""``deepspike reproduce``: a recipe's expected figure is met (exit 0), missed (exit 1) or absent (exit 2)."""

import json

from deepspike.cli import main

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
