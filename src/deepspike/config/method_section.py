"""The recipe's ``method`` section, typed: the method's name and its validated ``Options`` instance.

In YAML (a recipe, a run's ``config.yaml``) the section is flat, the name beside every option::

    method: {name: stbp, timesteps: 8, encoder: poisson, ...}

``resolve_method_section`` checks the options against the chosen method's ``Options`` dataclass once,
when the config is loaded; ``training.run_setup.build_run`` then instantiates the method from the checked
object (``methods.registry.method_from_options``) without validating it again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf.errors import OmegaConfBaseException

from deepspike.core.errors import ConfigError
from deepspike.core.options import as_dict, shown_value
from deepspike.methods.registry import method_options

DEFAULT_METHOD = "stbp"


@dataclasses.dataclass(frozen=True)
class MethodConfig:
    """``name``: a registered method; ``options``: an instance of that method's ``Options`` dataclass."""

    name: str
    options: Any

    def as_dict(self) -> dict[str, Any]:
        """The flat YAML form ``{"name": ..., **options}``."""
        return {"name": self.name, **dataclasses.asdict(self.options)}


def resolve_method_section(values: Any) -> MethodConfig:
    """A ``method`` section (dict or DictConfig, ``name`` defaulting to stbp) -> ``MethodConfig``."""
    try:
        values = as_dict(values)
    except OmegaConfBaseException as e:  # an interpolation that does not resolve
        raise ConfigError(f"invalid method config: {str(e).splitlines()[0]}") from None
    name = values.pop("name", DEFAULT_METHOD)
    if not isinstance(name, str):
        raise ConfigError(f"bad value {shown_value(name)} for method.name: expected a method name, e.g. stbp")
    return MethodConfig(name, method_options(name, values))


def default_method_section() -> MethodConfig:
    """The method of a recipe without a ``method`` section: stbp with its default options."""
    return resolve_method_section({"name": DEFAULT_METHOD})
