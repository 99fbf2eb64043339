"""deepspike's exported NIR graphs run by each third-party tool give deepspike's output spikes, 1,000 steps.

Every rate-coded net family (:mod:`deepspike.deploy.families`: dense, conv, pool, residual, recurrent, delayed; IF and
LIF; reset to zero and by subtraction) is exported with :func:`to_nir` (the delayed family with ``round_delays``) and
loaded by each tool's own importer. Where a tool
cannot give the same spikes, the case is a strict expected failure naming the tool's own bug (``known_issue``)
and the difference measured by ``benchmarks/nir/conformance.py`` (``benchmarks/results/nir/conformance.json``): when
the tool is fixed the test reports XPASS as a failure.
"""

from __future__ import annotations

import itertools
import json
import logging
import warnings
from pathlib import Path

import pytest

from conformance.conftest import require_tool
from deepspike.deploy.conformance import check_tool
from deepspike.deploy.families import FAMILIES, NEURONS, RESETS, build, sample_input
from deepspike.deploy.peers import TOOLS
from deepspike.deploy.peers.known_issues import known_issue

STEPS = 1000
MEASURED = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "nir" / "conformance.json"


def _measured(tool: str, family: str, neuron: str, reset: str) -> str:
    if not MEASURED.is_file():
        return ""
    for r in json.loads(MEASURED.read_text())["rows"]:
        if (r["tool"], r["family"], r["neuron"], r["reset"]) == (tool, family, neuron, reset):
            if "error" in r:
                return f" [measured: {r['error']}]"
            return (f" [measured: {r['differing']} of {STEPS * 2 * 10} output entries differ from step "
                    f"{r['first_step']}; {r['spikes_theirs']} spikes vs deepspike's {r['spikes_ours']}]")
    return ""


def _cases():
    for tool, (family, neuron, reset) in itertools.product(TOOLS, itertools.product(FAMILIES, NEURONS, RESETS)):
        issue = known_issue(tool, family, neuron, reset)
        marks = [pytest.mark.xfail(strict=True, reason=issue + _measured(tool, family, neuron, reset))] if issue else []
        yield pytest.param(tool, family, neuron, reset, marks=marks, id=f"{tool}-{family}-{neuron}-{reset}")


@pytest.mark.parametrize("tool, family, neuron, reset", list(_cases()))
def test_tool_reproduces_deepspike_spikes(tool, family, neuron, reset):
    require_tool(tool)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    result = check_tool(tool, build(family, neuron, reset), sample_input(family, STEPS, batch=2),
                        round_delays=family == "delayed")
    assert result.get("spikes_ours", 1) > 100  # the comparison is not vacuous
    assert result["equal"], result
