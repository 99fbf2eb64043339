"""Model zoo: architecture specs and the registry that builds them for any method."""

from deepspike.models import zoo  # noqa: F401  (registers the built-in models)
from deepspike.models.registry import (
    create_architecture,
    get_model_entry,
    list_models,
    register_model,
    scaled,
)
from deepspike.models.spec import (
    Activation,
    Architecture,
    Attention,
    Concat,
    Conv,
    Dropout,
    Flatten,
    Linear,
    Pool,
    Residual,
)

__all__ = [
    "Activation",
    "Architecture",
    "Attention",
    "Concat",
    "Conv",
    "Dropout",
    "Flatten",
    "Linear",
    "Pool",
    "Residual",
    "create_architecture",
    "get_model_entry",
    "list_models",
    "register_model",
    "scaled",
]
