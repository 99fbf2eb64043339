"""The NIR conformance tests need the third-party tools of ``make test-nir`` (its own venv, .nir-venv).

Outside that venv (``make test``) a test whose tool is missing is skipped; under ``make test-nir``
(``DEEPSPIKE_NIR_CONFORMANCE=1``) a missing tool is a failure, so every test runs there.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from deepspike.deploy.peers import TOOLS
from deploy.conftest import tiny_run  # noqa: F401 (a fixture shared with tests/deploy)

IN_NIR_VENV = os.environ.get("DEEPSPIKE_NIR_CONFORMANCE") == "1"


def require_tool(name: str) -> None:
    """Skip (outside ``make test-nir``) or fail (inside it) when tool ``name`` or nir is not importable."""
    for module in ("nir", TOOLS[name].MODULE):
        require(module, "make test-nir installs the NIR tools")


def require(module: str, why: str) -> None:
    """Like :func:`require_tool` for a package by module name."""
    if importlib.util.find_spec(module) is None:
        if IN_NIR_VENV:
            pytest.fail(f"{module} not installed ({why})")
        pytest.skip(f"{module} not installed ({why})")
