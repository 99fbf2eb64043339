"""Bounded YAML reading for recipes and ``key=value`` overrides: plain data only, one-line errors.

A recipe is read with a ``yaml.SafeLoader`` (no tag builds a Python object: ``!!python/object/apply:...``
is an error) that refuses, before anything is built:

- a file over ``MAX_YAML_BYTES`` or not UTF-8 text;
- nesting deeper than ``MAX_YAML_DEPTH`` (checked while composing, so ``[[[[...]]]]`` is no RecursionError);
- a recursive alias (``a: &a [*a]``), and more than ``MAX_YAML_NODES`` nodes once every alias is expanded
  (the "billion laughs" bomb: ten levels of ``&b [*a, *a, ...]`` is 10**10 nodes in 400 bytes);
- a key given twice in one mapping;
- any value but mappings with string keys, lists, strings, numbers, booleans and null (``!!binary``,
  ``!!set``, ``!!timestamp``, ``!!omap`` build other types).

Numbers are read as OmegaConf reads overrides (``1e-3`` is a float, as in YAML 1.2) and dates stay
strings. The limits are far above any real recipe (tens to a few hundred nodes) and keep the worst case
near a second: OmegaConf builds about 15k nodes a second.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from deepspike.core.errors import ConfigError, DataNotFoundError, os_reason
from deepspike.core.options import shown_key

MAX_YAML_BYTES = 1 << 20
MAX_YAML_NODES = 20_000
MAX_YAML_DEPTH = 32
_PLAIN = (str, int, float, bool, type(None))
_FLOAT = re.compile(
    r"""^(?:[-+]?[0-9]+(?:_[0-9]+)*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+)
    |\.[0-9]+(?:_[0-9]+)*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9]+(?:_[0-9]+)*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


def read_yaml_file(path: Path) -> Any:
    """The YAML document in regular file ``path`` as plain Python data (None when empty); one-line errors (a folder,
    a device or a pipe is refused, a missing file is a ``DataNotFoundError``)."""
    name = shown_key(str(path))
    if path.is_dir():  # once "config file not found: runs", of a folder that is there
        raise ConfigError(f"{name} is a folder, not a recipe file (YAML)")
    if path.exists() and not path.is_file():  # /dev/null, a pipe: once "config file not found"
        raise ConfigError(f"{name} is not a regular file (a device, pipe or socket); give a recipe file (YAML)")
    if not path.is_file():
        raise DataNotFoundError(f"config file not found: {name}")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_YAML_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read {name}: {os_reason(e)}") from None
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(f"{name} is over {MAX_YAML_BYTES >> 20} MiB: not a recipe")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{name} is not a UTF-8 text file (byte {data[e.start]:#04x} at offset {e.start})") from None
    return parse_yaml(text, name)


def parse_yaml(text: str, source: str) -> Any:
    """The YAML document ``text`` as plain Python data; ``source`` names it in the one-line errors."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{source} is over {MAX_YAML_BYTES >> 20} MiB: not a recipe")
    try:
        value = yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        problem = _one_line(e)
    except ValueError as e:  # Python refuses to convert an int of over 4300 digits
        problem = str(e).splitlines()[0]
    else:
        _require_plain(value, source)
        return value
    raise ConfigError(f"cannot parse {source}: {problem}")


class _BoundedLoader(yaml.SafeLoader):
    """A ``SafeLoader`` that counts and bounds nodes while composing and checks the alias graph before
    building anything (see the module docstring)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._composed = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        self._composed += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _limit_error(f"nested deeper than {MAX_YAML_DEPTH} levels", self.peek_event())
            if self._composed > MAX_YAML_NODES:
                raise _limit_error(f"more than {MAX_YAML_NODES} nodes", self.peek_event())
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: yaml.Node) -> Any:
        _check_node_graph(node)
        return super().construct_document(node)


_BoundedLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
_BoundedLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BoundedLoader.yaml_implicit_resolvers.items()
}


def _check_node_graph(root: yaml.Node) -> None:
    """Refuse a cycle of aliases, a duplicate key, or a graph whose expansion (every alias replaced by
    the node it names) has more than ``MAX_YAML_NODES`` nodes or is deeper than ``MAX_YAML_DEPTH``.

    Iterative depth-first search; ``size``/``depth`` of a finished node are memoised, so a shared node
    is visited once however often it is referred to (the expansion is counted, never built)."""
    size: dict[yaml.Node, int] = {}
    depth: dict[yaml.Node, int] = {}
    open_nodes: set[yaml.Node] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        children = _children(node)
        if finished:
            open_nodes.discard(node)
            size[node] = min(MAX_YAML_NODES + 1, 1 + sum(size[c] for c in children))
            depth[node] = 1 + max((depth[c] for c in children), default=0)
            if size[node] > MAX_YAML_NODES:
                raise _limit_error(f"aliases expand it to more than {MAX_YAML_NODES} nodes", node)
            if depth[node] > MAX_YAML_DEPTH:
                raise _limit_error(f"aliases nest it deeper than {MAX_YAML_DEPTH} levels", node)
        elif node in open_nodes:
            raise _limit_error("an alias refers to a node that contains it (a recursive alias)", node)
        elif node not in size:
            _check_unique_keys(node)
            open_nodes.add(node)
            stack.append((node, True))
            stack.extend((c, False) for c in children if c not in size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_unique_keys(node: yaml.Node) -> None:
    if not isinstance(node, yaml.MappingNode):
        return
    seen = set()
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
            if key.value in seen:
                raise _limit_error(f"duplicate key {key.value!r}", key)
            seen.add(key.value)


def _limit_error(problem: str, at: yaml.Node | yaml.Event) -> yaml.YAMLError:
    return yaml.composer.ComposerError(None, None, problem, at.start_mark)


def _one_line(e: yaml.YAMLError) -> str:
    """``problem (line L, column C)`` from PyYAML's multi-line messages."""
    if isinstance(e, yaml.MarkedYAMLError):
        text = ": ".join(part for part in (e.context, e.problem) if part)
        mark = e.problem_mark or e.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return " ".join(text.split()) + where
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _require_plain(value: Any, source: str) -> None:
    """``ConfigError`` unless ``value`` is made only of dicts with str keys, lists and plain scalars."""
    stack = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise ConfigError(f"{source}: key {key!r}{_at(where)} is not a string")
                stack.append((child, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
        elif not isinstance(item, _PLAIN):
            raise ConfigError(
                f"{source}: a {type(item).__name__} value{_at(where)}; recipes and overrides hold only mappings, "
                "lists, strings, numbers, booleans and null"
            )


def _at(where: str) -> str:
    return f" at {shown_key(where)}" if where else ""
