import pytest

from deepspike.core import messages
from deepspike.core.messages import first_process, note, warn


@pytest.mark.parametrize("env, first", [
    ({}, True),  # no launcher: one process
    ({"WORLD_SIZE": "2", "RANK": "0"}, True),  # torchrun's first process
    ({"WORLD_SIZE": "2", "RANK": " 00 "}, True),
    ({"WORLD_SIZE": "2", "RANK": "1"}, False),  # its second
    ({"WORLD_SIZE": "16", "RANK": "8", "LOCAL_RANK": "0"}, False),  # the first process of torchrun's second node
    ({"RANK": "1"}, True),  # a process alone (training reads RANK only with WORLD_SIZE > 1) is its own rank 0
    ({"WORLD_SIZE": "1", "RANK": "3"}, True),
    ({"WORLD_SIZE": "2", "RANK": "one"}, True),  # refused when training joins the group: its note is not lost
])
def test_the_first_process_prints_and_the_others_keep_quiet(env, first, monkeypatch, capsys):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert first_process() is first
    warn("data: 1 class is missing")
    note("method.decay=0.5 has no effect")
    assert capsys.readouterr() == ("", "deepspike: warning: data: 1 class is missing\n"
                                       "deepspike: note: method.decay=0.5 has no effect\n" if first else "")


def test_a_joined_process_group_names_the_first_process(monkeypatch):
    """Processes started otherwise than by torchrun (torch.multiprocessing.spawn) set no RANK: the group's rank
    counts once there is one."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(messages.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(messages.dist, "get_rank", lambda: 1)
    assert not first_process()
    monkeypatch.setattr(messages.dist, "get_rank", lambda: 0)
    monkeypatch.setenv("RANK", "1")
    assert first_process()
