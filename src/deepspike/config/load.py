"""Load a recipe: YAML file + ``key=value`` overrides -> validated ``RunConfig``; save the resolved one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from deepspike.config import schema
from deepspike.config.method_section import resolve_method_section
from deepspike.config.schema import RunConfig
from deepspike.core.atomic import atomic_write_text
from deepspike.core.errors import ConfigError, DataNotFoundError
from deepspike.core.options import to_dataclass

SECTIONS = tuple(f.name for f in dataclasses.fields(RunConfig))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read recipe ``path`` (or the defaults when None), apply ``overrides`` like ``train.epochs=3``.

    Each section is checked against its schema; the ``method`` section against the chosen method's
    options, once, into a ``MethodConfig`` (every method option with its default filled in).
    """
    raw = OmegaConf.create({})
    if path is not None:
        raw = _read_yaml(Path(path))
    raw = OmegaConf.merge(raw, parse_overrides(overrides or []))
    unknown = [k for k in raw if k not in SECTIONS]
    if unknown:
        raise ConfigError(f"unknown config section {unknown[0]!r}; valid sections: {', '.join(SECTIONS)}")
    sections = {}
    for f in dataclasses.fields(RunConfig):
        if f.name == "method":
            continue
        schema = _section_schema(f.name)
        sections[f.name] = to_dataclass(schema, raw.get(f.name, {}), f.name)
    sections["method"] = resolve_method_section(raw.get("method", {}))
    return RunConfig(**sections)


def parse_overrides(overrides: list[str]) -> DictConfig:
    """``["train.epochs=3", "method.timesteps=4"]`` -> nested DictConfig (values parsed as YAML)."""
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"bad override {item!r}: expected key=value, e.g. train.epochs=3")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad override: {str(e).splitlines()[0]}") from None


def save_config(config: RunConfig, path: str | Path) -> None:
    """Write the fully resolved config as YAML (atomically); the method section flat (``MethodConfig.as_dict``)."""
    sections = {**dataclasses.asdict(config), "method": config.method.as_dict()}
    atomic_write_text(Path(path), OmegaConf.to_yaml(OmegaConf.create(sections)))


def _read_yaml(path: Path) -> DictConfig:
    if not path.is_file():
        raise DataNotFoundError(f"config file not found: {path}")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:  # multi-line text: keep the first line
        raise ConfigError(f"cannot parse {path}: {str(e).splitlines()[0]}") from None
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path} must hold a mapping of sections ({', '.join(SECTIONS)})")
    return OmegaConf.create(content)


def _section_schema(name: str) -> type:
    field = {f.name: f for f in dataclasses.fields(RunConfig)}[name]
    tp = field.type
    return getattr(schema, tp) if isinstance(tp, str) else tp
