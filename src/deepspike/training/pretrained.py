"""Pretrained models shipped in the package (``deepspike zoo``, ``deepspike.pretrained(name)``).

Each entry is a folder ``deepspike/pretrained/<name>/`` made from a finished run by ``benchmarks/make_zoo.py``:

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
from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite
from deepspike.training.checkpoint_format import read_checkpoint_file
from deepspike.training.evaluate import evaluate
from deepspike.training.run_setup import load_data, make_batches, method_and_architecture
from deepspike.training.runtime import autocast_dtype, resolve_device
from deepspike.training.weights import load_weights

ZOO_DIR = Path(__file__).resolve().parent.parent / "pretrained"
WEIGHTS_NAME, CARD_NAME, CONFIG_NAME = "weights.pt", "card.json", "config.yaml"
MAX_WEIGHTS_BYTES = 4 * 2**20  # per entry: the package stays small (the 94% Fashion-MNIST VGG's weights are 3.4 MB)


def zoo_names() -> list[str]:
    """The shipped entries, sorted."""
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / CARD_NAME).is_file()) if ZOO_DIR.is_dir() else []


def zoo_card(name: str) -> dict[str, Any]:
    """The card of entry ``name`` (module docstring); a one-line ``ConfigError`` for an unknown name."""
    if name not in zoo_names():
        raise ConfigError(f"no pretrained model {name!r}; valid: {', '.join(zoo_names()) or 'none shipped'}")
    return json.loads((ZOO_DIR / name / CARD_NAME).read_text())


def zoo_table() -> list[dict[str, Any]]:
    """Every entry's card."""
    return [zoo_card(name) for name in zoo_names()]


def load_pretrained(name: str, device: str | torch.device = "cpu") -> tuple[Any, Any, nn.Module]:
    """``(config, method, model)`` of entry ``name``: the network its recipe builds with the shipped weights, in
    eval mode. ``model(x)`` takes images ``[B, *input_shape]`` preprocessed as the card's ``input`` says."""
    card = zoo_card(name)
    device = device if isinstance(device, torch.device) else resolve_device(device)  # a bad one is one line
    folder = ZOO_DIR / name
    config = load_config(folder / CONFIG_NAME, [])
    method, arch = method_and_architecture(config, card["num_classes"], tuple(card["input_shape"]))
    model = method.build(arch).to(device)
    payload = read_checkpoint_file(folder / WEIGHTS_NAME, map_location=device)
    load_weights(model, payload.get("model"), folder / WEIGHTS_NAME)
    return config, method, model.eval()


def preprocess(card: dict[str, Any], images: torch.Tensor) -> torch.Tensor:
    """Images ``[B, *input_shape]`` in [0, 1] as the entry expects them: standardised with the training split's
    per-channel mean and standard deviation when its recipe did (``card["input"]["normalize"]``)."""
    norm = card["input"].get("normalize")
    if not norm:
        return images
    mean = torch.tensor(norm["mean"], dtype=images.dtype).reshape(1, -1, 1, 1)
    std = torch.tensor(norm["std"], dtype=images.dtype).reshape(1, -1, 1, 1)
    return (images - mean) / std


def accuracy_on(name: str, images: torch.Tensor, labels: torch.Tensor, batch: int = 250) -> float:
    """Test accuracy of entry ``name`` on ``images [N, *input_shape]`` in [0, 1] with ``labels [N]``, evaluated
    as ``deepspike eval`` does (eval mode, the evaluation seed for random encoders)."""
    config, method, model = load_pretrained(name)
    x = preprocess(zoo_card(name), images)
    batches = [(x[i:i + batch], labels[i:i + batch]) for i in range(0, len(labels), batch)]
    return evaluate(model, method, batches, precision=autocast_dtype(config.train.precision))["accuracy"]


def check_pretrained(name: str, tolerance: float = 0.001) -> dict[str, Any]:
    """Re-measure entry ``name`` on its data set's full test split (the data must be where its recipe looks)
    and compare with the card: ``{"name", "recorded", "measured", "samples", "matches"}``, ``matches`` when they
    differ by at most ``tolerance`` (a fraction in [0, 1])."""
    if not (is_finite(tolerance) and 0 <= tolerance <= 1):  # is_finite: a number, not a bool (True passed as 1)
        raise ConfigError(f"tolerance must be a fraction in [0, 1], got {tolerance!r}")
    card = zoo_card(name)
    config, method, model = load_pretrained(name)
    data = load_data(config)
    batches = make_batches(config, data, "test", torch.device("cpu"))
    result = evaluate(model, method, batches, precision=autocast_dtype(config.train.precision))
    measured = result["accuracy"]
    return {"name": name, "recorded": card["test_accuracy"], "measured": measured, "samples": result["samples"],
            "matches": abs(measured - card["test_accuracy"]) <= tolerance}
