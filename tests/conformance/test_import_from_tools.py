"""Graphs exported by each third-party tool load with deepspike's ``from_nir`` and give the tool's own spikes.

Each tool builds the dense net Linear(64, 32) -> LIF -> Linear(32, 10) -> LIF with its own layers
(:mod:`deepspike.deploy.peers.producers`), exports it, and runs it; deepspike imports the graph at the tool's
own dt and runs it on the same 1,000-step input. Strict expected failures name the cause (``IMPORT_ISSUES``).
"""

from __future__ import annotations

import logging
import warnings

import pytest

from conformance.conftest import require_tool
from deepspike.deploy.conformance import check_import
from deepspike.deploy.families import sample_input
from deepspike.deploy.peers.known_issues import IMPORT_ISSUES
from deepspike.deploy.peers.producers import PRODUCERS


def _cases():
    for tool in PRODUCERS:
        issue = IMPORT_ISSUES.get(tool)
        yield pytest.param(tool, marks=[pytest.mark.xfail(strict=True, reason=issue)] if issue else [], id=tool)


@pytest.mark.parametrize("tool", list(_cases()))
def test_deepspike_runs_the_tools_graph_like_the_tool(tool):
    require_tool(tool)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    result = check_import(tool, sample_input("dense", 1000, batch=2))
    assert result.get("spikes_theirs", 101) > 100  # the tool's own net fires: the comparison is not vacuous
    assert result["equal"], result
