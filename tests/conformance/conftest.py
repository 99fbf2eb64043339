"""The NIR conformance tests need the third-party tools of ``make test-nir`` (its own venv, .nir-venv).

Outside that venv (``make test``) a test whose tool is missing is skipped; under ``make test-nir``
(``DEEPSPIKE_NIR_CONFORMANCE=1``) a missing tool is a failure, so every test runs there.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from deepspike.deploy.peers import TOOLS

IN_NIR_VENV = os.environ.get("DEEPSPIKE_NIR_CONFORMANCE") == "1"


def require_tool(name: str) -> None:
    """Skip (outside ``make test-nir``) or fail (inside it) when tool ``name`` or nir is not importable."""
    missing = [m for m in ("nir", TOOLS[name].MODULE) if importlib.util.find_spec(m) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (make test-nir installs the NIR tools)"
        if IN_NIR_VENV:
            pytest.fail(message)
        pytest.skip(message)
