"""Output paths checked before anything is written (``core.atomic``); atomic writes are tested where files are
written (tests/training/test_fault_injection.py, tests/training/test_runs.py)."""

import errno
import os
import re
import stat

import pytest

from deepspike.core.atomic import (
    TEMP_SUFFIX,
    atomic_write_csv,
    atomic_write_text,
    check_output_dir,
    check_output_file,
    remove_stale_temps,
    temp_prefix,
)
from deepspike.core.errors import ConfigError, WriteError
from deepspike.core.plotting import pyplot, save_figure
from sync_events import sync_events


@pytest.mark.parametrize("name", ["", "  "])
def test_an_empty_output_name_is_refused_not_read_as_the_current_folder(name):
    with pytest.raises(ConfigError, match="^--out is empty; give the name of a folder$"):
        check_output_dir(name, "--out")
    with pytest.raises(ConfigError, match="^--nir is empty; give the name of a file$"):
        check_output_file(name, "--nir")


def test_an_output_name_with_a_nul_byte_is_one_line(tmp_path):
    """A NUL byte in the name was 'ValueError: embedded null byte' from the first stat (ds.train(None, "a\\0b"))."""
    with pytest.raises(ConfigError, match=r"^--out 'a\\x00b' holds a NUL byte, which no folder name may"):
        check_output_dir("a\0b", "--out")
    with pytest.raises(ConfigError, match="^--nir .* holds a NUL byte, which no file name may"):
        check_output_file(tmp_path / "a\0b", "--nir")


def test_the_folder_is_synced_after_the_rename(tmp_path, monkeypatch):
    """After a power cut POSIX keeps a rename only once its folder is synced: the file, then the folder."""
    synced = sync_events(monkeypatch)
    atomic_write_text(tmp_path / "a.txt", "x")
    assert synced == ["file", "rename", "folder"] and (tmp_path / "a.txt").read_text() == "x"


def test_csv_by_hand(tmp_path):
    atomic_write_csv(tmp_path / "m.csv", [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": float("nan"), "extra": 3}])
    assert (tmp_path / "m.csv").read_text() == "epoch,loss,extra\n1,0.5,\n2,,3\n"
    atomic_write_csv(tmp_path / "t.csv", [{"b": 1}], columns=("a", "b"))  # fixed columns first, in their order
    assert (tmp_path / "t.csv").read_text() == "a,b\n,1\n"


def test_a_figure_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "a.png", dpi=50)
    good = (tmp_path / "a.png").read_bytes()
    assert good.startswith(b"\x89PNG") and not plt.get_fignums()  # written and closed

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    fig, _ = plt.subplots()
    with pytest.raises(WriteError, match="No space left on device"):
        save_figure(fig, tmp_path / "a.png", dpi=50)
    assert (tmp_path / "a.png").read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["a.png"]


@pytest.mark.parametrize(("error", "refused"), [(errno.EACCES, False), (errno.EINVAL, False), (errno.EIO, True)])
def test_a_folder_that_cannot_be_synced(tmp_path, monkeypatch, error, refused):
    """The file is written either way; a folder that cannot be synced for a harmless reason (no read permission,
    a file system without folder sync) is passed, a real failure is one line that says the file was written."""
    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(error, os.strerror(error))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    if refused:
        with pytest.raises(WriteError, match=f"^wrote into {tmp_path} but could not sync the folder: Input/output"):
            atomic_write_text(tmp_path / "a.txt", "new")
    else:
        atomic_write_text(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "new"


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    """A file made private stays private when rewritten (the temporary file had taken 0o666 less the umask, so a
    0o600 metrics file became readable to others); a new file gets 0o666 less the umask."""
    private = tmp_path / "private.json"
    atomic_write_text(private, "{}")
    os.chmod(private, 0o600)
    atomic_write_text(private, '{"a": 1}')
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and private.read_text() == '{"a": 1}'
    fresh = tmp_path / "fresh.json"
    atomic_write_text(fresh, "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask


def test_an_output_folder_that_is_a_dangling_link_is_named_so(tmp_path, capsys):
    """``train --out LINK`` (a link to a folder that is gone) said "File exists: LINK" from its mkdir."""
    from deepspike.cli import main

    link = tmp_path / "runs"
    link.symlink_to(tmp_path / "gone")
    expected = f"--out {link} is a symbolic link to {tmp_path / 'gone'}, which does not exist; create that folder"
    with pytest.raises(ConfigError, match=f"^{expected}"):
        check_output_dir(link, "--out")
    assert main(["train", "train.epochs=1", "--out", str(link)]) == 2
    assert capsys.readouterr().err == f"deepspike: error: {expected} or pick another\n"
    assert [p.name for p in tmp_path.iterdir()] == ["runs"] and link.is_symlink()


def test_an_output_path_under_a_dangling_link_is_named_so_before_any_work(tmp_path, capsys):
    """``train --out LINK/run`` (LINK a link to a folder that is gone) loaded the data set and then stopped with
    "File exists: LINK" from the run folder's mkdir; an output file under it (a report) failed the same way after
    the work, in its atomic write."""
    from deepspike.cli import main

    link = tmp_path / "runs"
    link.symlink_to(tmp_path / "gone")
    expected = f"--out {link / 'r1'}: {link} is a symbolic link to {tmp_path / 'gone'}, which does not exist; create"
    for check, out in ((check_output_dir, link / "r1"), (check_output_dir, link / "r1" / "deeper"),
                       (check_output_file, link / "r1" / "report.md")):
        with pytest.raises(ConfigError, match=f"^--out {re.escape(str(out))}: {re.escape(str(link))} is a symbolic"):
            check(out, "--out")
    assert main(["train", "train.epochs=1", "--out", str(link / "r1")]) == 2
    assert capsys.readouterr().err == f"deepspike: error: {expected} that folder or pick another\n"
    assert [p.name for p in tmp_path.iterdir()] == ["runs"] and link.is_symlink()


@pytest.mark.parametrize("name", ["a" * 250 + ".json", "\u00e9" * 126 + ".js", "b" * 241 + ".csv"])
def test_a_long_name_the_file_system_allows_is_written(tmp_path, name):
    """A name of up to 255 bytes is allowed, but the temporary file's name adds 14 characters: a name of more than
    241 bytes (here 255, in ASCII and in two-byte UTF-8) was a WriteError "File name too long". The temporary name
    holds the first 241 bytes now; a temporary file a killed write left is still found and removed."""
    path = tmp_path / name
    path.write_text("old")  # the name itself is allowed
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and sorted(tmp_path.iterdir()) == [path]
    stale = tmp_path / f"{temp_prefix(name)}k1ll3d00{TEMP_SUFFIX}"
    stale.write_text("torn")
    assert len(os.fsencode(stale.name)) <= 255
    remove_stale_temps(tmp_path, (name,))
    assert sorted(tmp_path.iterdir()) == [path]
