"""What deepspike offers: models (with their parameter and MAC counts), methods (with their options) and data sets."""

from __future__ import annotations

from typing import Any

from deepspike.config.reference import method_keys
from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole, shown_value
from deepspike.data import list_datasets
from deepspike.methods import list_methods
from deepspike.models import create_architecture, list_models
from deepspike.models.costs import count_macs, count_parameters
from deepspike.models.registry import MAX_SIZE_ARG


def model_table(num_classes: int = 10) -> list[dict[str, Any]]:
    """One row per registered model: ``name``, ``input_shape``, ``parameters``, ``macs``, ``paper``; ``num_classes``
    (the head's width) is at most ``MAX_SIZE_ARG`` (65536, the largest model argument; 10**11 classes were listed
    as nets of 4 * 10**13 weights), below 2 as ``create_architecture`` refuses it."""
    if is_whole(num_classes, MAX_SIZE_ARG + 1):
        raise ConfigError(f"num_classes must be at most {MAX_SIZE_ARG}, got {shown_value(num_classes)}")
    rows = []
    for entry in list_models():
        arch = create_architecture(entry.name, num_classes=num_classes)
        rows.append(
            dict(name=entry.name, input_shape=entry.default_input_shape, parameters=count_parameters(arch),
                 macs=count_macs(arch), paper=entry.paper)
        )
    return rows


def method_table() -> list[dict[str, Any]]:
    """One row per training method: ``name``, ``description``, ``options`` (name -> default) and ``choices`` (name ->
    the valid values, for the options with a fixed set)."""
    keys = method_keys()
    return [dict(name=cls.name, description=cls.description,
                 options={k.key.removeprefix("method."): k.default for k in keys[cls.name]},
                 choices={k.key.removeprefix("method."): list(k.choices) for k in keys[cls.name] if k.choices})
            for cls in list_methods()]


def dataset_names() -> list[str]:
    """The registered data set names (``data.name`` in a recipe)."""
    return list(list_datasets())
