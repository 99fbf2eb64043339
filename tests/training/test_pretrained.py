"""The shipped pretrained models: each loads without data, is at most ``MAX_WEIGHTS_BYTES``, and scores exactly its
card's accuracy on the packaged sample of 200 Fashion-MNIST test images; ``deepspike zoo`` lists them."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import deepspike as ds
from deepspike.cli import main
from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.training import pretrained
from deepspike.training.checkpoint_format import read_checkpoint_file
from deepspike.training.pretrained import MAX_WEIGHTS_BYTES, WEIGHTS_NAME, ZOO_DIR, accuracy_on, preprocess, zoo_names
from deepspike.training.runs import save_checkpoint

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


@pytest.mark.parametrize("batch", [0, -1, 2.5, True, "8"])
def test_accuracy_on_refuses_a_batch_that_is_no_whole_number_from_1(batch):
    """0 was a ValueError (range() arg 3 must not be zero), -1 gave an accuracy of nan, 2.5 a TypeError, True
    scored one image at a time."""
    images, labels = torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ConfigError, match="^batch must be a whole number >= 1, got "):
        accuracy_on(NAMES[0], images, labels, batch=batch)


@pytest.mark.parametrize("count, labelled, message", [
    (0, 0, r"accuracy_on needs at least one image, got \[0, 1, 28, 28\]$"),
    (4, 2, r"labels must be one per image, \[4\], got \[2\]$"),
    (2, 4, r"labels must be one per image, \[2\], got \[4\]$"),
])
def test_accuracy_on_refuses_no_images_or_labels_not_one_per_image(count, labelled, message):
    """No image gave an accuracy of nan; 4 images with 2 labels a ValueError from the loss."""
    with pytest.raises(ConfigError, match=message):
        accuracy_on(NAMES[0], torch.rand(count, 1, 28, 28), torch.zeros(labelled, dtype=torch.long))


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


def _entry_copy(tmp_path, monkeypatch, name="stbp_fmnist"):
    """A zoo holding a copy of entry ``name`` only, in ``tmp_path``; returns the copy's folder."""
    zoo = tmp_path / "zoo"
    shutil.copytree(ZOO_DIR / name, zoo / name)
    monkeypatch.setattr(pretrained, "ZOO_DIR", zoo)
    return zoo / name


def _edited(card: dict, **changes) -> str:
    return json.dumps({k: v for k, v in {**card, **changes}.items() if v is not DROP})


DROP = object()
CARD = json.loads((ZOO_DIR / "stbp_fmnist" / "card.json").read_text())
NORM = {"range": [0.0, 1.0], "normalize": {"mean": [0.3, 0.3], "std": [0.35, 0.35]}}  # two channels for one
TAMPERED_CARDS = {
    "not JSON": "{not json",
    "a list": "[1, 2]",
    "NaN accuracy": _edited(CARD).replace('"test_accuracy": 0.8881', '"test_accuracy": NaN'),
    "no num_classes": _edited(CARD, num_classes=DROP),
    "num_classes as text": _edited(CARD, num_classes="10"),
    "empty input_shape": _edited(CARD, input_shape=[]),
    "accuracy as text": _edited(CARD, test_accuracy="x"),
    "accuracy above 1": _edited(CARD, test_accuracy=1.5),
    "zero time steps": _edited(CARD, timesteps=0),
    "negative spikes": _edited(CARD, spikes_per_sample=-1),
    "another entry's name": _edited(CARD, name="ttfs_fmnist"),
    "no input": _edited(CARD, input=DROP),
    "normalize of another channel count": _edited(CARD, input=NORM),
    "a negative std": _edited(CARD, input={"range": [0, 1], "normalize": {"mean": [0.3], "std": [-0.1]}}),
}


@pytest.mark.parametrize("text", TAMPERED_CARDS.values(), ids=TAMPERED_CARDS.keys())
def test_a_tampered_card_is_one_line(text, tmp_path, monkeypatch, capsys):
    """A card that is not JSON, not an object, or has a field not of its form was a traceback (JSONDecodeError,
    KeyError, TypeError, a format error in the listing) or listed as it was; now ``deepspike zoo`` and
    ``ds.pretrained`` refuse it in one line (exit 2)."""
    folder = _entry_copy(tmp_path, monkeypatch)
    (folder / "card.json").write_text(text)
    assert main(["zoo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"deepspike: error: zoo card {folder / 'card.json'} ") and err.count("\n") == 1
    with pytest.raises(DataCorruptError, match="zoo card"):
        ds.pretrained("stbp_fmnist")


def test_a_card_of_another_config_or_weights_with_nan_are_refused(tmp_path, monkeypatch):
    """The card's method, model and data set are those of the config.yaml that builds the net (a card saying
    ``ann`` was listed as an ANN while an SNN was loaded); weights holding NaN under a valid checksum loaded and
    scored 10% (training never writes non-finite weights)."""
    folder = _entry_copy(tmp_path, monkeypatch)
    (folder / "card.json").write_text(_edited(CARD, method="ann"))
    with pytest.raises(DataCorruptError, match="gives method 'ann', its config.yaml 'stbp'"):
        ds.pretrained("stbp_fmnist")
    (folder / "card.json").write_text(_edited(CARD))
    weights = read_checkpoint_file(folder / WEIGHTS_NAME)["model"]
    key = next(iter(weights))
    weights[key].view(-1)[0] = math.nan
    save_checkpoint(folder / WEIGHTS_NAME, {"model": weights})  # a checksum of the NaN weights
    with pytest.raises(DataCorruptError, match=f"its {key} holds inf or nan"):
        ds.pretrained("stbp_fmnist")


def test_a_negative_std_is_refused_naming_the_range_a_card_may_hold(tmp_path, monkeypatch, capsys):
    """A std of 0 is a valid card (next test), so the refusal of a negative one says ``std >= 0``; it said ``std > 0``,
    which a card of std 0 would then seem to break."""
    folder = _entry_copy(tmp_path, monkeypatch)
    (folder / "card.json").write_text(TAMPERED_CARDS["a negative std"])
    assert main(["zoo"]) == 2
    assert capsys.readouterr().err.rstrip().endswith("of 1 finite numbers each, std >= 0")


def test_a_card_of_a_channel_constant_in_training_centres_it_as_training_did():
    """std 0 (a channel constant in the training split): ``normalize`` only centres it (scale 1), so a card saying
    so is valid and ``preprocess`` gives what training gave; it was refused as tampered, and divided by 0."""
    card = {"input": {"range": [0, 1], "normalize": {"mean": [0.5, 0.2], "std": [0.0, 0.25]}}}
    images = torch.tensor([[[[0.75]], [[0.7]]]])  # [1, 2, 1, 1]
    assert pretrained._input_fits(card["input"], 2)
    torch.testing.assert_close(preprocess(card, images), torch.tensor([[[[0.25]], [[2.0]]]]))


def test_a_card_that_standardises_input_its_recipe_did_not_is_refused(tmp_path, monkeypatch):
    """The card's ``input.normalize`` says how ``preprocess`` feeds the net; make_zoo writes it only where the recipe's
    ``data.normalize`` was true. A card of stbp_fmnist (trained on raw [0, 1] pixels) claiming a mean and std loaded,
    and ``accuracy_on`` standardised the sample: 0.21 on the 200 images whose card accuracy is 0.915 (the recipe's
    raw input, as ``check_pretrained`` feeds it); the reverse (normalize null for a normalising recipe) also loaded.
    Now both are refused in one line."""
    folder = _entry_copy(tmp_path, monkeypatch)
    (folder / "card.json").write_text(_edited(CARD, input={"range": [0, 1],
                                                         "normalize": {"mean": [0.286], "std": [0.353]}}))
    with pytest.raises(DataCorruptError, match=r"gives input.normalize \{.*data.normalize False; they do not belong"):
        ds.pretrained("stbp_fmnist")
    vgg = json.loads((ZOO_DIR / "stbp_fmnist_vgg_tet_plif" / "card.json").read_text())
    folder = _entry_copy(tmp_path, monkeypatch, "stbp_fmnist_vgg_tet_plif")
    (folder / "card.json").write_text(_edited(vgg, input={"range": [0, 1], "normalize": None}))
    with pytest.raises(DataCorruptError, match="gives input.normalize None, its config.yaml data.normalize True"):
        ds.pretrained("stbp_fmnist_vgg_tet_plif")


@pytest.mark.parametrize(("name", "timesteps"), [("stbp_fmnist", 8), ("stbp_fmnist", None), ("ttfs_fmnist", 4)])
def test_a_card_giving_other_time_steps_than_its_net_runs_is_refused(name, timesteps, tmp_path, monkeypatch):
    """The card's ``timesteps`` (listed by ``deepspike zoo``) are the steps the net runs for at inference: stbp_fmnist
    runs 4, ttfs_fmnist has none. A card saying 8 (or null) for stbp_fmnist, or 4 for the TTFS net, loaded as it was;
    now it is refused in one line."""
    folder = _entry_copy(tmp_path, monkeypatch, name)
    card = json.loads((ZOO_DIR / name / "card.json").read_text())
    (folder / "card.json").write_text(_edited(card, timesteps=timesteps))
    with pytest.raises(DataCorruptError, match=f"gives timesteps {timesteps!r}, the net its config.yaml builds runs "
                                               f"for {card['timesteps']!r}; they do not belong together"):
        ds.pretrained(name)


@pytest.mark.parametrize(("images", "labels", "message"), [
    (torch.rand(10, 28, 28), torch.zeros(10, dtype=torch.long), r"takes images \[N, 1, 28, 28\], got \[10, 28, 28\]"),
    (torch.rand(10, 1, 32, 32), torch.zeros(10, dtype=torch.long), r"got \[10, 1, 32, 32\]"),
    (torch.rand(10, 1, 28, 28), torch.zeros(7, dtype=torch.long), r"one per image, \[10\], got \[7\]"),
    (torch.rand(10, 1, 28, 28), torch.zeros(12, dtype=torch.long), r"one per image, \[10\], got \[12\]"),
    (torch.rand(10, 1, 28, 28), [0] * 10, r"one per image, \[10\], got list"),
])
def test_accuracy_on_images_or_labels_of_another_shape_is_one_line(images, labels, message):
    """Images without the channel axis or of another size were a RuntimeError deep in a convolution or matmul;
    7 or 12 labels for 10 images a broadcasting RuntimeError (after a UserWarning from the loss)."""
    with pytest.raises(ConfigError, match=message):
        accuracy_on("stbp_fmnist", images, labels)


def test_check_pretrained_refuses_a_card_of_another_input_shape_than_its_data(tmp_path, monkeypatch):
    """stbp_fmnist's net pools 29x29 images to the same 7x7 map as 28x28 ones, so a card saying [1, 29, 29] loaded
    and ``zoo --check`` reported it matching on the 28x28 test split; now the check compares the card's shape and
    classes with the data set's and refuses it in one line (before any batch is made)."""
    folder = _entry_copy(tmp_path, monkeypatch)
    (folder / "card.json").write_text(_edited(CARD, input_shape=[1, 29, 29]))
    ds.pretrained("stbp_fmnist")  # the weights fit either shape
    fake = type("Splits", (), {"input_shape": (1, 28, 28), "num_classes": 10})()
    monkeypatch.setattr(pretrained, "load_data", lambda config: fake)
    with pytest.raises(DataCorruptError, match=r"gives input_shape \[1, 29, 29\], its data set 'fashion_mnist' has "
                                               r"\[1, 28, 28\]"):
        ds.check_pretrained("stbp_fmnist")


@pytest.mark.parametrize(("images", "labels", "message"), [
    (torch.full((4, 1, 28, 28), float("nan")), torch.zeros(4, dtype=torch.long), r"takes images in \[0, 1\], got NaN$"),
    (torch.full((4, 1, 28, 28), 200.0), torch.zeros(4, dtype=torch.long),
     r"takes images in \[0, 1\], got values in \[200, 200\]$"),
    (torch.full((4, 1, 28, 28), 200, dtype=torch.uint8), torch.zeros(4, dtype=torch.long),
     r"takes floating-point images in \[0, 1\], got torch.uint8 \(uint8 images: divide by 255\)$"),
    (torch.rand(4, 1, 28, 28), torch.zeros(4),
     r"labels must be class indices \(an integer tensor\), got torch.float32$"),
    (torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 10, 2]), r"labels must be class indices in \[0, 10\), got values "
                                                            r"in \[0, 10\]$"),
    (torch.rand(4, 1, 28, 28), torch.tensor([0, -1, 2, 3]), r"got values in \[-1, 3\]$"),
])
def test_accuracy_on_refuses_images_or_labels_it_cannot_score_in_one_line(images, labels, message):
    """NaN images scored an accuracy of 1.0 against labels 0 and images in [0, 255] were scored silently (0.0); uint8
    images, float labels and a label of 10 were a RuntimeError of the first layer or the loss."""
    with pytest.raises(ConfigError, match="^pretrained 'stbp_fmnist'.*" + message):
        accuracy_on("stbp_fmnist", images, labels)


def test_accuracy_on_takes_float64_images_and_int32_labels_as_the_float32_and_int64_ones():
    """Both were a RuntimeError ('expected scalar type Double but found Float', one_hot of an int32 tensor)."""
    sample = np.load(SAMPLE, allow_pickle=False)
    images = torch.tensor(sample["images"][:50], dtype=torch.float64).unsqueeze(1) / 255.0
    labels = torch.tensor(sample["labels"][:50], dtype=torch.long)
    expected = accuracy_on("stbp_fmnist", images.float(), labels)
    assert accuracy_on("stbp_fmnist", images, labels.int()) == expected > 0.5


def test_accuracy_on_reads_float8_images_and_unsigned_labels_torch_has_no_min_of():
    """torch has no min/max of float8 or uint16/32/64 tensors: such images or labels were a NotImplementedError
    traceback ('"min_all" not implemented for 'UInt32'') of the value check instead of a score or a one-line error."""
    sample = np.load(SAMPLE, allow_pickle=False)
    images = torch.tensor(sample["images"][:50], dtype=torch.float32).unsqueeze(1) / 255.0
    labels = torch.tensor(sample["labels"][:50], dtype=torch.long)
    coarse = images.to(torch.float8_e4m3fn)
    expected = accuracy_on("stbp_fmnist", coarse.float(), labels)
    assert accuracy_on("stbp_fmnist", coarse, labels.to(torch.uint32)) == expected > 0.5
    assert accuracy_on("stbp_fmnist", images, labels.to(torch.uint16)) == accuracy_on("stbp_fmnist", images, labels)
    with pytest.raises(ConfigError, match=r"labels must be class indices in \[0, 10\), got values in \[12, 12\]$"):
        accuracy_on("stbp_fmnist", images, torch.full((50,), 12, dtype=torch.uint64))
    with pytest.raises(ConfigError, match=r"takes images in \[0, 1\], got values in \[2, 2\]$"):
        accuracy_on("stbp_fmnist", torch.full_like(images, 2.0).to(torch.float8_e5m2), labels)
