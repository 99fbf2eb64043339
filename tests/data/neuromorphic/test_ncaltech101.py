"""N-Caltech101: the release's layout (``Caltech101/<category>/image_XXXX.bin``, N-MNIST's 5-byte events) written
here and read back through tonic's reader; categories sorted, a fixed stratified 9:1 split, frames counted by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError, DataNotFoundError
from deepspike.data import load_dataset
from deepspike.data.neuromorphic import write_nmnist_bin
from deepspike.data.neuromorphic.formats import make_events

pytest.importorskip("tonic")

CATEGORIES = ("accordion", "BACKGROUND_Google", "airplanes")


def _write_release(root, rng):
    """10 recordings per category; the first accordion one holds three events placed by hand."""
    for c in CATEGORIES:
        (root / "Caltech101" / c).mkdir(parents=True)
        for i in range(10):
            n = 60
            events = make_events(rng.integers(0, 240, n), rng.integers(0, 180, n), np.sort(rng.integers(0, 90_000, n)),
                                 rng.integers(0, 2, n))
            if (c, i) == ("accordion", 0):
                events = make_events([8, 9, 200], [4, 5, 170], [0, 10, 100], [1, 0, 1])
            write_nmnist_bin(root / "Caltech101" / c / f"image_{i + 1:04d}.bin", events)


def test_the_release_layout_loads_with_sorted_categories_and_a_fixed_split(tmp_path):
    _write_release(tmp_path, np.random.default_rng(0))
    s = load_dataset("ncaltech101", data_dir=tmp_path, timesteps=2, cache=False)
    assert list(s.class_names) == sorted(CATEGORIES) and s.num_classes == 3
    assert s.input_shape == (2, 45, 60) and s.train.x.shape[1:] == (2, 2, 45, 60)
    assert len(s.train) == 27 and len(s.test) == 3
    assert torch.bincount(s.test.y, minlength=3).tolist() == [1, 1, 1]
    again = load_dataset("ncaltech101", data_dir=tmp_path, timesteps=2, cache=False, seed=7)
    assert torch.equal(s.test.x, again.test.x)  # the run's seed does not move the fixed split


def test_frames_of_one_recording_by_hand(tmp_path):
    """Events (x, y, p, t) = (8, 4, 1, 0), (9, 5, 0, 10), (200, 170, 1, 100) in T = 2 equal bins (k = floor(2 t /
    101)) at stride 4: ON at step 0, pixel (1, 2); OFF at step 0, pixel (1, 2); ON at step 1, pixel (42, 50)."""
    _write_release(tmp_path, np.random.default_rng(1))
    s = load_dataset("ncaltech101", data_dir=tmp_path, timesteps=2, cache=False, val_fraction=0.0)
    label = s.class_names.index("accordion")
    frames = torch.cat([s.train.x, s.test.x])[torch.cat([s.train.y, s.test.y]) == label]
    expected = torch.zeros(2, 2, 45, 60, dtype=frames.dtype)
    expected[0, 1, 1, 2] = expected[0, 0, 1, 2] = expected[1, 1, 42, 50] = 1
    assert any(torch.equal(f, expected) for f in frames)


def test_a_missing_release_is_one_line(tmp_path):
    with pytest.raises(DataNotFoundError, match="^ncaltech101: data not found: need at least two category folders"):
        load_dataset("ncaltech101", data_dir=tmp_path / "nothing")
    with pytest.raises(DataNotFoundError, match="^ncaltech101 cannot be downloaded by deepspike"):
        load_dataset("ncaltech101", data_dir=tmp_path, download=True)


@pytest.mark.parametrize("options", [{"split_seed": "x"}, {"split_seed": 1.5}, {"split_seed": -1},
                                     {"cache": "no"}, {"cache": 1}])
def test_a_bad_split_seed_or_cache_is_one_config_error_line(tmp_path, monkeypatch, options):
    """Before: split_seed "x" crashed in mix_seed (ValueError) after every recording was binned, 1.5 was taken as 1,
    and cache "no" was read as true (the frames were written to the cache)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEEPSPIKE_DATA", raising=False)
    _write_release(tmp_path, np.random.default_rng(0))
    with pytest.raises(ConfigError, match=f"^data.args.{next(iter(options))} must be") as err:
        load_dataset("ncaltech101", data_dir=tmp_path, timesteps=2, **options)
    assert "\n" not in str(err.value) and not (tmp_path / "event_frames").exists()


def test_a_category_folder_without_recordings_warns_and_a_broken_link_is_refused(tmp_path, capsys):
    """An empty category folder (a release copied in part) was left out without a word, the model built for one class
    fewer; a broken-link category was skipped alike. Now a one-line warning naming it, and a one-line error."""
    from deepspike.core.errors import DataCorruptError
    from deepspike.data.neuromorphic.ncaltech101 import list_recordings

    root = tmp_path / "Caltech101"
    for c in ("ant", "bass", "crab"):
        (root / c).mkdir(parents=True)
    (root / "ant" / "image_0001.bin").write_bytes(bytes(5))  # one event
    (root / "crab" / "image_0001.bin").write_bytes(b"")  # a cut download: binned as no events, in silence before
    files, categories = list_recordings(tmp_path)
    assert categories == ["ant", "crab"] and len(files) == 2
    assert capsys.readouterr().err == (f"deepspike: warning: ncaltech101: {root}: 1 folder(s) hold no .bin recordings "
                                       "and are left out (2 categories remain): bass\n"
                                       f"deepspike: warning: ncaltech101: {root}: 1 of 2 recordings are empty files (0 "
                                       "bytes: no events; a cut download?), binned as all-zero frames: "
                                       f"{root / 'crab' / 'image_0001.bin'}\n")
    (root / "dolphin").symlink_to(tmp_path / "gone")
    with pytest.raises(DataCorruptError, match=r"^ncaltech101: \S+ holds broken links \(their targets do not exist\): "
                                               r"dolphin$"):
        list_recordings(tmp_path)
