"""A chip tool that is installed but does not import (a dependency of its own missing, e.g. sinabs without pbr) is
a one-line ``ConfigError`` naming the tool and the import error, not a traceback."""

import importlib.util

import pytest

from deepspike.core.errors import ConfigError
from deepspike.deploy import speck, xylo


@pytest.mark.parametrize("module, load, inner, tool, target", [
    (speck, speck.sinabs_dynapcnn, "_dynapcnn_modules", "sinabs", "speck"),
    (xylo, xylo.rockpool_xylo_mapper, "_xylo_mapper", "rockpool", "xylo"),
])
def test_an_installed_tool_that_does_not_import_is_one_line(monkeypatch, module, load, inner, tool, target):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())  # "installed"

    def broken():
        raise ModuleNotFoundError("No module named 'pbr'")

    monkeypatch.setattr(module, inner, broken)
    with pytest.raises(ConfigError, match=rf"^--target {target}: {tool} is installed but does not import \(No module "
                                          rf"named 'pbr'\); reinstall it with its dependencies$"):
        load()
