"""Where data sets are looked for (``data.paths``): the roots, ``~`` in them, and what counts as a data file."""

from __future__ import annotations

import os

import pytest

from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.data import load_dataset, paths

NO_USER = "~deepspike-no-such-user-7f3a"


@pytest.mark.parametrize("name", ["mnist", "cifar10", "nmnist", "shd", "imagefolder"])
def test_a_home_folder_that_does_not_exist_is_one_config_error_line(name, monkeypatch):
    """Before: pathlib's expanduser raised RuntimeError('Could not determine home directory.'), a traceback from
    ``deepspike train ... data.data_dir=~nosuchuser/x``."""
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    with pytest.raises(ConfigError, match=f"data.data_dir '{NO_USER}/data': cannot expand its '~'") as e:
        load_dataset(name, data_dir=f"{NO_USER}/data")
    assert "\n" not in str(e.value)


def test_a_data_root_entry_that_cannot_be_expanded_is_one_config_error_line(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ENV_VAR, os.pathsep.join([str(tmp_path), f"{NO_USER}/data"]))
    with pytest.raises(ConfigError, match=rf"\$DEEPSPIKE_DATA entry '{NO_USER}/data': cannot expand its '~'"):
        load_dataset("mnist")


def test_home_folders_still_expand(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.expand("~/data") == tmp_path / "data"
    assert paths.search_roots("~/mine")[0] == tmp_path / "mine"


def test_only_regular_files_and_links_to_them_are_data_files(tmp_path):
    data = tmp_path / "a.bin"
    data.write_bytes(b"x")
    (tmp_path / "link.bin").symlink_to(data)
    paths.check_regular_file(data)
    paths.check_regular_file(tmp_path / "link.bin")
    (tmp_path / "broken.bin").symlink_to(tmp_path / "gone")
    os.mkfifo(tmp_path / "pipe.bin")
    for name, kind in (("broken.bin", "missing"), ("pipe.bin", "a pipe or device"), ("", "a folder")):
        with pytest.raises(DataCorruptError, match=f"is {kind}.*not a data file"):
            paths.check_regular_file(tmp_path / name)
