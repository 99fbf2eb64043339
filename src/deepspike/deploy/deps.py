"""Lazy imports of the optional NIR packages, with a one-line install hint when they are missing, and the check that
a graph handed to a function of this package is a ``nir.NIRGraph``."""

from __future__ import annotations

from deepspike.core.errors import ConfigError
from deepspike.core.optional import require_package
from deepspike.core.options import shown_value

READ_HINT = "a NIR file: read it with deepspike.deploy.read_nir"


def require_nir():
    """``import nir`` or raise :class:`ConfigError` ``install deepspike[nir]``."""
    return require_package("nir", "NIR export/import needs the nir package: pip install 'deepspike[nir]'")


def check_graph(nir, graph, where: str, hint: str = READ_HINT) -> None:
    """A one-line ``ConfigError`` unless ``graph`` is a ``nir.NIRGraph`` (a file's path ended in "'str' object has
    no attribute 'nodes'", a single node in a KeyError): ``"{where} takes a nir.NIRGraph ({hint}), got ..."``."""
    if not isinstance(graph, nir.NIRGraph):
        raise ConfigError(f"{where} takes a nir.NIRGraph ({hint}), got {shown_value(graph)}")
