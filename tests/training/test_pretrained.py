"""The shipped pretrained models: each loads without data, is at most ``MAX_WEIGHTS_BYTES``, and scores exactly its
card's accuracy on the packaged sample of 200 Fashion-MNIST test images; ``deepspike zoo`` lists them."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import deepspike as ds
from deepspike.cli import main
from deepspike.core.errors import ConfigError
from deepspike.training.pretrained import MAX_WEIGHTS_BYTES, WEIGHTS_NAME, ZOO_DIR, accuracy_on, zoo_names

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "fashion_mnist_test_first200.npz"
NAMES = zoo_names()


def test_every_method_has_a_pretrained_model():
    methods = {ds.zoo_card(name)["method"] for name in NAMES}
    assert methods == {row["name"] for row in ds.method_table()}


@pytest.mark.parametrize("name", NAMES)
def test_pretrained_model_scores_its_card_on_the_sample(name):
    card = ds.zoo_card(name)
    assert (ZOO_DIR / name / WEIGHTS_NAME).stat().st_size <= MAX_WEIGHTS_BYTES
    sample = np.load(SAMPLE, allow_pickle=False)
    images = torch.tensor(sample["images"], dtype=torch.float32).unsqueeze(1) / 255.0
    labels = torch.tensor(sample["labels"], dtype=torch.long)
    assert accuracy_on(name, images, labels) == card["sample_accuracy"]
    assert abs(card["sample_accuracy"] - card["test_accuracy"]) < 0.06  # 200 images: the same ballpark
    model = ds.pretrained(name)
    assert not model.training


def test_zoo_command_lists_every_entry(capsys):
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    for name in NAMES:
        assert name in out
    with pytest.raises(ConfigError, match="no pretrained model"):
        ds.pretrained("no_such_model")


@pytest.mark.parametrize("tolerance", [-1.0, math.nan, math.inf, 2.0, True, False, "0.1"])
def test_check_pretrained_refuses_a_meaningless_tolerance(tolerance):
    """Checked before any data is read: -1 or NaN reported a mismatch of equal accuracies, inf matched anything."""
    with pytest.raises(ConfigError, match="tolerance must be a fraction in"):
        ds.check_pretrained(NAMES[0], tolerance=tolerance)
