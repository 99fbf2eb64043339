"""SHD and SSC: tiny HDF5 files in the release's layout (``write_shd_h5``) binned into frames ``[N, T, F]``, checked
against frames counted by hand and against tonic's own ``SHD`` reader and ``ToFrame`` on the same files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError, DataCorruptError, DataNotFoundError
from deepspike.data import BatchIterator, load_dataset
from deepspike.data.neuromorphic import shd
from deepspike.data.neuromorphic.loading import local_tonic
from fakedata import write_shd_h5

h5py = pytest.importorskip("h5py")

# Recording 0 of the hand-counted file: (time s, channel) -> with T = 4 bins of 250 ms: bin 0 channel 0 once,
# bin 1 channel 5 twice, bin 2 channel 699 once, bin 3 channel 3 once; 1.5 s is past 4 x 250 ms (dropped).
HAND = ([0.1, 0.3, 0.3, 0.6, 0.99, 1.5], [0, 5, 5, 699, 3, 4])


@pytest.fixture(autouse=True)
def _no_shared_data(tmp_path, monkeypatch):
    """Look only in the test's folder (no $DEEPSPIKE_DATA, no ~/.cache/deepspike of the machine)."""
    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _write_shd(folder, train=None, test=None):
    """``SHD/shd_train.h5`` (default: the hand-counted recording, label 1, and an empty one, label 0) and
    ``SHD/shd_test.h5`` (default: one recording, label 19) under ``folder``; returns ``folder``."""
    (folder / "SHD").mkdir(parents=True, exist_ok=True)
    keys = [f"class{c}" for c in range(20)]
    write_shd_h5(folder / "SHD" / "shd_train.h5", *(train or ([HAND, ([], [])], [1, 0])), keys=keys)
    write_shd_h5(folder / "SHD" / "shd_test.h5", *(test or ([([0.01], [7])], [19])), keys=keys)
    return folder


def _hand_frames(timesteps=4, channels=700, pool=1):
    """The expected ``[T, F]`` of ``HAND`` with 250 ms bins, channel c -> c // pool (dropped past F)."""
    x = np.zeros((timesteps, channels), dtype=np.uint8)
    for t, c in zip(*HAND):
        k = int(t / 0.25)
        if k < timesteps and c // pool < channels:
            x[k, c // pool] += 1
    return x


def test_frames_counted_by_hand(tmp_path):
    s = load_dataset("shd", data_dir=_write_shd(tmp_path), timesteps=4, time_window_ms=250, cache=False)
    expected = np.zeros((4, 700), dtype=np.uint8)
    expected[0, 0] = expected[2, 699] = expected[3, 3] = 1
    expected[1, 5] = 2
    np.testing.assert_array_equal(_hand_frames(), expected)  # the helper agrees with the comment above
    assert s.train.x.dtype == torch.uint8 and s.train.x.shape == (2, 4, 700)
    np.testing.assert_array_equal(s.train.x[0].numpy(), expected)
    assert int(s.train.x[1].sum()) == 0 and s.train.y.tolist() == [1, 0]
    assert s.test.y.tolist() == [19] and int(s.test.x[0, 0, 7]) == 1


def test_shapes_and_metadata_for_the_model(tmp_path):
    """Per-step input ``(F,)``, T frames per sample, per-feature statistics, batches ``[B, T, F]`` float32."""
    s = load_dataset("shd", data_dir=_write_shd(tmp_path), cache=False)
    assert s.input_shape == (700,) and s.train.shape == (700,) and s.train.timesteps == 100
    assert s.num_classes == 20 and s.class_names[:2] == ("class0", "class1") and len(s.class_names) == 20
    assert len(s.mean) == len(s.std) == 700 and s.val is None
    x, y = next(iter(BatchIterator(s.train, batch_size=2, shuffle=False)))
    assert x.shape == (2, 100, 700) and x.dtype == torch.float32 and y.tolist() == [1, 0]
    # default 100 bins of 10 ms: 1.5 s is dropped, 0.99 s falls into bin 99, 0.3 s into bin 30
    assert int(s.train.x[0].sum()) == 5 and int(s.train.x[0, 99, 3]) == 1 and int(s.train.x[0, 30, 5]) == 2


def test_stride_pools_neighbouring_channels_and_drops_the_remainder(tmp_path):
    folder = _write_shd(tmp_path)
    two = load_dataset("shd", data_dir=folder, timesteps=4, time_window_ms=250, stride=2, cache=False)
    assert two.input_shape == (350,)
    np.testing.assert_array_equal(two.train.x[0].numpy(), _hand_frames(channels=350, pool=2))
    three = load_dataset("shd", data_dir=folder, timesteps=4, time_window_ms=250, stride=3, cache=False)
    assert three.input_shape == (233,)  # channel 699 is the remainder group (699 // 3 = 233): dropped
    expected = _hand_frames(channels=233, pool=3)
    assert int(expected.sum()) == 4
    np.testing.assert_array_equal(three.train.x[0].numpy(), expected)


def test_binary_frames_and_window_truncation(tmp_path):
    folder = _write_shd(tmp_path)
    binary = load_dataset("shd", data_dir=folder, timesteps=4, time_window_ms=250, binary=True, cache=False)
    np.testing.assert_array_equal(binary.train.x[0].numpy(), np.minimum(_hand_frames(), 1))
    longer = load_dataset("shd", data_dir=folder, timesteps=8, time_window_ms=250, cache=False)
    assert int(longer.train.x[0, 6, 4]) == 1 and int(longer.train.x[0].sum()) == 6  # 1.5 s is bin 6 of 8
    shorter = load_dataset("shd", data_dir=folder, timesteps=2, time_window_ms=250, cache=False)
    np.testing.assert_array_equal(shorter.train.x[0].numpy(), _hand_frames(timesteps=2))  # past 500 ms: dropped


def test_equal_bins_over_the_recording_from_its_start(tmp_path):
    """``time_window_ms: null``, T = 3: k = floor(t_us * 3 / (1_500_000 + 1)): 0.1, 0.3 s -> 0; 0.6, 0.99 s
    -> 1; 1.5 s -> 2. The bins start at t = 0, not at the first spike (0.1 s)."""
    s = load_dataset("shd", data_dir=_write_shd(tmp_path), timesteps=3, time_window_ms=None, cache=False)
    expected = np.zeros((3, 700), dtype=np.uint8)
    expected[0, 0], expected[0, 5], expected[1, 699], expected[1, 3], expected[2, 4] = 1, 2, 1, 1, 1
    np.testing.assert_array_equal(s.train.x[0].numpy(), expected)


def test_the_cache_round_trip(tmp_path, monkeypatch):
    folder = _write_shd(tmp_path)
    first = load_dataset("shd", data_dir=folder, timesteps=4, time_window_ms=250)
    assert len(list((folder / "event_frames").glob("shd-*.npz"))) == 2  # one entry per file

    def unused(*args):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(shd, "bin_release_file", unused)
    again = load_dataset("shd", data_dir=folder, timesteps=4, time_window_ms=250)
    assert torch.equal(first.train.x, again.train.x) and torch.equal(first.test.y, again.test.y)
    with pytest.raises(AssertionError, match="cache was not used"):  # other options: another entry
        load_dataset("shd", data_dir=folder, timesteps=4, time_window_ms=250, binary=True)
    write_shd_h5(folder / "SHD" / "shd_test.h5", [([0.01, 0.02], [7, 8])] * 30, [19] * 30)  # another file
    with pytest.raises(AssertionError, match="cache was not used"):
        load_dataset("shd", data_dir=folder, timesteps=4, time_window_ms=250)


def test_ssc_reads_its_three_files_and_uses_the_valid_file_as_val(tmp_path):
    folder = tmp_path / "data"
    (folder / "SSC").mkdir(parents=True)
    for name, labels in (("train", [0, 34, 3]), ("valid", [5, 6]), ("test", [7])):
        write_shd_h5(folder / "SSC" / f"ssc_{name}.h5", [([0.05 * (i + 1)], [i]) for i in range(len(labels))],
                     labels, keys=[f"word{c}" for c in range(35)])
    s = load_dataset("ssc", data_dir=folder, timesteps=4, time_window_ms=50, stride=7, cache=False)
    assert s.num_classes == 35 and s.class_names[34] == "word34" and s.input_shape == (100,)
    assert s.train.y.tolist() == [0, 34, 3] and s.val.y.tolist() == [5, 6] and s.test.y.tolist() == [7]
    assert s.val.x.shape == (2, 4, 100) and int(s.val.x[1, 2, 0]) == 1  # 0.1 s, channel 1 -> bin 2, feature 0
    with pytest.raises(ConfigError, match="^ssc has an official validation file"):
        load_dataset("ssc", data_dir=folder, val_fraction=0.2, cache=False)
    write_shd_h5(folder / "SSC" / "ssc_valid.h5", [], [], keys=[f"word{c}" for c in range(35)])
    with pytest.raises(DataCorruptError, match="^ssc: the validation file ssc_valid.h5 holds no recordings"):
        load_dataset("ssc", data_dir=folder, cache=False)
    (folder / "SSC" / "ssc_valid.h5").unlink()
    with pytest.raises(DataNotFoundError, match="^ssc: data not found: need ssc_train.h5, ssc_valid.h5, ssc_test.h5"):
        load_dataset("ssc", data_dir=folder, cache=False)


def test_a_file_missing_a_class_warns_as_the_camera_data_sets_do(tmp_path, capsys):
    """SHD/SSC files without a recording of a class loaded in silence (the frame data sets warn through
    ``splits.warn_missing_classes``): now one warning line naming the file and the class, binned or from the cache."""
    every = [([0.01], [c]) for c in range(20)]
    folder = _write_shd(tmp_path, train=(every[:7] + every[8:], [c for c in range(20) if c != 7]),
                        test=(every, list(range(20))))
    warning = (f"deepspike: warning: shd: {folder / 'SHD' / 'shd_train.h5'} holds no sample of 1 of its 20 classes: "
               "class7\n")
    for _ in range(2):  # binned, then read from the cache
        capsys.readouterr()
        assert len(load_dataset("shd", data_dir=folder, timesteps=2).train) == 19
        assert capsys.readouterr().err == warning


def test_shd_val_fraction_comes_from_train(tmp_path):
    samples = [([0.01 * (i + 1)], [i]) for i in range(8)]
    folder = _write_shd(tmp_path, train=(samples, [0, 1] * 4))
    s = load_dataset("shd", data_dir=folder, val_fraction=0.5, cache=False)
    assert len(s.train) == len(s.val) == 4 and sorted(s.val.y.tolist()) == [0, 0, 1, 1]
    assert s.val.shape == (700,) and s.val.timesteps == 100
    # the validation part is taken in place (a view of the training frames, as read), no second copy of them
    assert s.val.x.untyped_storage().data_ptr() == s.train.x.untyped_storage().data_ptr()
    whole = load_dataset("shd", data_dir=folder, cache=False).train
    for part in (s.train, s.val):
        rows = [next(i for i in range(8) if torch.equal(whole.x[i], frames)) for frames in part.x]
        assert rows == sorted(rows) and whole.y[rows].tolist() == part.y.tolist()


def _remove(path, name):
    with h5py.File(path, "a") as f:
        del f[name]


MALFORMED = [
    ("no labels", lambda p: _remove(p, "labels"), "not an SHD/SSC file: no dataset labels"),
    ("no units", lambda p: _remove(p, "spikes/units"), "not an SHD/SSC file: no dataset spikes/units"),
    ("channel 700", lambda p: write_shd_h5(p, [([0.1], [700])], [0]), "recording 0: channels run from 700 to 700"),
    ("lengths", lambda p: write_shd_h5(p, [([0.1, 0.2], [1])], [0]), "recording 0: 2 spike times but 1 channels"),
    ("negative", lambda p: write_shd_h5(p, [([0.1], [1]), ([-0.1], [1])], [0, 0]),
     r"recording 1: spike times must be finite, >= 0"),
    ("nan", lambda p: write_shd_h5(p, [([np.nan], [1])], [0]), r"recording 0: spike times must be finite"),
    ("1e14 s", lambda p: write_shd_h5(p, [([0.01, 1e14], [1, 2])], [0]), r"recording 0: spike times must be finite, "
     r">= 0 and <= 1e\+09"),
    ("label 20", lambda p: write_shd_h5(p, [([0.1], [1])], [20]), "labels run from 20 to 20; with 20 classes"),
    ("label count", lambda p: write_shd_h5(p, [([0.1], [1])], [0, 1]), r"labels of shape \[2\] for 1 recordings"),
    ("not hdf5", lambda p: p.write_bytes(b"not an HDF5 file"), "not a readable SHD/SSC HDF5 file"),
]


@pytest.mark.parametrize("damage, message", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_malformed_file_is_refused_in_one_line_naming_it(tmp_path, damage, message):
    folder = _write_shd(tmp_path)
    damage(folder / "SHD" / "shd_train.h5")
    with pytest.raises(DataCorruptError, match=message) as info:
        load_dataset("shd", data_dir=folder, cache=False)
    assert str(info.value).startswith(str(folder / "SHD" / "shd_train.h5")) and "\n" not in str(info.value)


def test_a_dataset_claiming_more_entries_than_the_file_has_bytes_is_refused_before_it_is_read(tmp_path):
    """A few KB of chunked storage claiming 2^44 labels was read whole: a 32 TiB allocation (a MemoryError)."""
    folder = _write_shd(tmp_path)
    path = folder / "SHD" / "shd_train.h5"
    with h5py.File(path, "a") as f:
        del f["labels"]
        f.create_dataset("labels", shape=(1 << 44,), dtype=np.uint16, chunks=(1024,))
    with pytest.raises(DataCorruptError, match=r"dataset labels of shape \[17592186044416\] in a file of"):
        load_dataset("shd", data_dir=folder, cache=False)


def test_units_and_times_of_different_recording_counts(tmp_path):
    folder = _write_shd(tmp_path)
    path = folder / "SHD" / "shd_train.h5"
    with h5py.File(path, "a") as f:
        del f["spikes/units"]
        f.create_dataset("spikes/units", (1,), dtype=h5py.vlen_dtype(np.uint16))
    with pytest.raises(DataCorruptError, match="spikes/times of shape \\[2\\] but spikes/units of shape \\[1\\]"):
        load_dataset("shd", data_dir=folder, cache=False)


def test_missing_packed_and_undownloadable_files_are_one_line(tmp_path):
    with pytest.raises(DataNotFoundError, match="^shd: data not found: need shd_train.h5, shd_test.h5; looked in"):
        load_dataset("shd", data_dir=tmp_path / "nothing")
    (tmp_path / "SHD").mkdir()
    (tmp_path / "SHD" / "shd_train.h5.zip").write_bytes(b"PK")
    with pytest.raises(DataNotFoundError, match="^shd: found .*shd_train.h5.zip but deepspike reads the extracted"):
        load_dataset("shd", data_dir=tmp_path)
    with pytest.raises(DataNotFoundError, match="^shd cannot be downloaded by deepspike: download shd_train.h5"):
        load_dataset("shd", data_dir=tmp_path, download=True)
    with pytest.raises(ConfigError, match="^shd gives frames \\[N, T, F\\] only"):
        load_dataset("shd", data_dir=tmp_path, output="counts")


def _random_recordings(rng, n, t_max):
    """``n`` recordings of 50..300 spikes at sorted random times in [0, t_max) s on random channels."""
    out = []
    for _ in range(n):
        k = int(rng.integers(50, 300))
        out.append((np.sort(rng.uniform(0, t_max, k)).astype(np.float32), rng.integers(0, 700, k)))
    return out


@pytest.mark.parametrize("stride, binary", [(1, False), (4, False), (3, True)])
def test_frames_match_tonic_shd_and_to_frame(tmp_path, stride, binary):
    """tonic's ``SHD`` (its download check bypassed) reads the same file, ``ToFrame`` with 10 ms windows from t = 0
    (``start_time=0``, ``end_time=T * window``) bins it to ``[T, 1, 700]``; pooled and clipped like ours, equal."""
    tonic = pytest.importorskip("tonic")
    rng = np.random.default_rng(0)
    recordings = _random_recordings(rng, 6, 0.5)  # 0.5 s: spikes past T * 10 ms = 0.3 s are dropped by both
    folder = _write_shd(tmp_path, train=(recordings, [i % 20 for i in range(6)]))
    ours = load_dataset("shd", data_dir=folder, timesteps=30, time_window_ms=10, stride=stride, binary=binary,
                        cache=False)
    theirs = local_tonic(tonic.datasets.SHD, folder / "SHD", train=True)
    to_frame = tonic.transforms.ToFrame(sensor_size=(700, 1, 1), time_window=10_000, start_time=0, end_time=300_000)
    f = 700 // stride
    for i in range(6):
        events, label = theirs[i]
        frames = to_frame(events)[:, 0, : f * stride].reshape(30, f, stride).sum(axis=2)  # [T, F]
        frames = np.minimum(frames, 1) if binary else frames
        assert label == ours.train.y[i]
        np.testing.assert_array_equal(ours.train.x[i].numpy(), frames)


def test_equal_bins_match_tonic_to_frame(tmp_path):
    """With ``time_window_ms: null`` our T bins span ``[0, t_last + 1 us)``: tonic's ``ToFrame`` with that window
    (``L / T``), ``start_time=0``, ``end_time=L`` gives the same frames (tonic's own ``n_time_bins`` starts at the
    first spike and uses ``floor((t_last - t_first) / T)``-long bins, which can leave the last spikes out)."""
    tonic = pytest.importorskip("tonic")
    recordings = _random_recordings(np.random.default_rng(1), 4, 0.8)
    folder = _write_shd(tmp_path, train=(recordings, [0, 1, 2, 3]))
    ours = load_dataset("shd", data_dir=folder, timesteps=7, time_window_ms=None, cache=False)
    theirs = local_tonic(tonic.datasets.SHD, folder / "SHD", train=True)
    for i in range(4):
        events, _ = theirs[i]
        length = float(events["t"].max()) + 1.0
        frames = tonic.transforms.ToFrame(sensor_size=(700, 1, 1), time_window=length / 7, start_time=0,
                                          end_time=length, include_incomplete=True)(events)[:, 0, :]
        assert frames[7:].sum() == 0  # a rounding-made eighth window past t_last is empty
        np.testing.assert_array_equal(ours.train.x[i].numpy(), frames[:7])


def test_a_damaged_global_heap_is_refused_before_libhdf5_reads_it(tmp_path):
    """The ragged spike arrays live in HDF5 global heaps; a free-space size of 0 would make libhdf5 loop on it
    (``tests/core/test_hdf5_heaps.py`` shows libhdf5 spinning on such a file): refused in one line naming it."""
    import struct

    folder = _write_shd(tmp_path)
    path = folder / "SHD" / "shd_train.h5"
    data = bytearray(path.read_bytes())
    start = data.find(b"GCOL\x01")
    assert start != -1  # the spike arrays did go into a global heap
    at = start + 16
    while struct.unpack_from("<H", data, at)[0] != 0:  # to the free-space object (index 0)
        at += 16 + -(-struct.unpack_from("<Q", data, at + 8)[0] // 8) * 8
    data[at + 8:at + 16] = struct.pack("<Q", 0)
    path.write_bytes(bytes(data))
    with pytest.raises(DataCorruptError, match=r"shd_train.h5: global heap at byte \d+ is damaged"):
        load_dataset("shd", data_dir=folder, cache=False)


def test_a_damaged_variable_length_type_is_refused_before_h5py_reads_it(tmp_path):
    """One flipped byte in the datatype message of spikes/times (its variable-length kind 0, a sequence, made 6)
    crashed the process in h5py's read (a segmentation fault): refused in one line naming the file."""
    folder = _write_shd(tmp_path)
    path = folder / "SHD" / "shd_train.h5"
    data = bytearray(path.read_bytes())
    # the message: 0x19 (version 1, class 9: variable-length), 3 class-bit bytes, size 16, base 0x11 (float)
    at = data.find(b"\x19\x00\x00\x00\x10\x00\x00\x00\x11")
    assert at != -1 and data.find(b"\x19\x00\x00\x00\x10\x00\x00\x00\x11", at + 1) == -1  # spikes/times' only
    data[at + 1] = 0xF6  # kind 6, padding bits set
    path.write_bytes(bytes(data))
    with h5py.File(path, "r") as f:  # the damage is where the test means it to be
        assert f["spikes/times"].id.get_type().encode()[3] & 0x0F == 6
    with pytest.raises(DataCorruptError, match=r"shd_train.h5: dataset spikes/times has a damaged type \(variable-"
                                               r"length of kind 6"):
        load_dataset("shd", data_dir=folder, cache=False)


def test_spike_lists_of_another_type_are_refused_and_damaged_names_not_read(tmp_path):
    """spikes/times as a plain array (not one list per recording) is refused by type before it is read; extra/keys
    as variable-length text whose kind was changed to 6 (reading it crashed h5py: a segmentation fault) is not read,
    the classes are numbered instead."""
    folder = _write_shd(tmp_path)
    path = folder / "SHD" / "shd_train.h5"
    with h5py.File(path, "a") as f:
        del f["extra/keys"]
        f.create_dataset("extra/keys", data=np.array([f"k{c}" for c in range(20)], dtype=object),
                         dtype=h5py.string_dtype())
        assert shd.vlen_kind(f["extra/keys"].id.get_type()) == shd.VLEN_TEXT
    data = bytearray(path.read_bytes())
    at = data.find(b"\x19\x01\x01\x00")  # the keys' type: version 1, class 9 (variable-length), kind 1 (text)
    assert at != -1
    data[at + 1] = 0x06
    path.write_bytes(bytes(data))
    assert shd.class_names(path, 20) == [str(c) for c in range(20)]
    with h5py.File(path, "a") as f:
        del f["spikes/times"]
        f.create_dataset("spikes/times", data=np.zeros(2, np.float32))
    with pytest.raises(DataCorruptError, match=r"shd_train.h5: dataset spikes/times is no variable-length dataset"):
        load_dataset("shd", data_dir=folder, cache=False)


def test_a_stride_wider_than_the_channels_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="shd has 700 channels: data.args.stride must be 1..700, got 701"):
        load_dataset("shd", data_dir=_write_shd(tmp_path), stride=701, cache=False)


@pytest.mark.parametrize(("options", "message"), [
    ({"timesteps": "abc"}, "timesteps must be an integer from 1 to 65536, got 'abc'"),
    ({"timesteps": 2.5}, "timesteps must be an integer"), ({"stride": 2.5}, "stride must be an integer"),
    ({"timesteps": 10**9}, "timesteps must be an integer from 1 to 65536"),
    ({"time_window_ms": "x"}, "time_window_ms must be a finite number > 0 or null"),
    ({"time_window_ms": float("inf")}, "time_window_ms must be a finite number > 0 or null"),
    ({"binary": "yes"}, "binary must be true or false")])
def test_frame_options_of_the_wrong_kind_or_size_are_refused_in_one_line(tmp_path, options, message):
    """A string or float step count crashed numpy with a TypeError; a billion steps asked it for 1.27 TiB."""
    folder = _write_shd(tmp_path)
    with pytest.raises(ConfigError, match=message):
        load_dataset("shd", data_dir=folder, cache=False, **options)


def _reading(path) -> int:
    """What the check counts for reading and binning ``path``: 1.25 x its size (its spikes) and binning one recording
    of 100 x 700 frames (9 x 2 x 70,000 = 1,260,000 bytes; frames.binning_bytes)."""
    import os

    return int(1.25 * os.path.getsize(path)) + 1_260_000


def test_frames_larger_than_the_machine_are_refused_before_they_are_allocated(tmp_path, monkeypatch):
    from deepspike.data.neuromorphic import frames

    folder = _write_shd(tmp_path)
    monkeypatch.setattr(frames, "physical_memory", lambda: 1000)
    reading = _reading(folder / "SHD" / "shd_train.h5")
    with pytest.raises(ConfigError, match=rf"2 samples of 70,000 bytes of frames and {reading:,} bytes of buffers to "
                                          r"read one recording's events and bin them need 0.0 GiB, more than this"):
        load_dataset("shd", data_dir=folder, cache=False, timesteps=100)


def test_recordings_that_share_one_stored_spike_train_are_refused_before_they_fill_memory(tmp_path):
    """Every ragged entry is a (length, heap address, index) reference: pointed at one stored train, 2,000 recordings
    of a 0.37 MB file each read as its 20,000 spikes (320 MB of times; a 4 MB file: 32 GB). A real file stores each
    recording's spikes, so they never take more bytes than the file: past that, one line naming the file."""
    import struct

    n, m = 2000, 20000
    folder = _write_shd(tmp_path)
    path = folder / "SHD" / "shd_train.h5"
    write_shd_h5(path, [(np.linspace(0, 0.9, m), np.zeros(m, int))] + [([0.5], [1])] * (n - 1), [0] * n)
    with h5py.File(path, "r") as f:
        offsets = [f[name].id.get_offset() for name in ("spikes/times", "spikes/units")]
        assert [len(f[name][i]) for name in ("spikes/times", "spikes/units") for i in (0, 1)] == [m, 1, m, 1]
    raw = bytearray(path.read_bytes())
    for offset in offsets:  # contiguous storage: n references of 16 bytes (length, collection address, index)
        assert struct.unpack("<I", raw[offset:offset + 4])[0] == m
        raw[offset + 16:offset + 16 * n] = raw[offset:offset + 16] * (n - 1)
    path.write_bytes(bytes(raw))
    assert len(raw) < 400_000
    with h5py.File(path, "r") as f:
        assert len(f["spikes/times"][1]) == m  # h5py reads the shared train for every recording
    with pytest.raises(DataCorruptError, match=r"shd_train.h5: spikes/times of recordings 0 to 255 takes "
                                               r"[\d,]+ bytes so far in a file of [\d,]+: recordings share"):
        load_dataset("shd", data_dir=folder, cache=False)


def test_class_names_claiming_more_entries_than_classes_are_not_read(tmp_path):
    """A few KB of chunked storage claiming 2^40 class names was read whole before its length was compared with the
    classes: numpy was asked for 8 TiB (a MemoryError traceback). Now the names are read only when there are as many
    as classes, else the classes are numbered, as for any other unusable ``extra/keys``."""
    folder = _write_shd(tmp_path)
    path = folder / "SHD" / "shd_train.h5"
    assert load_dataset("shd", data_dir=folder, cache=False).class_names[:2] == ("class0", "class1")
    with h5py.File(path, "a") as f:
        del f["extra/keys"]
        f.create_dataset("extra/keys", shape=(1 << 40,), dtype="S8", chunks=(1024,))
    assert load_dataset("shd", data_dir=folder, cache=False).class_names == tuple(str(c) for c in range(20))


def test_labels_of_a_huge_array_type_are_refused_before_they_are_read(tmp_path):
    """Two labels, each an array of 10^8 uint16 (a 9 KB file of fill values), were read whole, 400 MB, before their
    shape was refused; each entry's bytes now count against the file's size before anything is read."""
    folder = _write_shd(tmp_path)
    path = folder / "SHD" / "shd_train.h5"
    with h5py.File(path, "a") as f:
        del f["labels"]
        f.create_dataset("labels", shape=(2,), dtype=np.dtype(("u2", (10**8,))), chunks=(1,))
    with pytest.raises(DataCorruptError, match=r"dataset labels of shape \[2\] in a file of [\d,]+ bytes "
                                               r"\(200,000,000 bytes per entry\)"):
        load_dataset("shd", data_dir=folder, cache=False)


def test_the_test_file_is_counted_beside_the_train_file_already_held(tmp_path, monkeypatch):
    """shd_train.h5's frames stay loaded while shd_test.h5 is binned: 2 + 1 recordings of 100 x 700 = 70,000 bytes.
    Each file was checked alone (140,000 and 70,000 bytes), so a machine of 140,100 bytes passed and held 210,000.
    Each check also counts the larger of the float64 chunk of the frame statistics of all the recordings loaded (2,
    then 3: 1,120,000 and 1,680,000 bytes; splits.stats_bytes) and the file's spikes read and binning one recording
    (``_reading``), more than splitting them holds (one row)."""
    from deepspike.data.neuromorphic import frames

    folder = _write_shd(tmp_path)
    reading = _reading(folder / "SHD" / "shd_train.h5")
    assert reading > 1_260_000 and _reading(folder / "SHD" / "shd_test.h5") < 1_680_000
    monkeypatch.setattr(frames, "physical_memory", lambda: 140_000 + reading)  # the train file, reading and binning
    with pytest.raises(ConfigError, match=r"shd_test.h5: 1 samples of 70,000 bytes of frames beside the 0.0 GiB of "
                                          r"frames already held and 1,680,000 bytes of buffers to split them and take "
                                          r"their statistics need "):
        load_dataset("shd", data_dir=folder, cache=False, timesteps=100)
    monkeypatch.setattr(frames, "physical_memory", lambda: 1_890_016)  # the frames, the two train labels, the chunk
    assert len(load_dataset("shd", data_dir=folder, cache=False, timesteps=100).test) == 1


def test_frames_read_from_the_cache_are_checked_as_binned_ones(tmp_path, monkeypatch):
    """The memory check ran while a file was binned, which a cached entry skips: frames cached on a larger machine
    were loaded unchecked. Now a cached entry's frame count is read from its header and checked before its arrays
    (2 train recordings of 100 x 700 = 140,000 bytes)."""
    from deepspike.data.neuromorphic import frames

    folder = _write_shd(tmp_path)
    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    load_dataset("shd", data_dir=folder, cache=True, timesteps=100)  # writes the cache
    monkeypatch.setattr(frames, "physical_memory", lambda: 100_000)
    with pytest.raises(ConfigError, match=r"shd_train.h5: 2 samples of 70,000 bytes of frames and 1,120,000 bytes of "
                                          r"buffers to split them and take their statistics need 0.0 GiB"):
        load_dataset("shd", data_dir=folder, cache=True, timesteps=100)  # nothing read or binned: the chunk


def test_a_cached_entry_of_another_frame_shape_is_built_again(tmp_path, monkeypatch):
    """Before: an entry holding frames of 50 steps under the key of 100-step ones was read back as it was."""
    folder = _write_shd(tmp_path)
    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    first = load_dataset("shd", data_dir=folder, cache=True, timesteps=100)
    for entry in (folder / "event_frames").glob("shd-*.npz"):
        with np.load(entry) as f:
            x, y = f["x"], f["y"]
        np.savez(entry, x=x[:, :50], y=y)
    again = load_dataset("shd", data_dir=folder, cache=True, timesteps=100)
    assert again.train.x.shape[1:] == (100, 700) and torch.equal(again.train.x, first.train.x)


def test_the_spikes_read_from_a_file_are_counted_while_it_is_binned(tmp_path, monkeypatch):
    """Before: the file's spike times and channels, held while every recording is binned (1.14 x the file's size
    measured as the process's peak), were counted by no check; now 1.25 x the file's size. A machine with room for the
    frames, binning and the statistics' chunk but not for the spikes refuses in one line."""
    from deepspike.data.neuromorphic import frames

    spikes = [(np.linspace(0, 0.9, 20_000), np.arange(20_000) % 700)] * 2
    folder = _write_shd(tmp_path, train=(spikes, [0, 1]))
    reading = _reading(folder / "SHD" / "shd_train.h5")
    assert reading > 1_260_000 + 200_000  # 2 x 20,000 spikes of 6 bytes, beside 140,000 bytes of frames
    monkeypatch.setattr(frames, "physical_memory", lambda: 140_000 + reading - 1)
    with pytest.raises(ConfigError, match=rf"shd_train.h5: 2 samples of 70,000 bytes of frames and {reading:,} bytes"):
        load_dataset("shd", data_dir=folder, cache=False, timesteps=100)
