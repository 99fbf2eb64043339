"""``create_model``: a registered architecture built as a network of a training method."""

from __future__ import annotations

from deepspike.core.errors import ConfigError
from deepspike.core.options import shown_value
from deepspike.methods.registry import get_method
from deepspike.models import create_architecture, get_model_entry
from deepspike.models.registry import check_input_shape, refuse_core_args
from deepspike.models.spec import Shape


def create_model(
    name: str,
    method: str = "ann",
    num_classes: int = 10,
    input_shape: Shape | None = None,
    width: float = 1.0,
    model_args: dict | None = None,
    **method_options,
):
    """Build model ``name`` as a network of ``method``; e.g. ``create_model("lenet", method="stbp")``.

    ``model_args`` go to the architecture factory, ``method_options`` to the method (time steps, neuron
    parameters, ...). Returns the method's ``nn.Module``: images ``[B, C, H, W]`` -> method outputs. ``model_args``
    that is no dict (a list: "argument after ** must be a mapping") is a one-line ``ConfigError``.
    """
    if model_args is not None and not isinstance(model_args, dict):
        raise ConfigError(f"model_args must be a dict of the model's options, e.g. {{'hidden': [128]}}, got "
                          f"{shown_value(model_args)}")
    refuse_core_args(model_args or {}, "model_args")
    chosen = get_method(method, method_options)
    shape = get_model_entry(name).default_input_shape if input_shape is None else check_input_shape(name, input_shape)
    return chosen.build(create_architecture(name, num_classes, chosen.input_shape(shape), width, **(model_args or {})))
