"""docs/architecture.md's extension example runs as written: the model it registers builds and trains."""

import re
from pathlib import Path

import torch
import yaml

from deepspike.models import registry

ROOT = Path(__file__).resolve().parents[1]


def test_the_model_registered_in_the_example_builds_and_trains(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "architecture.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert '"runs/tiny"' in example
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))  # the registration ends with this test
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(compile(example.replace('"runs/tiny"', repr(str(tmp_path / "tiny"))), "architecture.md", "exec"), scope)
    assert scope["snn"](torch.rand(3, 1, 8, 8)).shape == (3, 10)
    config = yaml.safe_load((tmp_path / "tiny" / "config.yaml").read_text())
    assert config["model"]["name"] == "tiny_digits_net" and config["model"]["args"] == {"hidden": 16}
    assert scope["summary"]["model"] == "tiny_digits_net" and 0.0 <= scope["summary"]["test_accuracy"] <= 1.0
