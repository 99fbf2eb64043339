"""``deepspike zoo``: names are checked before any entry is evaluated."""

from deepspike import api
from deepspike.cli import main


def test_check_refuses_an_unknown_name_before_evaluating_any(monkeypatch, capsys):
    """``zoo --check stbp_fmnist nope`` evaluated stbp_fmnist on the full test split (25 s here) before refusing
    'nope', and printed nothing of it; now the unknown name is refused first, nothing evaluated."""
    checked = []
    monkeypatch.setattr(api, "check_pretrained", lambda name: checked.append(name) or {"matches": True})
    assert main(["zoo", "--check", "stbp_fmnist", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepspike: error: no pretrained model 'nope'") and err.count("\n") == 1
    assert checked == []
    assert main(["zoo", "--check", "stbp_fmnist"]) == 0 and checked == ["stbp_fmnist"]
