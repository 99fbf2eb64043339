"""Pretrained models shipped in the package (``deepspike zoo``, ``deepspike.pretrained(name)``).

Each entry is a folder ``deepspike/zoo_models/<name>/`` made from a finished run by ``benchmarks/make_zoo.py``:

    config.yaml   the run's resolved recipe (what builds the network)
    weights.pt    the trained weights only (the weight average where the run kept one), in the checkpoint format
                  whose loading never runs code and whose checksum is verified (``training.checkpoint_format``)
    card.json     what the model is and what it was measured to do: ``name``, ``method``, ``model``, ``dataset``,
                  ``num_classes``, ``input_shape``, ``input`` (the preprocessing it expects), ``test_accuracy`` on
                  the full test split, ``spikes_per_sample``, ``energy_ann_over_snn`` (45 nm fp32), ``timesteps``,
                  ``sample_accuracy`` on the packaged test sample, ``made_from`` (the command that trained it)

Loading needs no data: the architecture's classes and input shape come from the card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepspike.config.load import load_config
from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.core.options import is_finite, is_whole, shown_value
from deepspike.data.augment import normalize
from deepspike.data.paths import one_line
from deepspike.models.registry import MAX_SIZE_ARG
from deepspike.training.checkpoint_format import read_checkpoint_file
from deepspike.training.divergence import check_loaded_weights_finite
from deepspike.training.evaluate import evaluate
from deepspike.training.run_setup import load_data, make_batches, method_and_architecture
from deepspike.training.runtime import autocast_dtype, model_device, resolve_device
from deepspike.training.weights import load_weights

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo_models"
WEIGHTS_NAME, CARD_NAME, CONFIG_NAME = "weights.pt", "card.json", "config.yaml"
MAX_WEIGHTS_BYTES = 4 * 2**20  # per entry: the package stays small (the 94% Fashion-MNIST VGG's weights are 3.4 MB)


def zoo_names() -> list[str]:
    """The shipped entries, sorted."""
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / CARD_NAME).is_file()) if ZOO_DIR.is_dir() else []


def zoo_card(name: str) -> dict[str, Any]:
    """The card of entry ``name`` (module docstring); a one-line ``ConfigError`` for an unknown name, a one-line
    ``DataCorruptError`` for a card that is not strict JSON or has a field not of its form (``card_problem``)."""
    if name not in zoo_names():
        raise ConfigError(f"no pretrained model {name!r}; valid: {', '.join(zoo_names()) or 'none shipped'}")
    path = ZOO_DIR / name / CARD_NAME

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is no number of a card (cards are strict JSON)")

    try:
        card = json.loads(path.read_bytes(), parse_constant=refuse)
    except (UnicodeDecodeError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        raise DataCorruptError(f"zoo card {path} is not strict JSON: {one_line(e)}") from None
    problem = card_problem(card, name)
    if problem is not None:
        raise DataCorruptError(f"zoo card {path} is corrupt: {problem}")
    return card


CARD_TEXT = ("method", "model", "dataset", "made_from")
CARD_FIELDS = {  # field: (whether a value fits, what it must be); "sample_accuracy" may be missing (make_zoo adds it)
    "num_classes": (lambda v: is_whole(v, 2, MAX_SIZE_ARG), f"a whole number from 2 to {MAX_SIZE_ARG}"),
    "input_shape": (lambda v: isinstance(v, list) and bool(v) and all(is_whole(n, 1, MAX_SIZE_ARG) for n in v),
                    f"a non-empty list of whole numbers from 1 to {MAX_SIZE_ARG}"),
    "timesteps": (lambda v: v is None or is_whole(v, 1), "null or a whole number >= 1"),
    "test_accuracy": (lambda v: is_finite(v) and 0 <= v <= 1, "a fraction in [0, 1]"),
    "sample_accuracy": (lambda v: is_finite(v) and 0 <= v <= 1, "a fraction in [0, 1]"),
    "spikes_per_sample": (lambda v: v is None or (is_finite(v) and v >= 0), "null or a finite number >= 0"),
    "energy_ann_over_snn": (lambda v: v is None or (is_finite(v) and v > 0), "null or a finite number > 0"),
}


def card_problem(card: Any, name: str) -> str | None:
    """What is wrong with ``card``, the card of entry ``name`` (module docstring), said in a few words; None when
    every field the package reads is of its form: ``name`` the entry's, ``method``, ``model``, ``dataset`` and
    ``made_from`` text, ``input`` an object whose ``normalize`` is null or per-channel ``mean`` and ``std`` (>= 0),
    one of each per channel of ``input_shape``, and the numbers of ``CARD_FIELDS``."""
    if not isinstance(card, dict):
        return f"it holds a JSON {type(card).__name__}, not an object"
    if card.get("name") != name:
        return f"its name {shown_value(card.get('name'))} is not its entry's, {name!r}"
    for key in (*CARD_TEXT, *CARD_FIELDS):
        if key not in card and key != "sample_accuracy":
            return f"it has no {key!r}"
        fits, expected = CARD_FIELDS.get(key, (lambda v: isinstance(v, str), "text"))
        if key in card and not fits(card[key]):
            return f"{key} is {shown_value(card[key])}, expected {expected}"
    if not _input_fits(card.get("input"), card["input_shape"][0]):
        return (f"input is {shown_value(card.get('input'))}, expected an object whose normalize is null or "
                f"{{\"mean\": [...], \"std\": [...]}} of {card['input_shape'][0]} finite numbers each, std >= 0")
    return None


def zoo_table() -> list[dict[str, Any]]:
    """Every entry's card."""
    return [zoo_card(name) for name in zoo_names()]


def _input_fits(value: Any, channels: int) -> bool:
    """``value`` is a card's ``input``: an object whose ``normalize`` is null or holds ``mean`` and ``std`` lists of
    ``channels`` finite numbers each, every std >= 0 (``preprocess`` standardises with them as training did,
    ``data.augment.normalize``: a std of 0, a channel constant in the training split, is only centred)."""
    if not isinstance(value, dict) or "normalize" not in value:
        return False
    norm = value["normalize"]
    if norm is None:
        return True
    if not isinstance(norm, dict):
        return False
    mean, std = norm.get("mean"), norm.get("std")
    if not all(isinstance(v, list) and len(v) == channels and all(is_finite(x) for x in v) for v in (mean, std)):
        return False
    return all(x >= 0 for x in std)


def load_pretrained(name: str, device: str | torch.device = "cpu") -> tuple[Any, Any, nn.Module]:
    """``(config, method, model)`` of entry ``name``: the network its recipe builds with the shipped weights, in
    eval mode. ``model(x)`` takes images ``[B, *input_shape]`` preprocessed as the card's ``input`` says."""
    card = zoo_card(name)
    device = device if isinstance(device, torch.device) else resolve_device(device)  # a bad one is one line
    folder = ZOO_DIR / name
    config = load_config(folder / CONFIG_NAME, [])
    method, arch = method_and_architecture(config, card["num_classes"], tuple(card["input_shape"]))
    model = method.build(arch).to(device)
    _check_card_config(card, config, folder)
    _check_card_timesteps(card, config, model, folder)
    payload = read_checkpoint_file(folder / WEIGHTS_NAME, map_location=device)
    load_weights(model, payload.get("model"), folder / WEIGHTS_NAME)
    check_loaded_weights_finite(model, folder / WEIGHTS_NAME)
    return config, method, model.eval()


class InputCheck:
    """A forward pre-hook for a pretrained entry's net (``deepspike.pretrained``): its input must be a floating-point
    tensor of images ``[B, *input_shape]`` on the net's device, else a one-line ``ConfigError`` naming what it takes
    (a [C, H, W] image without its batch, a flat [B, 784] batch, 3-channel images, uint8 or int64 pixels, float64
    images of a conv net or a NumPy array stopped in a torch RuntimeError or AttributeError 9 to 18 frames deep);
    float16/bfloat16/float64 images are cast to float32 (``cast``), as ``accuracy_on`` scores them (a ``ttfs_window``
    net stopped in its first layer on them: "expected m1 and m2 to have the same dtype"). A class, not a closure: the
    net stays picklable. ``takes``, ``fits`` and ``cast`` say what input it takes and how it is cast
    (``training.reload.RunInputCheck``: a reloaded run's)."""

    def __init__(self, name: str, input_shape: tuple[int, ...]) -> None:
        self.name, self.input_shape = name, tuple(input_shape)

    def takes(self) -> str:
        """What the net takes, the start of every refusal."""
        return f"pretrained {self.name!r} takes images [B, {', '.join(map(str, self.input_shape))}]"

    def fits(self, shape: tuple[int, ...]) -> bool:
        """Whether input of ``shape`` has the axes the net takes."""
        return len(shape) == len(self.input_shape) + 1 and shape[1:] == self.input_shape

    def cast(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The input the net runs on: ``x`` in float32 (``x`` itself when it is)."""
        return x.float()

    def integer_hint(self) -> str:
        """How to make integer input floating-point, said when it is refused: images in [0, 1]."""
        return "uint8 images: divide by 255"

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if not args:  # the input given by keyword: the net's own checks apply
            return None
        x, takes = args[0], self.takes()
        if not isinstance(x, torch.Tensor):
            raise ConfigError(f"{takes} as a torch.Tensor, got {type(x).__name__}")
        if not self.fits(tuple(x.shape)):
            raise ConfigError(f"{takes}, got {list(x.shape)}" + (" (add the batch dimension: x[None])" if
                                                               tuple(x.shape) == self.input_shape else ""))
        if not x.is_floating_point():
            raise ConfigError(f"{takes} of floating-point values, got {x.dtype} ({self.integer_hint()})")
        device = model_device(module)
        if x.device != device:
            raise ConfigError(f"{takes} on the net's device {device}, got a tensor on {x.device}: "
                              f"x.to({str(device)!r})")
        cast = self.cast(module, x)
        return None if cast is x else (cast, *args[1:])


def _check_card_config(card: dict[str, Any], config: Any, folder: Path) -> None:
    """A one-line ``DataCorruptError`` unless the card's method, model and data set are those of the entry's
    ``config.yaml`` (which builds the network): ``deepspike zoo`` shows the card's; and the card standardises the
    input (``input.normalize`` not null) exactly when the recipe's ``data.normalize`` did, as ``make_zoo`` writes it:
    ``preprocess`` follows the card, ``check_pretrained`` the recipe."""
    for key, value in (("method", config.method.name), ("model", config.model.name), ("dataset", config.data.name)):
        if card[key] != value:
            raise DataCorruptError(f"zoo entry {folder}: its {CARD_NAME} gives {key} {card[key]!r}, its {CONFIG_NAME} "
                                   f"{value!r}; they do not belong together")
    if (card["input"]["normalize"] is not None) != bool(config.data.normalize):
        raise DataCorruptError(f"zoo entry {folder}: its {CARD_NAME} gives input.normalize "
                               f"{shown_value(card['input']['normalize'])}, its {CONFIG_NAME} data.normalize "
                               f"{config.data.normalize}; they do not belong together")


def _check_card_timesteps(card: dict[str, Any], config: Any, model: nn.Module, folder: Path) -> None:
    """A one-line ``DataCorruptError`` unless the card's ``timesteps`` are the steps the loaded net runs for at
    inference, as ``make_zoo`` writes them: the net's ``eval_timesteps``, else the recipe's ``method.timesteps``
    (null for a method without steps); ``deepspike zoo`` lists the card's."""
    steps = getattr(model, "eval_timesteps", None) or getattr(config.method.options, "timesteps", None)
    if card["timesteps"] != steps:
        raise DataCorruptError(f"zoo entry {folder}: its {CARD_NAME} gives timesteps {card['timesteps']!r}, the net "
                               f"its {CONFIG_NAME} builds runs for {steps!r}; they do not belong together")


def preprocess(card: dict[str, Any], images: torch.Tensor) -> torch.Tensor:
    """Images ``[B, *input_shape]`` in [0, 1] as the entry expects them: standardised with the training split's
    per-channel mean and standard deviation when its recipe did (``card["input"]["normalize"]``), as training did
    (``data.augment.normalize``)."""
    norm = card["input"].get("normalize")
    return normalize(images, norm["mean"], norm["std"]) if norm else images


def accuracy_on(name: str, images: torch.Tensor, labels: torch.Tensor, batch: int = 250) -> float:
    """Test accuracy of entry ``name`` on ``images [N, *input_shape]`` in [0, 1] with ``labels [N]``, evaluated
    as ``deepspike eval`` does (eval mode, the evaluation seed for random encoders), ``batch`` (a whole number >= 1)
    images at a time. Images of another shape than the card's ``input_shape``, no images, labels not one per image
    or a bad ``batch`` are a one-line ``ConfigError``, and so are images or labels of values the net cannot score
    (``_check_values``)."""
    if not is_whole(batch, 1):  # 0 was a ValueError from range(), -1 an accuracy of nan, 2.5 a TypeError
        raise ConfigError(f"batch must be a whole number >= 1, got {batch!r}")
    card = zoo_card(name)
    if not isinstance(images, torch.Tensor) or tuple(images.shape[1:]) != tuple(card["input_shape"]):
        raise ConfigError(f"pretrained {name!r} takes images [N, {', '.join(map(str, card['input_shape']))}], got "
                          f"{list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    if len(images) == 0:  # no image scored nan
        raise ConfigError(f"accuracy_on needs at least one image, got {list(images.shape)}")
    if not isinstance(labels, torch.Tensor) or tuple(labels.shape) != (len(images),):
        raise ConfigError(f"pretrained {name!r}: labels must be one per image, [{len(images)}], got "
                          f"{list(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}")
    images, labels = _checked_values(name, card, images, labels)
    config, method, model = load_pretrained(name)
    x = preprocess(card, images)
    batches = [(x[i:i + batch], labels[i:i + batch]) for i in range(0, len(labels), batch)]
    return evaluate(model, method, batches, precision=autocast_dtype(config.train.precision))["accuracy"]


def _checked_values(name: str, card: dict[str, Any], images: torch.Tensor,
                    labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images as float32, labels as int64)``; a one-line ``ConfigError`` unless ``images`` are floating-point
    numbers in [0, 1] (NaN images scored an accuracy of 1.0 against labels 0, images in [0, 255] were scored silently,
    uint8 or float64 images stopped in a RuntimeError of the first layer) and ``labels`` are class indices: integers
    in [0, num_classes) (float labels or a label of 99 were a RuntimeError or IndexError of the loss). The values are
    read after the casts: torch has no min or max of float8 or of uint16/32/64 (a NotImplementedError traceback)."""
    if not images.is_floating_point():
        raise ConfigError(f"pretrained {name!r} takes floating-point images in [0, 1], got {images.dtype} (uint8 "
                          "images: divide by 255)")
    x = images.float()
    low, high = x.min().item(), x.max().item()
    if not 0 <= low <= high <= 1:  # NaN fails every comparison
        shown = "NaN" if x.isnan().any() else f"values in [{low:g}, {high:g}]"
        raise ConfigError(f"pretrained {name!r} takes images in [0, 1], got {shown}")
    classes = card["num_classes"]
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ConfigError(f"pretrained {name!r}: labels must be class indices (an integer tensor), got {labels.dtype}")
    y = labels.long()  # int32, uint8 or uint64 class indices: the losses take int64 (a uint64 past 2^63 goes negative)
    if y.min().item() < 0 or y.max().item() >= classes:
        raise ConfigError(f"pretrained {name!r}: labels must be class indices in [0, {classes}), got values in "
                          f"[{y.min().item()}, {y.max().item()}]")
    return x, y


def check_pretrained(name: str, tolerance: float = 0.001) -> dict[str, Any]:
    """Re-measure entry ``name`` on its data set's full test split (the data must be where its recipe looks)
    and compare with the card: ``{"name", "recorded", "measured", "samples", "matches"}``, ``matches`` when they
    differ by at most ``tolerance`` (a fraction in [0, 1]). A card whose ``input_shape`` or ``num_classes`` is not
    the data set's is a one-line ``DataCorruptError``."""
    if not (is_finite(tolerance) and 0 <= tolerance <= 1):  # is_finite: a number, not a bool (True passed as 1)
        raise ConfigError(f"tolerance must be a fraction in [0, 1], got {tolerance!r}")
    card = zoo_card(name)
    config, method, model = load_pretrained(name)
    data = load_data(config)
    for key, value in (("input_shape", list(data.input_shape)), ("num_classes", data.num_classes)):
        if card[key] != value:  # a global pool took 29x29 images as well as its 28x28 ones
            raise DataCorruptError(f"zoo entry {ZOO_DIR / name}: its {CARD_NAME} gives {key} {card[key]!r}, its data "
                                   f"set {config.data.name!r} has {value!r}")
    batches = make_batches(config, data, "test", torch.device("cpu"))
    result = evaluate(model, method, batches, precision=autocast_dtype(config.train.precision))
    measured = result["accuracy"]
    return {"name": name, "recorded": card["test_accuracy"], "measured": measured, "samples": result["samples"],
            "matches": abs(measured - card["test_accuracy"]) <= tolerance}
