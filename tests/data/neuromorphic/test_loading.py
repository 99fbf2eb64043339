"""``FrameOptions``: the bin length in microseconds and the cache key."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.data.neuromorphic import FrameOptions
from deepspike.data.neuromorphic.formats import make_events
from deepspike.data.neuromorphic.frames import frames_to_counts
from deepspike.data.neuromorphic.loading import held_out_splits
from deepspike.data.splits import split_indices


@pytest.mark.parametrize("ms", [2.01, 16.1, 32.2, 64.1, 8.19, 5.0, 0.7, 25])
def test_events_on_and_just_before_bin_edges_fall_into_the_exact_bins(ms):
    """Events at the origin, on every bin edge ``j * window`` and 1 us before it, binned against exact rational
    arithmetic ``k = floor(t / (1000 * ms))`` with ``ms`` the decimal written. Before: ``ms * 1000.0`` made 16.1 ms
    16100.000000000002 us, so the event at 16100 us landed in bin 0 (two events there, none in bin 3)."""
    T = 4
    window = Fraction(str(ms)) * 1000
    edges = [math.floor(j * window) for j in range(1, T + 1)]
    t = np.array(sorted({0, *edges, *(e - 1 for e in edges)}), dtype=np.int64)
    events = make_events(np.zeros(len(t), np.int64), np.zeros(len(t), np.int64), t, np.ones(len(t), np.int64))
    frames = FrameOptions(timesteps=T, time_window_ms=ms).frames(events, (1, 1), t0=0)  # [T, 2, 1, 1]
    expected = np.zeros(T, np.int64)
    for k in (math.floor(Fraction(int(v)) / window) for v in t):
        if k < T:
            expected[k] += 1
    assert frames[:, 1, 0, 0].tolist() == expected.tolist()


def test_the_cache_key_changes_only_where_the_window_was_misrounded():
    """Frames cached with 16.1 * 1000.0 us windows must not be reused; those of exact windows (5 ms) still are."""
    assert "window_us" not in FrameOptions(time_window_ms=5.0).key()
    assert "window_us" not in FrameOptions(time_window_ms=None).key()
    assert FrameOptions(time_window_ms=16.1).key()["window_us"] == 16100.0


def test_a_window_too_long_for_a_float_is_one_config_error_line():
    """Before: an int of 10**400 ms raised OverflowError (int too large to convert to float)."""
    with pytest.raises(ConfigError, match="time window"):
        FrameOptions(time_window_ms=10**400)


def test_the_test_split_is_counted_beside_the_train_split_already_held(tmp_path, monkeypatch):
    """N-MNIST's Train frames stay loaded while Test is binned: 4 + 4 recordings of 10 x 2 x 34 x 34 = 23,120 bytes
    (and 8-byte labels) need 185,024 bytes. Each split was checked alone (92,480 bytes), so a machine of 92,580
    bytes passed both checks and held both splits. Both checks also count the float64 chunk of the frame statistics
    (all 4, then all 8 samples: 739,840 and 1,479,680 bytes), more than splitting them holds (one row)."""
    from deepspike.data import load_dataset
    from deepspike.data.neuromorphic import frames
    from fakedata import write_dataset

    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    write_dataset("nmnist", tmp_path, n=4)
    monkeypatch.setattr(frames, "physical_memory", lambda: 4 * 23_120 + 739_840)  # one split fits, not two
    with pytest.raises(ConfigError, match=r"^event frames: 4 samples of 23,120 bytes of frames beside the 0.0 GiB of "
                                          r"frames already held and 1,479,680 bytes of buffers to split them and take "
                                          r"their statistics need 0.0 GiB, more than this machine's"):
        load_dataset("nmnist", data_dir=tmp_path, timesteps=10, cache=False)
    monkeypatch.setattr(frames, "physical_memory", lambda: 8 * 23_120 + 4 * 8 + 1_479_680)  # + the train labels
    splits = load_dataset("nmnist", data_dir=tmp_path, timesteps=10, cache=False)
    assert len(splits.train) + len(splits.test) == 8


def test_the_count_images_are_counted_beside_the_frames(tmp_path, monkeypatch):
    """``output: counts`` makes float32 images (2 x 34 x 34 x 4 = 9,248 bytes a sample) beside the frames (23,120
    bytes) before the frames are dropped; bin_all's check counted the frames only, so a machine with room for the
    frames passed and then held 1.4 x them."""
    from deepspike.data import load_dataset
    from deepspike.data.neuromorphic import frames
    from fakedata import write_dataset

    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    write_dataset("nmnist", tmp_path, n=4)
    monkeypatch.setattr(frames, "physical_memory", lambda: 4 * 23_120 + 100)  # a split's frames fit, not its images
    with pytest.raises(ConfigError, match=r"^event frames: 4 samples of 32,368 bytes of frames and count images and "
                                          r"212,880 bytes of buffers to read one recording's events and bin them "
                                          r"need .*; take fewer timesteps or a larger stride$"):
        load_dataset("nmnist", data_dir=tmp_path, timesteps=10, cache=False, output="counts")
    # the test split's frames and images, the train images and labels, and reading and binning one recording (its
    # 200-byte file read, 24 x 200 = 4,800 bytes; its int64 counts and uint8 frames, 9 x 23,120: more than the
    # statistics' chunk of 8 float64 images, 147,968)
    monkeypatch.setattr(frames, "physical_memory", lambda: 4 * 32_368 + 4 * 9_256 + 212_880)
    splits = load_dataset("nmnist", data_dir=tmp_path, timesteps=10, cache=False, output="counts")
    assert tuple(splits.train.x.shape[1:]) == (2, 34, 34)


@pytest.mark.parametrize("name", ["nmnist", "dvs_gesture"])
def test_a_splits_frames_are_dropped_before_the_next_split_is_binned_under_counts(name, tmp_path, monkeypatch):
    """Under ``output: counts`` the train split keeps its count images only, but its frames stayed referenced by the
    loader's loop variable while the test split was binned: held beside it, and counted by no check (N-MNIST at 10
    steps: 1.4 GB of train frames). Now they are dropped once the images are made."""
    import weakref

    from deepspike.data import load_dataset
    from deepspike.data.neuromorphic import loading
    from fakedata import write_dataset

    made, alive = [], []

    def spy(*args, _bin_all=loading.bin_all):
        alive.extend(ref() is not None for ref in made)
        x, y = _bin_all(*args)
        made.append(weakref.ref(x))
        return x, y

    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setattr(loading, "bin_all", spy)
    write_dataset(name, tmp_path, n=4)
    load_dataset(name, data_dir=tmp_path, timesteps=4, cache=False, output="counts")
    assert len(made) == 2 and alive == [False]


def test_a_class_too_small_for_the_held_out_test_split_warns(capsys):
    """A fixed 0.1 of each class is the test set (CIFAR10-DVS, N-Caltech101): round(0.1 n) = 0 for a class of 5 or
    fewer recordings, which then had no test sample without a word. Classes a (10), b (5), c (6), d (none): b is
    named; d, which the data set does not hold at all, is not (its loader names it)."""
    x = np.zeros((21, 1, 2, 1, 1), dtype=np.uint8)
    y = np.repeat(np.arange(3), [10, 5, 6])
    splits = held_out_splits(x, y, FrameOptions(timesteps=1), test_fraction=0.1, split_seed=0, val_fraction=0.0,
                             seed=0, class_names="abcd", name="t")
    assert torch.bincount(splits.test.y, minlength=4).tolist() == [1, 0, 1, 0]
    assert capsys.readouterr().err == ("deepspike: warning: t: the test split (a 0.1 of each class) holds no sample of "
                                       "1 of its 4 classes: b\n")


@pytest.mark.parametrize("output", ["frames", "counts"])
def test_held_out_splits_are_the_rows_the_copies_were_without_copying_the_frames(output):
    """The test rows ``x[test_idx]`` and the train rows ``x[train_idx]`` were copied beside ``x``, and the validation
    split copied the train rows again: peak memory about twice the frames that ``bin_all`` checks (4000 samples of 10
    x 2 x 34 x 34: 167 MiB above the 88 MiB frames, now 48). Now the frames are reordered in place and every split
    of ``output: frames`` is a view of them, holding the same rows in the same order as before."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(40, 3, 2, 4, 4), dtype=np.uint8)
    y = np.repeat(np.arange(4), 10)
    original = x.copy()
    train_idx, test_idx = split_indices(torch.from_numpy(y), 0.2, 5)
    keep, val_idx = split_indices(torch.from_numpy(y[train_idx.numpy()]), 0.25, 1)
    splits = held_out_splits(x, y.copy(), FrameOptions(output=output), test_fraction=0.2, split_seed=5,
                             val_fraction=0.25, seed=1, class_names="abcd", name="t")
    expected = {"train": train_idx[keep], "val": train_idx[val_idx], "test": test_idx}
    for part, rows in expected.items():
        dataset = getattr(splits, part)
        frames = original[rows.numpy()]
        want = frames if output == "frames" else frames_to_counts(frames)
        assert np.array_equal(dataset.x.numpy(), want) and np.array_equal(dataset.y.numpy(), y[rows.numpy()])
        if output == "frames":
            assert np.shares_memory(dataset.x.numpy(), x)


@pytest.mark.parametrize("name", ["nmnist", "dvs_gesture", "cifar10_dvs"])
def test_frames_read_from_the_cache_are_checked_as_binned_ones(name, tmp_path, monkeypatch):
    """The memory check ran inside bin_all, which a cached entry skips: frames cached on a larger machine, or cached
    as frames and read again under ``output: counts`` (the cache key leaves ``output`` out: the count images are
    made beside them), were loaded unchecked. Now the check runs before the cache is read."""
    from deepspike.data import load_dataset
    from deepspike.data.neuromorphic import frames
    from fakedata import write_dataset

    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    write_dataset(name, tmp_path, n=4)
    load_dataset(name, data_dir=tmp_path, timesteps=2, cache=True)  # writes the cache
    monkeypatch.setattr(frames, "physical_memory", lambda: 1000)
    with pytest.raises(ConfigError, match=r"^event frames: \d+ samples of [\d,]+ bytes of frames .*more than this"):
        load_dataset(name, data_dir=tmp_path, timesteps=2, cache=True)


@pytest.mark.parametrize("name", ["nmnist", "cifar10_dvs"])
def test_the_memory_check_runs_once_a_split_binned_or_read_from_the_cache(name, tmp_path, monkeypatch):
    """``load_binned`` checked the frames and then ``bin_all`` checked them again when they were binned (not read
    from the cache): two checks of the same bytes a split. Now once a split: binned without the cache, binned into
    it, read back from it. N-MNIST has two splits, CIFAR10-DVS one file set split after binning."""
    from deepspike.data import load_dataset
    from deepspike.data.neuromorphic import loading
    from fakedata import write_dataset

    calls = []

    def spy(*args, _check=loading.check_binned):
        calls.append(args[0])  # the samples checked
        return _check(*args)

    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setattr(loading, "check_binned", spy)
    write_dataset(name, tmp_path, n=4)
    splits = 2 if name == "nmnist" else 1
    for cache in (False, True, True):  # binned, binned into the cache, read from it
        calls.clear()
        load_dataset(name, data_dir=tmp_path, timesteps=2, cache=cache)
        assert len(calls) == splits


def test_the_buffers_of_the_validation_split_and_the_statistics_are_counted_beside_the_frames(tmp_path, monkeypatch):
    """Splitting rows of at most splits.PARTITION_ROW_BYTES takes a copy of the held-out rows and a gather buffer (up
    to 65 MiB), then the frame statistics a float64 chunk of up to 2048 samples (up to 128 MiB), which no check
    counted. N-MNIST at 2 steps: rows of 2 x 2 x 34 x 34 = 4,624 bytes; the test split's check sees its 20 samples
    (92,480 bytes) beside the train split's frames and labels (92,640) and the larger of the buffers of splitting all
    40 rows (184,960) and of their statistics' chunk (40 x 4,624 float64: 1,479,680): 1,664,800 bytes. A machine of
    1,664,799 bytes passed with 185,120."""
    from deepspike.data import load_dataset
    from deepspike.data.neuromorphic import frames
    from fakedata import write_dataset

    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    write_dataset("nmnist", tmp_path, n=20)
    monkeypatch.setattr(frames, "physical_memory", lambda: 1_664_799)
    with pytest.raises(ConfigError, match=r"^event frames: 20 samples of 4,624 bytes of frames beside the 0.0 GiB of "
                                          r"frames already held and 1,479,680 bytes of buffers to split them and take "
                                          r"their statistics need "):
        load_dataset("nmnist", data_dir=tmp_path, timesteps=2, cache=False, val_fraction=0.5)
    monkeypatch.setattr(frames, "physical_memory", lambda: 1_664_800)
    splits = load_dataset("nmnist", data_dir=tmp_path, timesteps=2, cache=False, val_fraction=0.5)
    assert len(splits.train) == len(splits.val) == 10


def test_binning_one_recording_is_counted_where_it_is_the_peak(monkeypatch):
    """One recording of 1000 x 2 x 128 x 128 frames (32,768,000 bytes): splitting holds one row, the statistics a
    float64 chunk of one sample (262,144,000 bytes), binning it its int64 counts and uint8 frames (294,912,000),
    which no check counted: a machine of 294,912,000 bytes passed and held 327,680,000. Checked, nothing allocated."""
    from deepspike.data.neuromorphic import frames
    from deepspike.data.neuromorphic.loading import check_binned

    options = FrameOptions(timesteps=1000, stride=1)
    need = 32_768_000 + 294_912_000
    monkeypatch.setattr(frames, "physical_memory", lambda: need)
    assert check_binned(1, options, (128, 128)) == (128, 128)
    monkeypatch.setattr(frames, "physical_memory", lambda: need - 1)
    with pytest.raises(ConfigError, match=r"1 samples of 32,768,000 bytes of frames and 294,912,000 bytes of "):
        check_binned(1, options, (128, 128))


def test_reading_the_largest_recording_is_counted(tmp_path, monkeypatch):
    """Reading a recording holds about 120 bytes an N-MNIST event (the file's bytes, the int64 records, the events and
    what binning makes of them), which no check counted: one recording of 10,000 events (a 50 KB file) held 1.2 MB
    beside frames of 2,312 bytes a sample. Now 24 x the largest file's bytes (1,200,000) and binning it (20,808) are
    counted, and the measured peak of reading and binning it stays under them."""
    import tracemalloc

    from deepspike.data import load_dataset
    from deepspike.data.neuromorphic import frames
    from deepspike.data.neuromorphic.formats import write_nmnist_bin
    from deepspike.data.neuromorphic.nmnist import read_recording
    from fakedata import random_events, write_dataset

    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    write_dataset("nmnist", tmp_path, n=2)
    big = tmp_path / "NMNIST" / "Train" / "1" / "00001.bin"
    write_nmnist_bin(big, random_events(np.random.default_rng(0), 10_000, 34, 300_000))
    monkeypatch.setattr(frames, "physical_memory", lambda: 1_000_000)
    with pytest.raises(ConfigError, match=r"^event frames: 2 samples of 2,312 bytes of frames and 1,220,808 bytes of "):
        load_dataset("nmnist", data_dir=tmp_path, timesteps=1, cache=False)
    tracemalloc.start()
    FrameOptions(timesteps=1).frames(read_recording((big, 1), False)[0], (34, 34))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert 1_000_000 < peak <= 1_220_808


def test_a_cached_entry_of_frames_of_another_shape_is_built_again(tmp_path, monkeypatch):
    """Before: an entry under the key of 2-step frames that held 1-step ones (or another frame size) was read back as
    it was, the splits of another T than asked; now the header's shape is compared with the frames binning makes and
    such an entry built again."""
    from deepspike.data import load_dataset
    from fakedata import write_dataset

    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    write_dataset("nmnist", tmp_path, n=2)
    first = load_dataset("nmnist", data_dir=tmp_path, timesteps=2)
    for entry in (tmp_path / "event_frames").glob("nmnist-*.npz"):
        with np.load(entry) as f:
            x, y = f["x"], f["y"]
        np.savez(entry, x=x[:, :1], y=y)
    again = load_dataset("nmnist", data_dir=tmp_path, timesteps=2)
    assert again.train.x.shape == (2, 2, 2, 34, 34) and torch.equal(again.train.x, first.train.x)


def test_events_out_of_time_order_bin_and_denoise_as_sorted_ones():
    """Binning does not depend on the events' order; tonic's denoise walks them in file order, so a recording out of
    time order (reversed) kept B (6, 5) and A (5, 5), whose neighbour C or B fired 5 and 100 ms LATER, and dropped C.
    By hand, in time order with a 10 ms filter: A (50 ms) and B (150 ms) have no neighbour in the 10 ms before them,
    C (7, 5) at 155 ms has B 5 ms before, D (20, 20) none: only C stays (before the fix reversed: 2 events, B and A)."""
    ev = make_events([5, 6, 7, 20], [5, 5, 5, 20], [50_000, 150_000, 155_000, 200_000], [1, 1, 1, 0])
    expected = np.zeros((1, 2, 34, 34), dtype=np.uint8)
    expected[0, 1, 5, 7] = 1
    denoised = FrameOptions(timesteps=1, denoise_ms=10.0)
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]):
        assert np.array_equal(denoised.frames(ev[order], (34, 34)), expected), order
    rng = np.random.default_rng(0)
    many = make_events(rng.integers(0, 34, 500), rng.integers(0, 34, 500), rng.integers(0, 10**6, 500),
                       rng.integers(0, 2, 500))
    plain = FrameOptions(timesteps=7, stride=2)
    assert np.array_equal(plain.frames(many[rng.permutation(500)], (34, 34)), plain.frames(many, (34, 34)))


def _denoised_by_brute_force(ev, filter_us):
    """The documented rule, pair by pair: in time order, event i stays iff an event before it at one of its 4
    neighbouring pixels has ``t_j > t_i - filter_us``."""
    ev = ev[np.argsort(ev["t"], kind="stable")]
    keep = [i for i in range(len(ev)) if any(abs(ev["x"][j] - ev["x"][i]) + abs(ev["y"][j] - ev["y"][i]) == 1
                                             and ev["t"][j] > ev["t"][i] - filter_us for j in range(i))]
    return ev[keep]


def test_denoise_drops_isolated_events_of_the_first_window_too():
    """tonic's filter starts every pixel's memory as if it had fired at time 0, so every event of the first
    ``denoise_ms`` of a recording starting near 0 stayed: an isolated event at 5 ms with a 10 ms filter was kept (1 of 2
    isolated events before, 0 now). 300 random events on 10 x 10 pixels over 60 ms match the brute-force rule."""
    isolated = make_events([5, 20], [5, 20], [5_000, 50_000], [1, 1])
    assert FrameOptions(timesteps=1, denoise_ms=10.0).frames(isolated, (34, 34)).sum() == 0
    rng = np.random.default_rng(1)
    ev = make_events(rng.integers(0, 10, 300), rng.integers(0, 10, 300), rng.integers(0, 60_000, 300),
                     rng.integers(0, 2, 300))
    reference = _denoised_by_brute_force(ev, 4_000.0)
    assert 0 < len(reference) < len(ev)
    denoised = FrameOptions(timesteps=3, denoise_ms=4.0).frames(ev, (10, 10), t0=0)
    assert np.array_equal(denoised, FrameOptions(timesteps=3).frames(reference, (10, 10), t0=0))
    assert "denoise_from" in FrameOptions(denoise_ms=4.0).key() and "denoise_from" not in FrameOptions().key()
    endless = FrameOptions(timesteps=3, denoise_ms=1e300).frames(ev, (10, 10), t0=0)  # longer than the recording
    assert np.array_equal(endless, FrameOptions(timesteps=3).frames(_denoised_by_brute_force(ev, np.inf), (10, 10),
                                                                     t0=0))
