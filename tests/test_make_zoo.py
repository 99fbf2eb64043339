"""``benchmarks/make_zoo.py``: an entry is put in place only when complete; an existing one is replaced only on
request and survives a replacement that fails."""

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from deepspike.config import load_config
from deepspike.training import pretrained
from deepspike.training.trainer import Trainer
from tiny_run import TINY

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import make_zoo  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("zoo") / "run"
    Trainer(load_config(None, [*TINY, "train.epochs=1", "train.max_steps_per_epoch=2"]), run).fit()
    return run


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """An empty zoo in ``tmp_path/package/zoo_models`` and a packaged sample of 20 digits (8x8, 0..255)."""
    folder = tmp_path / "package" / "zoo_models"
    folder.mkdir(parents=True)
    for module in (make_zoo, pretrained):
        monkeypatch.setattr(module, "ZOO_DIR", folder)
    digits = load_digits()
    sample = tmp_path / "sample.npz"
    np.savez(sample, images=(digits.images[:20] * 16).astype(np.uint8), labels=digits.target[:20])
    monkeypatch.setattr(make_zoo, "SAMPLE", sample)
    return folder


def _make(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["make_zoo.py", *map(str, args)])
    make_zoo.main()


def _files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_an_entry_is_made_and_replaced_only_on_request(tiny_run, zoo, monkeypatch, capsys):
    _make(monkeypatch, tiny_run, "tiny", "--made-from", "a test")
    entry = zoo / "tiny"
    assert pretrained.zoo_card("tiny")["sample_accuracy"] is not None
    before = _files(entry)
    with pytest.raises(SystemExit) as exit_:
        _make(monkeypatch, tiny_run, "tiny", "--made-from", "again")
    assert exit_.value.code == 2 and "pass --replace" in capsys.readouterr().err
    assert _files(entry) == before
    _make(monkeypatch, tiny_run, "tiny", "--made-from", "again", "--replace")
    assert pretrained.zoo_card("tiny")["made_from"] == "again"
    assert sorted(p.name for p in zoo.parent.iterdir()) == ["zoo_models"]  # no staging or old copy left


@pytest.mark.parametrize("failure", ["weights", "sample"])
def test_a_replacement_that_fails_leaves_the_entry_as_it_was(tiny_run, zoo, monkeypatch, failure):
    """Weights over the limit used to delete the whole existing entry (``shutil.rmtree``) after writing over its
    weights; a failure after that left new weights beside the old card."""
    _make(monkeypatch, tiny_run, "tiny", "--made-from", "a test")
    before = _files(zoo / "tiny")
    if failure == "weights":
        monkeypatch.setattr(make_zoo, "MAX_WEIGHTS_BYTES", 10)
    else:
        monkeypatch.setattr(make_zoo, "SAMPLE", zoo / "missing.npz")
    with pytest.raises((SystemExit, FileNotFoundError)):
        _make(monkeypatch, tiny_run, "tiny", "--made-from", "again", "--replace")
    assert _files(zoo / "tiny") == before
    assert sorted(p.name for p in zoo.parent.iterdir()) == ["zoo_models"]


def test_a_name_that_is_no_folder_name_is_refused(tiny_run, zoo, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        _make(monkeypatch, tiny_run, "../escape", "--made-from", "a test")
    assert exit_.value.code == 2 and "NAME must be a Python identifier" in capsys.readouterr().err
    assert not any(zoo.iterdir())
