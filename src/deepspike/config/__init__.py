"""Run configuration: schema, YAML loading with overrides, validation."""

from deepspike.config.load import load_config, load_saved_config, parse_overrides, save_config
from deepspike.config.method_section import MethodConfig
from deepspike.config.schema import (
    AugmentConfig,
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
)
from deepspike.core.options import to_dataclass

__all__ = [
    "AugmentConfig",
    "DataConfig",
    "MethodConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "ScheduleConfig",
    "TrainConfig",
    "load_config",
    "load_saved_config",
    "parse_overrides",
    "save_config",
    "to_dataclass",
]
