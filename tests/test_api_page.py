"""docs/api.md renders every name of the public API, and only those."""

import re
from pathlib import Path

import deepspike.api

PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_the_api_page_lists_every_public_name():
    text = PAGE.read_text()
    block = re.search(r"::: deepspike\.api\n.*?members: \[(.*?)\]", text, flags=re.S)
    members = [name.strip() for name in block.group(1).split(",")]
    assert len(members) == len(set(members))
    assert set(members) == set(deepspike.api.__all__)
