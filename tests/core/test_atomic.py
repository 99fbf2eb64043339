"""Output paths checked before anything is written (``core.atomic``); atomic writes are tested where files are
written (tests/training/test_fault_injection.py, tests/training/test_runs.py)."""

import os
import stat

import pytest

from deepspike.core.atomic import atomic_write_text, check_output_dir, check_output_file
from deepspike.core.errors import ConfigError


@pytest.mark.parametrize("name", ["", "  "])
def test_an_empty_output_name_is_refused_not_read_as_the_current_folder(name):
    with pytest.raises(ConfigError, match="^--out is empty; give the name of a folder$"):
        check_output_dir(name, "--out")
    with pytest.raises(ConfigError, match="^--nir is empty; give the name of a file$"):
        check_output_file(name, "--nir")


def test_the_folder_is_synced_after_the_rename(tmp_path, monkeypatch):
    """After a power cut POSIX keeps a rename only once its folder is synced: the file, then the folder."""
    synced = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    def replace(src, dst):
        synced.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write_text(tmp_path / "a.txt", "x")
    assert synced == ["file", "rename", "folder"] and (tmp_path / "a.txt").read_text() == "x"
