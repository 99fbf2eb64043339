"""Event data sets: real on-disk formats written here, read back through the real (tonic) code path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError, DataCorruptError, DataNotFoundError
from deepspike.data import load_dataset
from deepspike.data.neuromorphic import (
    EventFrameDataset,
    events_to_frames,
    frames_to_counts,
    read_aedat2,
    read_nmnist_bin,
    write_aedat2,
    write_gesture_npy,
    write_nmnist_bin,
)
from deepspike.data.neuromorphic.cifar10dvs import CLASSES as CIFAR_CLASSES
from deepspike.data.neuromorphic.formats import make_events, warn_empty_bins
from fakedata import write_dataset

pytest.importorskip("tonic")


def _random_events(rng, n, size, t_max):
    t = np.sort(rng.integers(0, t_max, n))
    return make_events(rng.integers(0, size, n), rng.integers(0, size, n), t, rng.integers(0, 2, n))


def test_nmnist_bin_bytes_and_round_trip(tmp_path):
    # event x=5, y=7, p=1, t=0x01_0203 us -> bytes 05 07 (1<<7 | 0x01) 02 03
    path = tmp_path / "one.bin"
    write_nmnist_bin(path, make_events([5], [7], [0x010203], [1]))
    assert path.read_bytes() == bytes([5, 7, 0x81, 0x02, 0x03])
    ev = _random_events(np.random.default_rng(0), 200, 34, 300_000)
    write_nmnist_bin(path, ev)
    back = read_nmnist_bin(path)
    for f in "xytp":
        np.testing.assert_array_equal(back[f], ev[f])


def _records(rows):
    """N-MNIST ``.bin`` bytes of ``(x, y, p, t)`` rows (``y = 240``: an overflow marker)."""
    return b"".join(bytes([x, y, p << 7 | t >> 16 & 0x7F, t >> 8 & 0xFF, t & 0xFF]) for x, y, p, t in rows)


def test_nmnist_overflow_markers_as_tonic_reads_them(tmp_path):
    """Markers (``y = 240``) first, between events, in a row and last: each adds 2^13 us to its own record and every
    later one and is no event, as in tonic's ``read_mnist_file`` on the same file."""
    import tonic

    rows = [(0, 240, 0, 5), (3, 4, 1, 100), (5, 6, 0, 7), (0, 240, 1, 0), (0, 240, 0, 9), (7, 8, 1, 0x7FFFFF),
            (9, 10, 0, 1), (0, 240, 0, 0)]
    path = tmp_path / "markers.bin"
    path.write_bytes(_records(rows))
    ours, theirs = read_nmnist_bin(path), tonic.io.read_mnist_file(str(path), dtype=make_events([], [], [], []).dtype)
    assert ours["t"].tolist() == [8192 + 100, 8192 + 7, 3 * 8192 + 0x7FFFFF, 3 * 8192 + 1]
    for f in "xytp":
        np.testing.assert_array_equal(ours[f], theirs[f])


@pytest.mark.timeout(120)
def test_nmnist_many_overflow_markers_are_read_in_linear_time_without_wrapping(tmp_path):
    """Before: tonic's reader added each marker's 2^13 us to the rest of the file in a Python loop, in uint32: 2^19 + 1
    markers (a 2.6 MB file) took about a minute and wrapped the next event's time past 2^32 us to 8,193."""
    markers = (1 << 19) + 1
    raw = np.zeros((markers + 1, 5), dtype=np.uint8)
    raw[:markers, 1] = 240
    raw[markers] = [1, 2, 0x80, 0, 1]  # ON event at (1, 2), raw time 1 us
    path = tmp_path / "long.bin"
    path.write_bytes(raw.tobytes())
    ev = read_nmnist_bin(path)
    assert len(ev) == 1 and ev["t"][0] == markers * 8192 + 1 and (ev["x"][0], ev["y"][0], ev["p"][0]) == (1, 2, 1)


def test_aedat2_address_layout_and_round_trip(tmp_path):
    path = tmp_path / "a.aedat"
    write_aedat2(path, make_events([3], [100], [42], [0]))
    raw = path.read_bytes()
    assert raw.startswith(b"#!AER-DAT2.0\r\n")
    # an OFF event: address = y << 8 | x << 1 | raw polarity 1 (jAER's DVS128: raw 1 is OFF) = 100*256 + 6 + 1 =
    # 25607; then timestamp 42, both big-endian uint32
    assert raw[-8:] == (25607).to_bytes(4, "big") + (42).to_bytes(4, "big")
    ev = _random_events(np.random.default_rng(1), 300, 128, 1_000_000)
    write_aedat2(path, ev)
    back = read_aedat2(path)
    for f in "xytp":
        np.testing.assert_array_equal(back[f], ev[f])


def test_aedat2_reads_jaer_polarity_drops_special_events_and_refuses_a_cut_file(tmp_path):
    """Written by hand as jAER writes DVS128 data: raw polarity 0 is ON, an address with bit 15 set is a special
    (sync) event, not a pixel."""
    path = tmp_path / "j.aedat"
    pairs = [(5 << 8 | 9 << 1 | 0, 10), (0x8000, 11), (7 << 8 | 2 << 1 | 1, 12)]  # ON (9, 5); special; OFF (2, 7)
    path.write_bytes(b"#!AER-DAT2.0\r\n" + b"".join(a.to_bytes(4, "big") + t.to_bytes(4, "big") for a, t in pairs))
    ev = read_aedat2(path)
    assert ev["x"].tolist() == [9, 2] and ev["y"].tolist() == [5, 7]
    assert ev["p"].tolist() == [1, 0] and ev["t"].tolist() == [10, 12]
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataCorruptError, match="is not whole 8-byte events"):
        read_aedat2(path)


def test_aedat2_of_no_events_reads_as_no_events_and_one_stray_byte_as_a_cut_file(tmp_path):
    """A header-only file (a recording without events, as ``write_aedat2`` writes it) was refused as "AEDAT 2.0 data
    of 1 bytes is not whole 8-byte events (a cut file?)": tonic's header parser puts the data one byte early when the
    file ends with its header. It now reads as no events (all-zero frames); a header and one byte more is the cut
    file, and the error names the file once."""
    path = tmp_path / "empty.aedat"
    write_aedat2(path, make_events([], [], [], []))
    assert path.read_bytes() == b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
    ev = read_aedat2(path)
    assert len(ev) == 0 and ev.dtype.names == ("x", "y", "t", "p")
    assert not events_to_frames(ev, (128, 128), 3).any()
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(DataCorruptError, match=r"empty\.aedat: AEDAT 2.0 data of 1 bytes is not whole") as info:
        read_aedat2(path)
    assert str(info.value).count(str(path)) == 1
    one = (3 << 8 | 4 << 1 | 1).to_bytes(4, "big") + (77).to_bytes(4, "big")  # OFF event at (4, 3), t = 77 us
    path.write_bytes(b"#!AER-DAT2.0\r\n#\r\n# Creation time: 1 2 3 4\r\n" + one)
    ev = read_aedat2(path)
    assert ev.tolist() == [(4, 3, 77, 0)]

def test_an_empty_aedat_file_is_one_line_naming_it(tmp_path):
    """An empty .aedat (a copy cut at 0 bytes) raised tonic's OSError "[Errno 22] Invalid argument" (its header
    parser seeks one byte back from the start), which named no file; the CLI printed that line alone."""
    path = tmp_path / "cifar10_cat_3.aedat"
    path.write_bytes(b"")
    with pytest.raises(DataCorruptError, match=r"^\S*cifar10_cat_3\.aedat: an empty file, not AEDAT 2\.0 \(a "
                                               r"CIFAR10-DVS recording starts with its #!AER-DAT2\.0 header\)$"):
        read_aedat2(path)


def test_a_recording_that_runs_out_of_memory_while_read_is_one_line(tmp_path, monkeypatch):
    """Called directly (no loader's memory check before), read_aedat2 and read_nmnist_bin let a MemoryError out as a
    traceback; now a one-line ConfigError naming the file, its size and the bytes reading takes per file byte."""
    import tonic

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 900. GiB")

    path = tmp_path / "big.aedat"
    write_aedat2(path, make_events([1], [2], [3], [1]))
    monkeypatch.setattr(tonic.io, "get_aer_events_from_file", no_memory)
    size = path.stat().st_size
    with pytest.raises(ConfigError, match=rf"^\S*big\.aedat: its {size} bytes of events did not fit in memory while "
                                          r"read \(reading takes up to 12 bytes per byte of the file, 0\.0 GiB\); "
                                          r"free memory, or split or remove this recording$"):
        read_aedat2(path)
    path = tmp_path / "big.bin"
    write_nmnist_bin(path, make_events([1], [2], [3], [1]))
    monkeypatch.setattr("deepspike.data.neuromorphic.formats.decode_nmnist", no_memory)
    with pytest.raises(ConfigError, match=r"big\.bin: its 5 bytes of events did not fit in memory .* 24 bytes per"):
        read_nmnist_bin(path)
    from deepspike.data.neuromorphic.formats import read_gesture_npy

    path = tmp_path / "3.npy"  # a sound file: not "not a readable .npy file", as one whose header claims 29 TiB is
    write_gesture_npy(path, make_events([1], [2], [3000], [1]))
    monkeypatch.setattr(np, "load", no_memory)
    with pytest.raises(ConfigError, match=r"3\.npy: its 160 bytes of events did not fit in memory .* 4 bytes per"):
        read_gesture_npy(path)


def test_a_missing_nmnist_digit_folder_is_refused_and_an_empty_one_warns(tmp_path, capsys, monkeypatch):
    """A missing (or broken-link) digit folder was read as no recordings and an empty one was silent: the Test split
    then had no sample of the digit and its accuracy was of the other nine. The release holds all ten folders: now
    a missing one is a one-line error, an empty one a one-line warning naming the digit."""
    import shutil

    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    _write_nmnist_tree(tmp_path, per_class=1)
    shutil.rmtree(tmp_path / "NMNIST" / "Test" / "7")
    (tmp_path / "NMNIST" / "Test" / "7").symlink_to(tmp_path / "gone")
    with pytest.raises(DataCorruptError, match=r"^nmnist: \S+Test lacks the digit folder\(s\) 7 \(or they are no "
                                               r"folders\); the N-MNIST release holds Test/0 to Test/9$"):
        load_dataset("nmnist", data_dir=tmp_path, timesteps=2, cache=False)
    (tmp_path / "NMNIST" / "Test" / "7").unlink()
    (tmp_path / "NMNIST" / "Test" / "7").mkdir()
    capsys.readouterr()
    assert len(load_dataset("nmnist", data_dir=tmp_path, timesteps=2, cache=False).test) == 9
    assert capsys.readouterr().err == ("deepspike: warning: nmnist: the Test split holds no sample of 1 of its 10 "
                                       "classes: 7\n")


def test_empty_nmnist_bin_files_warn_once_naming_them(tmp_path, capsys, monkeypatch):
    """A 0-byte .bin (a cut download, far likelier in a release than a recording of no events) loaded as an all-zero
    sample without a word; it still loads (emulated blank images make such files), with one warning line per split
    naming the first three and counting the rest."""
    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    _write_nmnist_tree(tmp_path, per_class=1)
    cut = [tmp_path / "NMNIST" / "Train" / str(d) / "00000.bin" for d in (1, 2, 5, 8)]
    for f in cut:
        f.write_bytes(b"")
    capsys.readouterr()
    s = load_dataset("nmnist", data_dir=tmp_path, timesteps=2, cache=False)
    assert capsys.readouterr().err == ("deepspike: warning: nmnist: the Train split: 4 of 10 recordings are empty "
                                       "files (0 bytes: no events; a cut download?), binned as all-zero frames: "
                                       f"{cut[0]}, {cut[1]}, {cut[2]} and 1 more\n")
    sums = s.train.x.sum(dim=(1, 2, 3, 4))
    assert [d for d in range(10) if sums[s.train.y == d].item() == 0] == [1, 2, 5, 8]


def test_an_empty_cifar10_dvs_class_folder_warns(tmp_path, capsys):
    from deepspike.data.neuromorphic.cifar10dvs import list_recordings

    for c in CIFAR_CLASSES:
        (tmp_path / "CIFAR10DVS" / c).mkdir(parents=True)
        if c not in ("cat", "ship"):
            (tmp_path / "CIFAR10DVS" / c / "0.aedat").write_bytes(b"")
    assert len(list_recordings(tmp_path)) == 8
    assert capsys.readouterr().err == (f"deepspike: warning: cifar10_dvs: {tmp_path / 'CIFAR10DVS'} holds no sample "
                                       "of 2 of its 10 classes: cat, ship\n")


def test_events_to_frames_hand_computed():
    # window 5 ms: t=0 and 4999 -> bin 0, t=5000 -> bin 1, t=12000 -> bin 2 (dropped with T=2)
    ev = make_events([0, 1, 1, 3], [0, 0, 0, 2], [0, 4999, 5000, 12000], [1, 0, 0, 1])
    f = events_to_frames(ev, (4, 4), timesteps=2, time_window=5000.0)
    assert f.shape == (2, 2, 4, 4) and f.dtype == np.uint8
    assert f[0, 1, 0, 0] == 1 and f[0, 0, 0, 1] == 1 and f[1, 0, 0, 1] == 1 and f.sum() == 3
    # stride 2 pools (x, y) -> (x // 2, y // 2); equal bins over [0, 12000]: k = floor(t * 2 / 12001)
    g = events_to_frames(ev, (4, 4), timesteps=2, stride=2)
    assert g.shape == (2, 2, 2, 2)
    assert g[0, 1, 0, 0] == 1 and g[0, 0, 0, 0] == 2 and g[1, 1, 1, 1] == 1 and g.sum() == 4
    assert events_to_frames(ev, (4, 4), 2, stride=2, binary=True)[0, 0, 0, 0] == 1
    with pytest.raises(ConfigError):
        events_to_frames(ev, (4, 4), 0)


def test_frames_to_counts_scales_each_sample():
    frames = np.zeros((2, 3, 2, 2, 2), dtype=np.uint8)
    frames[0, :, 1, 0, 0] = 2  # total 6 -> 1.0
    frames[0, 0, 0, 1, 1] = 3  # total 3 -> 0.5
    counts = frames_to_counts(frames)
    assert counts.shape == (2, 2, 2, 2)
    assert counts[0, 1, 0, 0] == 1.0 and counts[0, 0, 1, 1] == 0.5 and counts[1].sum() == 0


def _counts_and_peak(frames: np.ndarray) -> tuple[np.ndarray, int]:
    """``frames_to_counts(frames)`` and the peak bytes numpy allocated for it (tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        return frames_to_counts(frames), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_frames_to_counts_takes_no_float_copy_of_the_frames():
    """The counts were summed from a float32 copy of every frame: 4 times the frames' bytes at once (11.56 MB of
    frames peaked at 46.7 MB), beyond the memory check, which counts the uint8 frames. Summed in float32 as it goes,
    the peak is about the counts' bytes; the counts are the same (whole numbers below 2^24, exact in float32)."""
    frames = np.random.default_rng(0).integers(0, 4, size=(50, 100, 2, 34, 34), dtype=np.uint8)
    counts, peak = _counts_and_peak(frames)
    assert peak < frames.nbytes / 4  # was 4 x frames.nbytes
    total = frames.astype(np.float64).sum(axis=1)
    expected = total / total.reshape(50, -1).max(axis=1)[:, None, None, None]  # float64, rounded once to float32:
    np.testing.assert_array_equal(counts, expected.astype(np.float32))  # float32's correctly rounded quotient


def test_frames_to_counts_scales_the_images_in_place():
    """The scaled images were a second float32 array beside the sums: 2 x the images' bytes at the peak (200 x 2 x 34 x
    34 images of 1,849,600 bytes: 3.7 MB, uncounted by bin_all's check). Scaled in place, the peak is the images."""
    frames = np.random.default_rng(1).integers(0, 4, size=(200, 2, 2, 34, 34), dtype=np.uint8)
    counts, peak = _counts_and_peak(frames)
    assert peak < 1.25 * counts.nbytes  # was 2 x counts.nbytes
    total = frames.astype(np.float64).sum(axis=1)
    expected = total / total.reshape(len(total), -1).max(axis=1)[:, None, None, None]
    np.testing.assert_array_equal(counts, expected.astype(np.float32))


def _write_nmnist_tree(root, per_class=2, seed=0):
    rng = np.random.default_rng(seed)
    expected = {}
    for split in ("Train", "Test"):
        for digit in range(10):
            folder = root / "NMNIST" / split / str(digit)
            folder.mkdir(parents=True)
            for i in range(per_class):
                ev = _random_events(rng, 50, 34, 300_000)
                write_nmnist_bin(folder / f"{i:05d}.bin", ev)
                expected[(split, digit, i)] = ev
    return expected


def test_nmnist_loader_reads_real_layout_and_caches(tmp_path):
    expected = _write_nmnist_tree(tmp_path)
    splits = load_dataset("nmnist", data_dir=tmp_path, timesteps=3)
    assert isinstance(splits.train, EventFrameDataset)
    assert len(splits.train) == 20 and len(splits.test) == 20 and splits.input_shape == (2, 34, 34)
    assert splits.train.x.shape == (20, 3, 2, 34, 34)
    # tonic lists folders sorted: sample 0 is Train/0/00000.bin
    ref = events_to_frames(expected[("Train", 0, 0)], (34, 34), 3)
    np.testing.assert_array_equal(splits.train.x[0].numpy(), ref)
    assert splits.train.y.tolist() == sorted([d for d in range(10) for _ in range(2)])
    cached = list((tmp_path / "event_frames").glob("nmnist-*.npz"))
    assert len(cached) == 2
    # the second load reads the cache: poison the cache and see it come back
    with np.load(cached[0]) as f:
        x, y = f["x"], f["y"]
    np.savez(cached[0], x=np.full_like(x, 7), y=y)
    again = load_dataset("nmnist", data_dir=tmp_path, timesteps=3)
    assert (again.train.x == 7).all() or (again.test.x == 7).all()
    counts = load_dataset("nmnist", data_dir=tmp_path, timesteps=3, output="counts", cache=False)
    assert counts.train.x.shape == (20, 2, 34, 34) and counts.train.x.max() <= 1.0


def test_nmnist_first_saccade_matches_tonic_and_a_cut_file_or_stray_folder_is_not_a_crash(tmp_path):
    """The first saccade against tonic's own ``NMNIST(first_saccade_only=True)`` on the same files; a cut ``.bin``
    crashed inside tonic (IndexError) and a folder not named by a digit in tonic's label parsing (ValueError)."""
    import tonic

    from deepspike.data.neuromorphic.loading import local_tonic

    _write_nmnist_tree(tmp_path)
    ours = load_dataset("nmnist", data_dir=tmp_path, timesteps=2, time_window_ms=50.0, first_saccade_only=True,
                        cache=False)
    theirs = local_tonic(tonic.datasets.NMNIST, tmp_path / "NMNIST", train=True, first_saccade_only=True)
    for i, path in enumerate(sorted(theirs.data)):
        events, label = theirs[theirs.data.index(path)]
        np.testing.assert_array_equal(ours.train.x[i].numpy(), events_to_frames(
            make_events(events["x"], events["y"], events["t"], events["p"]), (34, 34), 2, time_window=50_000.0))
        assert ours.train.y[i] == label
    stray = tmp_path / "NMNIST" / "Train" / "old"
    stray.mkdir()
    (stray / "x.bin").write_bytes(b"\x00" * 5)
    assert len(load_dataset("nmnist", data_dir=tmp_path, timesteps=2, cache=False).train) == 20
    cut = tmp_path / "NMNIST" / "Train" / "3" / "00001.bin"
    cut.write_bytes(cut.read_bytes()[:-3])
    with pytest.raises(DataCorruptError, match="00001.bin: N-MNIST .bin size 247 is not a multiple of 5"):
        load_dataset("nmnist", data_dir=tmp_path, timesteps=2, cache=False)


def test_random_bytes_of_a_whole_number_of_records_are_no_nmnist_recording(tmp_path):
    """Before: 500 random bytes in a digit folder loaded as a recording of the 2 of its 100 records that fell inside
    the 34 x 34 sensor. Real files (the loader reads a tree of them) and events at the sensor's last pixel pass."""
    _write_nmnist_tree(tmp_path, per_class=1)
    edge = tmp_path / "NMNIST" / "Train" / "1" / "00000.bin"
    write_nmnist_bin(edge, make_events([33, 0], [0, 33], [1, 2], [1, 0]))
    assert load_dataset("nmnist", data_dir=tmp_path, timesteps=2, cache=False).train.x[1].sum() == 2
    bad = tmp_path / "NMNIST" / "Train" / "0" / "00000.bin"
    bad.write_bytes(np.random.default_rng(1).bytes(500))
    with pytest.raises(DataCorruptError, match=r"00000.bin: \d+ of \d+ events lie outside the 34 x 34 sensor") as e:
        load_dataset("nmnist", data_dir=tmp_path, timesteps=2, cache=False)
    assert "\n" not in str(e.value)
    with pytest.raises(DataCorruptError, match="outside the 240 x 304 sensor"):  # N-Caltech101's: y = 241..255
        read_nmnist_bin(bad)


@pytest.mark.parametrize("value", ["false", "no", 0, 1, None])
def test_nmnist_first_saccade_only_must_be_true_or_false(tmp_path, value):
    """Before: any value was read by its truth, so first_saccade_only="false" kept only the first 100 ms."""
    _write_nmnist_tree(tmp_path, per_class=1)
    with pytest.raises(ConfigError, match=f"data.args.first_saccade_only must be true or false, got {value!r}"):
        load_dataset("nmnist", data_dir=tmp_path, timesteps=2, first_saccade_only=value, cache=False)


@pytest.mark.parametrize(("name", "stride", "sensor"), [("nmnist", 35, "34 x 34"), ("dvs_gesture", 129, "128 x 128"),
                                                      ("cifar10_dvs", 200, "128 x 128")])
def test_a_stride_larger_than_the_sensor_is_refused(tmp_path, name, stride, sensor):
    """Before: frames of [N, T, 2, 0, 0] (every event dropped) were built, cached and returned without a word."""
    write_dataset(name, tmp_path)
    with pytest.raises(ConfigError, match=f"stride={stride} is larger than the {sensor} sensor") as e:
        load_dataset(name, data_dir=tmp_path, timesteps=2, stride=stride)
    assert "\n" not in str(e.value) and not (tmp_path / "event_frames").exists()


def test_nmnist_missing_folder_is_one_line_error(tmp_path):
    with pytest.raises(DataNotFoundError, match="nmnist: data not found") as e:
        load_dataset("nmnist", data_dir=tmp_path / "nothing")
    assert "\n" not in str(e.value)


def test_cifar10_dvs_aedat_split_9_to_1(tmp_path):
    rng = np.random.default_rng(2)
    for c in CIFAR_CLASSES:
        (tmp_path / "CIFAR10DVS" / c).mkdir(parents=True)
        for i in range(10):
            write_aedat2(tmp_path / "CIFAR10DVS" / c / f"cifar10_{c}_{i}.aedat", _random_events(rng, 80, 128, 60_000))
    s = load_dataset("cifar10_dvs", data_dir=tmp_path, timesteps=4, cache=False)
    assert s.input_shape == (2, 42, 42) and s.train.x.shape[1:] == (4, 2, 42, 42)
    assert len(s.train) == 90 and len(s.test) == 10
    assert torch.bincount(s.test.y, minlength=10).tolist() == [1] * 10
    s2 = load_dataset("cifar10_dvs", data_dir=tmp_path, timesteps=4, cache=False, seed=5)
    assert torch.equal(s.test.x, s2.test.x)  # the run seed does not move the fixed split


def test_dvs_gesture_npy(tmp_path):
    rng = np.random.default_rng(3)
    for split in ("ibmGestureTrain", "ibmGestureTest"):
        folder = tmp_path / "DVSGesture" / split / "user01_fluorescent"
        folder.mkdir(parents=True)
        for label in range(11):
            write_gesture_npy(folder / f"{label}.npy", _random_events(rng, 100, 128, 400_000))
    s = load_dataset("dvs_gesture", data_dir=tmp_path, timesteps=5, time_window_ms=50.0, stride=4, cache=False,
                     denoise_ms=100.0)
    assert s.num_classes == 11 and s.input_shape == (2, 32, 32) and len(s.train) == 11
    assert s.train.y.tolist() == sorted(range(11), key=str)  # files in name order: 0, 1, 10, 2, ...


def test_dvs_gesture_files_read_as_tonic_reads_them_and_bad_ones_refused(tmp_path):
    """Against tonic's ``DVSGesture`` on the same file; a cut file, a wrong shape, NaN times (tonic made them
    INT64_MIN, every event in frame 0) and a name that is no label are one-line errors naming the file."""
    import tonic

    from deepspike.data.neuromorphic.formats import read_gesture_npy
    from deepspike.data.neuromorphic.loading import local_tonic

    rng = np.random.default_rng(4)
    for split in ("ibmGestureTrain", "ibmGestureTest"):
        folder = tmp_path / "DVSGesture" / split / "user02_led"
        folder.mkdir(parents=True)
        write_gesture_npy(folder / "4.npy", _random_events(rng, 60, 128, 300_000))
    path = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user02_led" / "4.npy"
    theirs, label = local_tonic(tonic.datasets.DVSGesture, tmp_path / "DVSGesture", train=True)[0]
    ours = read_gesture_npy(path)
    assert label == 4
    for f in "xytp":
        np.testing.assert_array_equal(ours[f], theirs[f].astype(np.int64))
    good = path.read_bytes()
    bad = [(good[:-5], "not a readable .npy file"), (np.zeros((5, 3)), r"must be an \[n, 4\] numeric array"),
           (np.array([[1.0, 2.0, 1.0, np.nan]]), "need finite"),
           (np.array([[1 + 5j, 2, 1, 3]]), r"numeric array .* of complex128"),  # was read as x = 1 (imaginary dropped)
           (np.array([[1, 2, 1, 3]], "m8[s]"), r"numeric array .* of timedelta64\[s\]")]
    for content, message in bad:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            np.save(path, content)
        with pytest.raises(DataCorruptError, match=message):
            load_dataset("dvs_gesture", data_dir=tmp_path, timesteps=2, cache=False)
    path.write_bytes(good)
    path.rename(path.with_name("x.npy"))
    with pytest.raises(DataCorruptError, match="x.npy: a DVS Gesture recording is named by its label"):
        load_dataset("dvs_gesture", data_dir=tmp_path, timesteps=2, cache=False)


@pytest.mark.parametrize(("old", "new", "raised"), [
    (b"(3, 4), }", b"(1000000000000, 4), }", "MemoryError"), (b"(3, 4), }", b"(3, 4 , }", "tokenize.TokenError")])
def test_a_gesture_npy_with_a_damaged_header_is_one_error_line(tmp_path, old, new, raised):
    """A header (the same length, its padding shortened) whose shape claims 29 TiB made numpy's allocation raise
    MemoryError, and one whose brackets do not close raised tokenize's TokenError: tracebacks, not the one-line
    error of any other unreadable file."""
    from deepspike.data.neuromorphic.formats import read_gesture_npy

    path = tmp_path / "0.npy"
    np.save(path, np.zeros((3, 4)))
    raw = bytearray(path.read_bytes())
    at = raw.index(old)
    assert raw[at + len(old):at + len(new)].strip() == b""
    raw[at:at + len(new)] = new
    path.write_bytes(bytes(raw))
    with pytest.raises(DataCorruptError, match=r"0\.npy: not a readable \.npy file \("):
        read_gesture_npy(path)

def _not_a_file(path, kind):
    """Put ``kind`` where a recording file is listed: a broken link, a named pipe (reading it waited forever), a link
    to ``/dev/zero`` (tonic read it as an empty recording), a folder."""
    import os

    path.unlink(missing_ok=True)
    if kind == "broken link":
        os.symlink(path.parent / "gone", path)
    elif kind == "pipe":
        os.mkfifo(path)
    elif kind == "device":
        os.symlink("/dev/zero", path)
    else:
        path.mkdir()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["broken link", "pipe", "device", "folder"])
def test_a_listed_recording_that_is_no_regular_file_is_one_error_line(tmp_path, kind):
    """Before: a broken link crashed in the cache key's stat (FileNotFoundError), a pipe hung the run, /dev/zero was
    an empty recording, a folder's size was checked as a file's; now each is a one-line DataCorruptError naming it,
    from the loaders and from the readers."""
    from deepspike.data.neuromorphic.formats import read_gesture_npy

    _write_nmnist_tree(tmp_path, per_class=1)
    bad = tmp_path / "NMNIST" / "Train" / "3" / "00000.bin"
    _not_a_file(bad, kind)
    for read in (read_nmnist_bin, read_aedat2, read_gesture_npy):
        with pytest.raises(DataCorruptError, match="00000.bin is .*not a data file") as e:
            read(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(DataCorruptError, match="00000.bin is .*not a data file"):
        load_dataset("nmnist", data_dir=tmp_path, timesteps=2, cache=False)
    rng = np.random.default_rng(5)
    for split in ("ibmGestureTrain", "ibmGestureTest"):
        folder = tmp_path / "DVSGesture" / split / "user01_led"
        folder.mkdir(parents=True)
        write_gesture_npy(folder / "2.npy", _random_events(rng, 20, 128, 300_000))
    _not_a_file(folder / "2.npy", kind)
    with pytest.raises(DataCorruptError, match="2.npy is .*not a data file"):
        load_dataset("dvs_gesture", data_dir=tmp_path, timesteps=2)


def test_empty_recordings_are_warned_of_by_torchruns_first_process_only(tmp_path, monkeypatch, capsys):
    files = [tmp_path / "a.bin", tmp_path / "b.bin"]
    files[0].write_bytes(b"")
    files[1].write_bytes(bytes(5))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    warn_empty_bins(files, "nmnist: the Train split")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    warn_empty_bins(files, "nmnist: the Train split")
    assert capsys.readouterr().err.startswith("deepspike: warning: nmnist: the Train split: 1 of 2 recordings")
