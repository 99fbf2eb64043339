"""What deepspike offers: models (with their parameter and MAC counts), methods (with their options) and data sets."""

from __future__ import annotations

from typing import Any

from deepspike.config.reference import method_keys
from deepspike.data import list_datasets
from deepspike.methods import list_methods
from deepspike.models import create_architecture, list_models
from deepspike.models.costs import count_macs, count_parameters


def model_table(num_classes: int = 10) -> list[dict[str, Any]]:
    """One row per registered model: ``name``, ``input_shape``, ``parameters``, ``macs``, ``paper``."""
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
