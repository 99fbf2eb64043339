"""``deepspike compare``: its --help says what its options do."""

import argparse

from deepspike.commands import compare


def test_limit_help_says_zero_means_all_samples(monkeypatch):
    """--limit 0 analyses every test sample (``args.limit or None``); the help once did not say so."""
    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    (limit,) = [a for a in parser._actions if "--limit" in a.option_strings]
    assert "0 = all" in limit.help and "1000" in limit.help
    seen = {}
    monkeypatch.setattr(compare.api, "compare", lambda runs, preset, limit, out: seen.setdefault("limit", limit) or "")
    assert compare.run(parser.parse_args(["run", "--limit", "0"])) == 0
    assert seen == {"limit": None}  # None: all samples
