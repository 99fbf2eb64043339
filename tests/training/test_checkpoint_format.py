"""The checkpoint file: never unpickled as code, checksummed, RNG states restored exactly, old files still read."""

import hashlib
import io
import os
import pickle
import random
import re
import struct
import warnings
import zipfile

import numpy as np
import pytest
import torch

from deepspike.cli import main
from deepspike.config import load_config, save_config
from deepspike.core.errors import DataCorruptError
from deepspike.training.checkpoint_format import CHECKSUM_KEY, checkpoint_bytes, payload_digest
from deepspike.training.random_streams import rng_state, set_rng_state
from deepspike.training.runs import load_checkpoint, save_checkpoint
from deepspike.training.trainer import Trainer

TINY = ["model.name=mlp", "model.args.hidden=[32]", "method.timesteps=2", "train.epochs=1",
        "train.max_steps_per_epoch=2", "train.progress=false"]


class _WritesMarker:
    """Unpickling this (with a code-running unpickler) creates the file ``path``: what an attacker would do
    with ``os.system``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class _RunsShellCommand:
    """Unpickling this (with a code-running unpickler) runs ``command`` through ``os.system``."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.startswith("deepspike: error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A real run directory (config.yaml + checkpoint.pt) of a tiny digits mlp."""
    run = tmp_path_factory.mktemp("tiny") / "run"
    Trainer(load_config(None, TINY), run).fit()
    return run


def test_malicious_checkpoint_is_refused_without_running_code(tmp_path, capsys):
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    save_config(load_config(None, TINY), run / "config.yaml")
    torch.save({"model": {}, "epoch": 1, "evil": _WritesMarker(marker)}, run / "checkpoint.pt")

    with pytest.raises(DataCorruptError) as info:
        load_checkpoint(run / "checkpoint.pt")
    message = str(info.value)
    assert "\n" not in message and "never unpickled as code" in message
    assert main(["eval", str(run)]) == 2
    assert "never unpickled as code" in _one_line_error(capsys)
    assert not marker.exists()
    # The file really is an exploit: an unrestricted load runs its code.
    torch.load(run / "checkpoint.pt", weights_only=False)
    assert marker.exists()


def _run_with_checkpoint(tmp_path, write):
    """A run folder (config.yaml) whose checkpoint.pt ``write(path)`` makes."""
    run = tmp_path / "run"
    run.mkdir()
    save_config(load_config(None, TINY), run / "config.yaml")
    write(run / "checkpoint.pt")
    return run


def test_a_checkpoint_calling_os_system_gets_our_message_not_torchs_advice(tmp_path, capsys):
    """Torch 2.13 words its refusal "unsupported GLOBAL posix.system whose module posix is blocked", wrapped in
    advice to load with weights_only=False: that advice is never passed on."""
    marker = tmp_path / "pwned"
    run = _run_with_checkpoint(tmp_path, lambda path: torch.save({"model": _RunsShellCommand(f"touch {marker}")}, path))
    assert main(["eval", str(run)]) == 2
    assert _one_line_error(capsys) == (
        f"deepspike: error: cannot read checkpoint {run / 'checkpoint.pt'}: it needs {os.system.__module__}.system, "
        "which is neither a tensor nor a plain value (checkpoints are never unpickled as code)\n")
    assert not marker.exists()


@pytest.mark.parametrize(("refusal", "problem"), [
    ("Unsupported global: GLOBAL posix.system was not an allowed global by default. Please use "
     "`torch.serialization.add_safe_globals([system])` to allowlist this global if you trust it.",
     "it needs posix.system, which is neither a tensor nor a plain value (checkpoints are never unpickled as code)"),
    ("Unsupported operand 149", "it holds something other than tensors and plain values (Unsupported operand 149)"),
])
def test_the_older_wording_of_a_refusal_is_understood(tmp_path, monkeypatch, refusal, problem):
    """Torch 2.4 to 2.5: the unpickler's own error after "WeightsUnpickler error:", in one exception."""
    advice = ("Weights only load failed. This file can still be loaded, to do so you have two options \n\t(1) "
              "Re-running `torch.load` with `weights_only` set to `False` will likely succeed, but it can result in "
              "arbitrary code execution.\n\t(2) Alternatively, ...\n\tWeightsUnpickler error: ")

    def refuse(*args, **kwargs):
        raise pickle.UnpicklingError(advice + refusal)

    torch.save({}, tmp_path / "c.pt")
    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(DataCorruptError) as info:
        load_checkpoint(tmp_path / "c.pt")
    assert str(info.value) == f"cannot read checkpoint {tmp_path / 'c.pt'}: {problem}"


def test_the_unpicklers_own_error_is_read_whatever_torch_wraps_it_in(tmp_path, monkeypatch):
    """Torch re-raises its unpickler's error with advice ``from None``: the original stays its ``__context__``."""

    def refuse(*args, **kwargs):
        try:
            raise pickle.UnpicklingError("Unsupported operand 149")
        except pickle.UnpicklingError:
            raise pickle.UnpicklingError("Weights only load failed. Load with weights_only=False.") from None

    torch.save({}, tmp_path / "c.pt")
    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(DataCorruptError, match=r"tensors and plain values \(Unsupported operand 149\)$"):
        load_checkpoint(tmp_path / "c.pt")


def test_advice_to_turn_the_safety_off_is_never_passed_on(tmp_path, monkeypatch):
    """Whatever torch words it as: a line advising ``weights_only=False`` is left out of our message."""

    def refuse(*args, **kwargs):
        raise RuntimeError("Retry with `weights_only` set to `False` to skip the checks.\nThe archive is damaged.")

    torch.save({}, tmp_path / "c.pt")
    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(DataCorruptError) as info:
        load_checkpoint(tmp_path / "c.pt")
    assert str(info.value) == f"cannot read checkpoint {tmp_path / 'c.pt'}: The archive is damaged."


def test_a_name_from_the_pickle_is_shown_without_control_characters(tmp_path):
    (tmp_path / "c.pt").write_bytes(b"\x80\x02cposix\nsy\x1b[2Jstem\nq\x00.")  # GLOBAL posix.sy<clear screen>stem
    with pytest.raises(DataCorruptError) as info:
        load_checkpoint(tmp_path / "c.pt")
    assert "it needs 'posix.sy\\x1b[2Jstem', which is neither" in str(info.value) and "\x1b" not in str(info.value)


def test_a_raw_pickle_is_refused_in_one_line_without_torchs_warning(tmp_path, capsys):
    """``pickle.dump`` of a dict, not ``torch.save``: torch warns about its pickle protocol; we only refuse it."""
    run = _run_with_checkpoint(tmp_path, lambda path: path.write_bytes(pickle.dumps({"model": {}}, protocol=4)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["eval", str(run)]) == 2
    assert caught == []
    assert _one_line_error(capsys) == (f"deepspike: error: cannot read checkpoint {run / 'checkpoint.pt'}: it holds "
                                       "something other than tensors and plain values (Unsupported operand 149)\n")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script's
def test_a_torchscript_archive_is_refused_without_the_advice_to_load_it_unsafely(tmp_path):
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(tmp_path / "c.pt"))
    with pytest.raises(DataCorruptError) as info:
        load_checkpoint(tmp_path / "c.pt")
    assert "TorchScript" in str(info.value) and "False" not in str(info.value) and "\n" not in str(info.value)


def test_zeroed_bytes_in_tensor_data_fail_the_checksum(tiny_run, tmp_path, capsys):
    good = (tiny_run / "checkpoint.pt").read_bytes()
    weight = max(load_checkpoint(tiny_run / "checkpoint.pt")["model"].values(), key=torch.numel)
    start = good.find(weight.numpy().tobytes())
    assert start > 0 and weight.numel() * 4 >= 1200
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_bytes((tiny_run / "config.yaml").read_bytes())
    (run / "checkpoint.pt").write_bytes(good[: start + 100] + bytes(1000) + good[start + 1100 :])

    with pytest.raises(DataCorruptError, match="do not match its sha256 checksum") as info:
        load_checkpoint(run / "checkpoint.pt")
    assert "\n" not in str(info.value)
    assert main(["eval", str(run)]) == 2
    assert "checksum" in _one_line_error(capsys)
    assert main(["eval", str(tiny_run)]) == 0  # the unchanged file loads


def test_resumable_state_loads_weights_only(tmp_path):
    """Every state a run saves (model, optimizer with momentum or Adam moments, LambdaLR, RNGs) passes a
    weights-only load, with its checksum, and comes back equal."""
    model = torch.nn.Linear(3, 2)
    for optimizer in (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True),
                      torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.8, 0.99))):
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5**step)
        model(torch.randn(4, 3)).sum().backward()
        optimizer.step()
        scheduler.step()
        payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "scheduler": scheduler.state_dict(), "rng_per_rank": [rng_state()], "best_val": float("nan")}
        save_checkpoint(tmp_path / "c.pt", payload)
        assert CHECKSUM_KEY in torch.load(tmp_path / "c.pt", weights_only=True)
        loaded = load_checkpoint(tmp_path / "c.pt")
        assert payload_digest(loaded) == payload_digest(payload)
        optimizer.load_state_dict(loaded["optimizer"])
        scheduler.load_state_dict(loaded["scheduler"])


def test_every_generator_is_restored_exactly(tmp_path):
    random.seed(1)
    np.random.seed(2)  # noqa: NPY002 (the global state is what is checkpointed)
    torch.manual_seed(3)
    np.random.standard_normal()  # noqa: NPY002 (leaves a cached Gaussian in NumPy's state)
    save_checkpoint(tmp_path / "c.pt", {"rng": rng_state()})
    expected = (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3))  # noqa: NPY002
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    again = (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3))  # noqa: NPY002
    assert again[:2] == expected[:2] and torch.equal(again[2], expected[2])



class _OnAGpu:
    """Stands in for a generator state that ``torch.load(map_location="cuda")`` put on a GPU: usable only
    after ``.cpu()``, which is what torch's RNG setters need (no GPU on CI)."""

    def __init__(self, state: torch.Tensor):
        self.state = state

    def cpu(self) -> torch.Tensor:
        return self.state


def test_cuda_generators_are_saved_and_go_back_from_the_cpu(monkeypatch):
    cuda_states = [torch.arange(4, dtype=torch.uint8), torch.arange(4, 8, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: cuda_states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.extend)
    state = rng_state()
    assert state["cuda"] is cuda_states
    cpu_state = state["torch"].clone()
    torch.rand(2)  # moves the CPU generator on, so that restoring it shows
    state = dict(state, torch=_OnAGpu(cpu_state), cuda=[_OnAGpu(s) for s in cuda_states])
    set_rng_state(state)
    assert torch.equal(torch.get_rng_state(), cpu_state)
    assert len(restored) == 2 and all(torch.equal(a, b) for a, b in zip(restored, cuda_states, strict=True))


def test_a_checkpoint_of_a_machine_with_more_gpus_restores_the_generators_of_the_gpus_here(monkeypatch):
    """A checkpoint holds the generator of every GPU its machine had; torch's setter looks each device up
    (``torch.cuda.default_generators[i]``), so resuming a run of a 2-GPU machine on a 1-GPU one was an IndexError
    traceback (faked here: no GPU on CI). Now the first device's state is restored and the missing one left out."""
    cuda_states = [torch.arange(4, dtype=torch.uint8), torch.arange(4, 8, dtype=torch.uint8)]
    restored = []

    def set_rng_state_all(states):  # torch's, on a machine with one GPU
        for i, s in enumerate(states):
            if i >= 1:
                raise IndexError("tuple index out of range")
            restored.append(s)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", set_rng_state_all)
    state = dict(rng_state(), cuda=[_OnAGpu(s) for s in cuda_states])
    set_rng_state(state)
    assert len(restored) == 1 and torch.equal(restored[0], cuda_states[0])

def test_checkpoint_without_checksum_loads_with_a_warning(tmp_path):
    """A checkpoint of an older deepspike: no checksum, NumPy's RNG keys as an array."""
    torch.manual_seed(5)
    np.random.seed(5)  # noqa: NPY002
    old_rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}  # noqa: NPY002
    expected = np.random.rand(2).tolist()  # noqa: NPY002
    torch.save({"model": {"w": torch.ones(2)}, "epoch": 3, "rng_per_rank": [old_rng]}, tmp_path / "old.pt")
    with pytest.warns(UserWarning, match="has no checksum"):
        loaded = load_checkpoint(tmp_path / "old.pt")
    assert loaded["epoch"] == 3 and torch.equal(loaded["model"]["w"], torch.ones(2))
    set_rng_state(loaded["rng_per_rank"][0])
    assert np.random.rand(2).tolist() == expected  # noqa: NPY002


def test_the_missing_checksum_is_warned_of_by_torchruns_first_process_only(tmp_path, monkeypatch):
    """Every torchrun process reads the checkpoint it resumes: each warned."""
    torch.save({"model": {"w": torch.ones(2)}, "epoch": 3}, tmp_path / "old.pt")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_checkpoint(tmp_path / "old.pt")["epoch"] == 3
    monkeypatch.setenv("RANK", "0")
    with pytest.warns(UserWarning, match="has no checksum"):
        load_checkpoint(tmp_path / "old.pt")


def test_a_non_dict_file_and_an_unencodable_value_are_one_line_errors(tmp_path):
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(DataCorruptError, match="holds a list, not a dict"):
        load_checkpoint(tmp_path / "list.pt")
    with pytest.raises(TypeError, match="only tensors, dicts"):
        checkpoint_bytes({"x": object()})
    with pytest.raises(ValueError, match="reserved"):
        checkpoint_bytes({CHECKSUM_KEY: "0"})


@pytest.mark.parametrize("tenths", range(10))
def test_a_checkpoint_cut_off_anywhere_says_so_in_one_line(tmp_path, capsys, tenths):
    """A checkpoint.pt cut at every tenth of its length (a copy that stopped): torch's words were "EOFError" for an
    empty file and "[Errno 22] Invalid argument" (an OS error on the path, one would think) from a fifth on."""
    save_checkpoint(tmp_path / "whole.pt", {"model": {"w": torch.arange(5000.0)}, "epoch": 1})
    data = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) * tenths // 10])
    problem = "it is empty (0 bytes)" if tenths == 0 else "it is cut off (a zip archive without its end"
    with pytest.raises(DataCorruptError, match=re.escape(f"cannot read checkpoint {tmp_path / 'cut.pt'}: {problem}")):
        load_checkpoint(tmp_path / "cut.pt")


def _pickle_start(data: bytes) -> int:
    """Where ``data.pkl``'s bytes (the payload's structure) begin in the checkpoint ``data``."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
        return data.index(archive.read(name)[:64])


DAMAGED_AT = {  # where one byte of a checkpoint is flipped -> the start of what is said after "it is damaged: "
    "the_pickles_first_byte": (_pickle_start, r"archive/data\.pkl fails its CRC-32 check"),  # was "... (Unsupported
    # operand 127)": as if the file held something other than tensors
    "the_zip64_locators_disk_count": (lambda data: data.rindex(b"PK\x06\x07") + 16,
                                      r"its zip archive does not read back \(zipfiles that span multiple disks are not "
                                      r"supported;"),  # was zipfile.BadZipFile's traceback, exit 1
    "the_central_directorys_offset": (lambda data: data.rindex(b"PK\x06\x06") + 55, r"(its zip archive does not "
                                      r"read back|torch's zip reader failed)"),  # was "'PytorchStreamReader failed ...
    # This is an internal miniz error. If you are seeing this error, there is a high likelihood ..." cut by repr
}


@pytest.mark.parametrize("where", DAMAGED_AT)
def test_a_checkpoint_with_a_byte_flipped_in_its_archive_says_it_is_damaged_in_one_line(tmp_path, capsys, where):
    position, says = DAMAGED_AT[where]
    save_checkpoint(tmp_path / "whole.pt", {"model": {"w": torch.arange(500.0)}, "epoch": 1})
    data = bytearray((tmp_path / "whole.pt").read_bytes())
    data[position(bytes(data))] ^= 0xFF
    (tmp_path / "c.pt").write_bytes(data)
    line = re.escape(f"cannot read checkpoint {tmp_path / 'c.pt'}: it is damaged: ")
    with pytest.raises(DataCorruptError, match=f"^{line}{says}.*a disk, copy or transfer fault\\?\\)$") as caught:
        load_checkpoint(tmp_path / "c.pt")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("content", [b"hello", b"Xxv\xbbX@\x9f\xbf__\x91\xc9", b"\x80\x02}q\x00."])
def test_a_file_that_is_no_torch_archive_is_named_so(tmp_path, content):
    """Torch's words were "101" (the KeyError of a character code of "hello"), "'utf-8' codec can't decode byte 0x9f
    in position 1" and, for a pickle, "Invalid magic number; corrupt file?"."""
    (tmp_path / "c.pt").write_bytes(content)
    line = f"cannot read checkpoint {tmp_path / 'c.pt'}: it is not a torch checkpoint (torch.save writes a zip archive)"
    with pytest.raises(DataCorruptError, match=f"^{re.escape(line)}$"):
        load_checkpoint(tmp_path / "c.pt")


def test_digest_is_canonical_and_sees_every_change():
    base = {"w": torch.arange(6.0).reshape(2, 3), "n": 1, "s": "a", "t": (1, 2), 0: [None, True]}
    digest = payload_digest(base)
    assert payload_digest(dict(reversed(list(base.items())))) == digest  # insertion order does not matter
    buffer = io.BytesIO()
    torch.save(base, buffer)
    assert payload_digest(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)) == digest
    changed = [
        {**base, "w": torch.arange(6.0).reshape(3, 2)},  # shape
        {**base, "w": torch.arange(6.0, dtype=torch.float64).reshape(2, 3)},  # dtype
        {**base, "w": torch.arange(6.0).reshape(2, 3).index_fill(1, torch.tensor([2]), 0.5)},  # one value
        {**base, "n": 1.0},  # int vs float
        {**base, "n": True},  # int vs bool
        {**base, "t": [1, 2]},  # tuple vs list
        {**base, "s": "b"},
        {**base, 0: [None, False]},
        {**{k: v for k, v in base.items() if k != 0}, "0": [None, True]},  # key type
    ]
    assert len({payload_digest(c) for c in changed} | {digest}) == len(changed) + 1


def test_digest_follows_the_documented_encoding():
    """The frames ``tag:nbytes:bytes`` of the module docstring, written out by hand."""
    payload = {"w": torch.tensor([1.0, -2.0]), "n": (3, None)}
    frames = [("dict", b"2"), ("str", b"n"), ("tuple", b"2"), ("int", b"3"), ("NoneType", b"None"),
              ("str", b"w"), ("tensor:torch.float32:(2,)", struct.pack("<2f", 1.0, -2.0))]
    expected = hashlib.sha256(b"".join(f"{tag}:{len(data)}:".encode() + data for tag, data in frames)).hexdigest()
    assert payload_digest(payload) == expected
