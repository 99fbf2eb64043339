"""Load a recipe: YAML file + ``key=value`` overrides -> validated ``RunConfig``; save the resolved one."""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from deepspike.config import schema
from deepspike.config.method_section import DEFAULT_METHOD, resolve_method_section
from deepspike.config.schema import RunConfig, check_settings_used
from deepspike.config.yaml_io import parse_yaml, read_yaml_file
from deepspike.core.atomic import atomic_write_text
from deepspike.core.errors import ConfigError, DataCorruptError, UnusedOptionError
from deepspike.core.messages import note
from deepspike.core.options import shown_key, shown_value, to_dataclass
from deepspike.methods.base import Method
from deepspike.methods.registry import method_from_options, method_names, method_options
from deepspike.models.registry import create_architecture, get_model_entry
from deepspike.models.spec import Architecture

SECTIONS = tuple(f.name for f in dataclasses.fields(RunConfig))
LATER_SECTIONS = ("expected",)  # sections that runs saved by older versions lack: their defaults stand


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read recipe ``path`` (or the defaults when None), apply ``overrides`` like ``train.epochs=3``.

    The file and each override value are read as bounded, plain YAML (``config.yaml_io``); each section
    must be a mapping and is checked against its schema (types, ranges, finite numbers: ``core.options``);
    the ``method`` section against the chosen method's options, once, into a ``MethodConfig`` (every method
    option with its default filled in). Any problem is a one-line ``ConfigError`` (``DataNotFoundError``
    for a missing file). A value of the recipe file that an override makes unused is reset to its default, with a
    note on stderr (``_settle_unused``; the checks that need the model judge it at its default input shape), and an
    option of the recipe's method that a ``method.name`` override's method lacks is left out, with a note; one set by
    an override, or unused in the recipe alone, is refused as before: by the loading (``train.time_segment`` without
    its mode) or by a new run (``check_settings_used``, ``Method.check_new_run``). A null for a key with an override
    of a key under it is refused (``parse_overrides``).
    """
    _check_arguments(path, overrides)
    recipe = _read_yaml(Path(path)) if path is not None else OmegaConf.create({})
    given = parse_overrides(overrides or [])
    try:
        raw = OmegaConf.merge(recipe, given)
    except (OmegaConfBaseException, TypeError) as e:  # TypeError: merging a mapping into a list
        raise ConfigError(f"cannot apply the overrides: {str(e).splitlines()[0]}") from None
    _check_sections(raw)
    if path is None or not overrides:
        return _run_config(raw)
    return _settle_unused(raw, recipe, (given, list(overrides)), str(path))


MAX_RESETS = 64  # more than the options of any section: each reset puts one key back to its default for good


def _settle_unused(raw: DictConfig, recipe: DictConfig, overrides: tuple[DictConfig, list[str]], name: str
                   ) -> RunConfig:
    """The ``RunConfig`` of ``raw`` (recipe file ``name``'s sections ``recipe`` with ``overrides`` merged in: as
    parsed, and their ``key=value`` texts) with each value of the recipe that the overrides make unused
    (an ``UnusedOptionError``: the ``demo.yaml`` recipe's ``method.decay: 0.5`` with ``method.neuron=plif``, which
    learns its decay) put back to its default, one note on stderr each: the user never set it. A value an override
    sets, or one the recipe alone already sets where it has no effect (a recipe inconsistent by itself), is kept,
    for the loading or the run to refuse as before; so is everything after another error of ``_first_unused``.
    ``raw`` is changed in place."""
    given, texts = overrides
    _leave_out_other_methods_keys(raw, recipe, given, name)
    set_here = [key for key, _ in _leaf_items(OmegaConf.to_container(given, resolve=False))]
    alone, single = None, {}
    for _ in range(MAX_RESETS):
        config, error = _first_unused(raw)
        if error is None:
            return config
        keep = any(key == error.dotted or key.startswith(error.dotted + ".") for key in set_here)
        section = raw.get(error.section)
        if not keep:
            alone = _unused_alone(recipe) if alone is None else alone
            keep = alone is None or error.dotted in alone or section is None or error.key not in section
        if keep and config is None:
            raise error
        if keep:
            return config
        _reset(section, error)
        near = (_made_unused_by(error.dotted, recipe, texts, single)
                or [item for item in texts if item.partition("=")[0].split(".")[0] == error.section] or texts)
        note(f"{error.dotted}={shown_value(error.value)} from {shown_key(name)} has no effect with "
             f"{', '.join(near)[:200]}: it takes effect only when {error.needs}; using the default "
             f"{'null' if error.default is None else shown_value(error.default)}")
    return _run_config(raw)


MAX_SINGLE_TRIES = 16  # overrides tried one at a time to name the one that makes a recipe value unused


def _made_unused_by(dotted: str, recipe: DictConfig, texts: list[str], single: dict[str, set[str]]) -> list[str]:
    """The overrides of ``texts`` (``key=value``) each of which alone, merged into ``recipe``, makes the recipe's
    value ``dotted`` unused (``_unused_alone`` of the recipe with that override: at most ``MAX_RESETS + 1`` loads each,
    once per override, kept in ``single``); empty when none does alone (the overrides act together), when there is
    one override (it is the cause) or more than ``MAX_SINGLE_TRIES``: then the note names the section's overrides."""
    if not 1 < len(texts) <= MAX_SINGLE_TRIES:
        return []
    for text in texts:
        if text not in single:
            single[text] = _unused_alone(recipe, text) or set()
    return [text for text in texts if dotted in single[text]]


def _leave_out_other_methods_keys(raw: DictConfig, recipe: DictConfig, given: DictConfig, name: str,
                                  say: Callable[[str], None] = note) -> None:
    """In place: where the overrides ``given`` switch recipe ``name``'s method (``method.name=ann`` on a ttfs_window
    recipe, as its comment suggests), each option of the recipe's ``method`` section (``recipe``) that the new method
    does not have and the recipe's has is left out of ``raw``, one note each (``say``; 'unknown key method.margin'
    stopped the loading). One the overrides set, or one no method of the two has, is kept, for the loading to refuse."""
    new, section = OmegaConf.select(given, "method.name", default=None), recipe.get("method")
    section = OmegaConf.to_container(section, resolve=False) if isinstance(section, DictConfig) else {}
    old = section.get("name", DEFAULT_METHOD)
    if not (isinstance(new, str) and isinstance(old, str)) or new == old or not {new, old} <= set(method_names()):
        return
    fields, own = ({f.name for f in dataclasses.fields(method_options(m))} for m in (new, old))
    user = set(given.method.keys())
    for key in [k for k in section if k in own - fields and k not in user and k in raw.method]:
        say(f"method.{key}={shown_value(section[key])} from {shown_key(name)} is an option of method "
              f"{shown_value(old)}, not of method.name={new}: left out")
        del raw.method[key]


def _first_unused(raw: DictConfig) -> tuple[RunConfig | None, UnusedOptionError | None]:
    """``(config, error)``: the ``RunConfig`` of sections ``raw`` and the first option it sets where a new run would
    not read it (``check_settings_used``, then the method's ``check_options_used`` and its ``check_options_fit`` of
    the ``_default_architecture``), or None; ``(None, error)`` when a section's own check refuses such an option
    (``train.time_segment`` without ``temporal_grad: checkpoint``). Another ``ConfigError`` of the loading propagates;
    one of the new-run checks ends the search (the run refuses it)."""
    try:
        config = _run_config(raw)
    except UnusedOptionError as e:
        return None, e
    try:
        check_settings_used(config)
        method = method_from_options(config.method.name, config.method.options)
        method.check_options_used()
        arch = _default_architecture(config, method)
        if arch is not None:
            method.check_options_fit(arch)
    except UnusedOptionError as e:
        return config, e
    except ConfigError:
        pass
    return config, None


def _default_architecture(config: RunConfig, method: Method) -> Architecture | None:
    """The architecture of ``config``'s model as ``method`` builds it at the model's registered default input shape
    and 10 classes (the data's shape is known only once the run reads the data; the layers the options' fit depends
    on, batch-norm, average pooling, convolutions, are those of the built-in models at any size); None when it cannot
    be built so (arguments made for another input size): then the run alone judges the fit."""
    try:
        shape = get_model_entry(config.model.name).default_input_shape
        return create_architecture(config.model.name, input_shape=method.input_shape(shape), width=config.model.width,
                                   **config.model.args)
    except Exception:  # a model of one's own may raise anything for a shape it was not made for; the run reports it
        return None


def _unused_alone(recipe: DictConfig, override: str | None = None) -> set[str] | None:
    """The dotted keys the recipe ``recipe`` sets where they have no effect, without any override (a recipe
    inconsistent by itself), or with the one ``override`` (``key=value``; the recipe's options of another method left
    out, in silence); None when that cannot be told (the recipe so does not load)."""
    raw, found = copy.deepcopy(recipe), set()
    if override is not None:
        try:
            given = parse_overrides([override])
            raw = OmegaConf.merge(raw, given)
            _leave_out_other_methods_keys(raw, recipe, given, "", say=lambda text: None)
        except (ConfigError, OmegaConfBaseException, TypeError):
            return None
    for _ in range(MAX_RESETS):
        try:
            _check_sections(raw)
            error = _first_unused(raw)[1]
        except ConfigError:
            return None
        if error is None or error.section not in raw or error.key not in raw[error.section]:
            return found
        found.add(error.dotted)
        _reset(raw[error.section], error)
    return found


def _reset(section: DictConfig, error: UnusedOptionError) -> None:
    """Put the key of ``error`` in recipe section ``section`` back to its default."""
    section[error.key] = list(error.default) if isinstance(error.default, tuple) else error.default


def _leaf_items(values: object, path: tuple[str, ...] = ()) -> list[tuple[str, object]]:
    """``(dotted key, value)`` of each value of nested mappings ``values`` that is no mapping (or an empty one)."""
    if isinstance(values, dict) and values:
        return [item for key, value in values.items() for item in _leaf_items(value, (*path, str(key)))]
    return [(".".join(path), values)]


def _check_arguments(path: object, overrides: object) -> None:
    """A one-line ``ConfigError`` when ``path`` is not a path (``load_config(5)`` was a TypeError) or ``overrides``
    is not a list of ``key=value`` strings (a bare string was read letter by letter: "bad override 't'")."""
    if path is not None and not isinstance(path, str | os.PathLike):
        raise ConfigError(f"a recipe is a path to a YAML file (or None for the defaults), got "
                          f"{type(path).__name__} {shown_value(path)}")
    listed = isinstance(overrides, list | tuple) and all(isinstance(o, str) for o in overrides)
    if overrides is not None and not listed:
        raise ConfigError(f"overrides must be a list of key=value strings, e.g. ['train.epochs=3'], got "
                          f"{shown_value(overrides)}")


def _run_config(raw: DictConfig) -> RunConfig:
    """The ``RunConfig`` of sections ``raw`` (already checked by ``_check_sections``), each against its schema, after
    ``_resolved`` (interpolations across sections)."""
    plain = _resolved(raw)
    sections = {name: to_dataclass(_section_schema(name), plain.get(name), name) for name in SECTIONS
                if name != "method"}
    sections["method"] = resolve_method_section(plain.get("method") or {})
    return RunConfig(**sections)


_ASKED = re.compile(r"Interpolation key '(.*)' not found")


def _resolved(raw: DictConfig) -> dict:
    r"""Recipe ``raw`` as plain data, every ``${...}`` resolved against the whole recipe, as OmegaConf reads it: a key
    by its full path (``${train.epochs}``, in any section) or beside it (``${.epochs}``); each text escaped again
    (``escape_interpolations``) so that the schemas read it as that text. (Each section used to be resolved alone:
    ``${method.timesteps}`` in train was "not found" though the recipe set it, and a literal ``\${x}`` in the method
    section was resolved twice.) A key the recipe and its overrides do not write (a default) is not there to read."""
    try:
        return escape_interpolations(OmegaConf.to_container(raw, resolve=True))  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        where = shown_key(str(getattr(e, "full_key", None) or "?"))
        asked = _ASKED.match(str(e))
        if asked is None:
            raise ConfigError(f"cannot resolve the interpolation at {where}: {str(e).splitlines()[0]}") from None
        raise ConfigError(f"the interpolation at {where} reads {shown_key(asked.group(1))}, which the recipe and its "
                          "overrides do not set (an interpolation reads the keys written there, not defaults): write "
                          "that key, or read one by its full path, e.g. ${train.epochs}, or beside it, e.g. ${.epochs}"
                          ) from None


def load_saved_config(path: str | Path) -> RunConfig:
    """A run's ``config.yaml``, as ``load_config`` reads it; a run saves its config whole (``save_config``), so a
    file without a section (emptied, cut short) is a ``DataCorruptError``, not a recipe of defaults (except
    ``LATER_SECTIONS``)."""
    raw = _read_yaml(Path(path))
    _check_sections(raw)  # first: each section a mapping (``method: 3`` is one line, not a TypeError below)
    missing = [name for name in SECTIONS if raw.get(name) is None and name not in LATER_SECTIONS]
    if missing or "name" not in raw.method:
        what = ", ".join(missing) if missing else "method.name"
        raise DataCorruptError(f"{shown_key(str(path))} is not a whole run config (missing {what}): a run's "
                               "config.yaml holds every section; restore it or train the run again")
    name = raw.method.name
    if isinstance(name, str) and name not in method_names():
        raise ConfigError(f"{shown_key(str(path))} is a run of method {shown_value(name)}, which is not registered "
                          "here: a method of your own registers when its module is imported, so read the run "
                          "through the Python API after that import (ds.evaluate, ds.analyze, ds.load_run; "
                          "ds.train(..., resume=True) to train on)")
    return _run_config(raw)  # the file read once


def _check_sections(raw: DictConfig) -> None:
    """``ConfigError`` for a section name not in ``SECTIONS`` or a section that is not a mapping."""
    for name, value in OmegaConf.to_container(raw, resolve=False).items():
        if name not in SECTIONS:
            raise ConfigError(f"unknown config section {name!r}; valid sections: {', '.join(SECTIONS)}")
        if value is not None and not isinstance(value, dict):
            _refuse_section(name, value)


def _refuse_section(name: str, value: object) -> None:
    raise ConfigError(f"bad value {shown_value(value)} for section {name}: expected a mapping of its keys")


def parse_overrides(overrides: list[str]) -> DictConfig:
    """``["train.epochs=3", "method.timesteps=4"]`` -> nested DictConfig; each value is read as YAML with the
    bounds and plain-data rule of recipe files (``config.yaml_io``). A null (or another value that is no mapping or
    list) for a key and an override of a key under it, in either order, are refused (``_check_not_dropped``)."""
    merged, given = OmegaConf.create({}), []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"bad override {shown_value(item)}: expected key=value, e.g. train.epochs=3")
        value = parse_yaml(text, f"override {shown_value(item)}")  # cut: a 30,000-character value was echoed whole
        if key in SECTIONS and value is not None and not isinstance(value, dict):  # here, or a later section.key=
            _refuse_section(key, value)  # would silently replace it
        _check_not_dropped((key, value, item), given)
        given.append((key, value, item))
        try:
            OmegaConf.update(merged, key, value, merge=True)
        except (OmegaConfBaseException, ValueError, TypeError, IndexError) as e:  # ValueError: a key into a list
            # not an int; IndexError: omegaconf's key grammar on a bracket key such as "["
            raise ConfigError(f"bad override {shown_value(item)}: {str(e).splitlines()[0]}") from None
    return merged


def _check_not_dropped(override: tuple[str, object, str], given: list[tuple[str, object, str]]) -> None:
    """A one-line ``ConfigError`` when ``override`` (``(key, value, text)``) and one of the overrides ``given`` before
    it are a key and a key under it (``method=null``, ``method.neuron=plif``) where the outer one's value is null or
    another value that is no mapping or list: the later one replaced the earlier without a word
    (``method.neuron=plif method=null`` trained lif with the section's defaults; ``method=null method.neuron=plif``
    kept the recipe's method section)."""
    key, _, item = override
    for other in given:
        if other[0].startswith(key + "."):
            outer = override
        elif key.startswith(other[0] + "."):
            outer = other
        else:
            continue
        if not isinstance(outer[1], dict | list):  # a key under a list names an item of it (hidden.0=64)
            what = "null: each of its keys at its default" if outer[1] is None else "replacing each key under it"
            raise ConfigError(f"overrides {shown_value(other[2])} and {shown_value(item)} conflict: "
                              f"{shown_value(outer[2])} sets {shown_key(outer[0])} as a whole "
                              f"({what}), which would drop the other in silence: give one of the two")


def save_config(config: RunConfig, path: str | Path) -> None:
    """Write the fully resolved config as YAML (atomically); the method section flat (``MethodConfig.as_dict``). Its
    text values are written as OmegaConf reads them back (``escape_interpolations``): a literal ``${...}`` stays
    text instead of becoming an interpolation when the run is read again."""
    sections = {**dataclasses.asdict(config), "method": config.method.as_dict()}
    atomic_write_text(Path(path), OmegaConf.to_yaml(OmegaConf.create(escape_interpolations(sections))))


_INTERPOLATION = re.compile(r"(\\*)\$\{")


def escape_interpolations(value: object) -> object:
    """``value`` (plain data: dicts, lists, text, numbers) with every ``${`` in its text escaped as OmegaConf reads
    it: ``k`` backslashes before it become ``2k + 1`` (``\\${`` is the literal ``${``, a doubled backslash one
    backslash), so that loading gives back the text itself; a resolved config holds no interpolation left."""
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: m.group(1) * 2 + "\\${", value)
    if isinstance(value, dict):
        return {key: escape_interpolations(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [escape_interpolations(item) for item in value]
    return value


def _read_yaml(path: Path) -> DictConfig:
    content = read_yaml_file(path)
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise ConfigError(f"{shown_key(str(path))} must hold a mapping of sections ({', '.join(SECTIONS)})")
    try:
        return OmegaConf.create(content)
    except OmegaConfBaseException as e:  # a malformed interpolation, e.g. "${"
        raise ConfigError(f"cannot load {shown_key(str(path))}: {str(e).splitlines()[0]}") from None


def _section_schema(name: str) -> type:
    field = {f.name: f for f in dataclasses.fields(RunConfig)}[name]
    tp = field.type
    return getattr(schema, tp) if isinstance(tp, str) else tp
