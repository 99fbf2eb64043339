"""Event-camera emulation: hand-checked DVS behaviour, frames vs. event stream, the registered data set."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from deepspike.core.errors import ConfigError
from deepspike.data import load_dataset
from deepspike.data.neuromorphic import emulate_events, emulate_frames, events_to_frames, saccade_offsets
from deepspike.data.neuromorphic.emulation import change_events, counts_to_frames, shift_images
from deepspike.data.tensor_dataset import TensorDataset


def test_saccade_path_is_the_nmnist_triangle():
    off = saccade_offsets(6, amplitude=4.0)  # samples at path parameter 0, .5, 1, 1.5, 2, 2.5, 3
    corners = torch.tensor([[0.0, 0.0], [2.0, 4.0], [4.0, 0.0], [0.0, 0.0]]) - 2.0
    torch.testing.assert_close(off[[0, 2, 4, 6]].float(), corners)
    torch.testing.assert_close(off[1].float(), torch.tensor([1.0, 2.0]) - 2.0)  # halfway up the first side


def test_shift_images_integer_and_half_pixel():
    img = torch.zeros(1, 5, 5)
    img[0, 2, 2] = 1.0
    moved = shift_images(img, 1.0, -2.0)  # +1 column, -2 rows
    assert moved[0, 0, 3] == 1.0 and moved.sum() == 1.0
    half = shift_images(img, 0.5, 0.0)
    assert half[0, 2, 2] == 0.5 and half[0, 2, 3] == 0.5


def test_dvs_rule_on_off_and_threshold():
    # one bright pixel on black: log(1 + .1) - log(.1) = 2.398 -> floor(2.398 / .5) = 4 ON events where it
    # arrives and 4 OFF events where it leaves, when a shift moves it by exactly one pixel
    img = torch.zeros(1, 3, 3)
    img[0, 1, 1] = 1.0
    on, off = change_events(img, samples=3, threshold=0.5, pad=2, amplitude=2.0, eps=0.1)
    # offsets (dx, dy): (-1,-1) -> (0, 1) -> (1, -1) -> (-1, -1); sample 1 is two rows and one column away
    # from sample 0, so the pixel fully leaves (4 OFF) and fully arrives elsewhere (4 ON)
    assert on[0, 0].sum() == 4 and off[0, 0].sum() == 4
    assert on.sum() == off.sum()  # the path is closed: every pixel returns to its start level
    quiet, _ = change_events(img * 0.01, samples=3, threshold=0.5, pad=2, amplitude=2.0)
    assert quiet.sum() == 0  # log(.11) - log(.1) = 0.095 < threshold: no events


def test_frames_equal_binned_event_stream():
    torch.manual_seed(0)
    img = torch.rand(8, 8)
    frames = emulate_frames(img[None], timesteps=4, substeps=3, threshold=0.15)[0]  # [4, 2, 14, 14]
    events = emulate_events(img, samples=12, threshold=0.15, duration_us=12_000)  # 1 ms per sample
    # sample s (1-based) at t = s ms goes to frame (s - 1) * 4 // 12 -> equal windows of 3 ms from t = 1 ms
    ref = events_to_frames(events, (14, 14), timesteps=4, time_window=3000.0)
    assert events["t"].min() == 1000
    np.testing.assert_array_equal(frames.numpy(), ref)
    assert frames.sum() > 0


@pytest.mark.parametrize("stride, binary", [(1, False), (2, False), (2, True)])
def test_counts_to_frames_makes_no_copy_of_the_counts(stride, binary, monkeypatch):
    """The ON and OFF counts were stacked (an int16 copy of both) and cast to int32 before they were binned: 3x the
    counts beside them (2,000 random 8 x 8 digits, S = 200: peak RSS growth 1,208 MiB for 299 MiB of counts; now
    368). Now each sample is added to its frame in place; the frames are those of a numpy reference
    (``np.add.at`` of sample s into frame s * T // S, stride x stride blocks summed, clipped)."""
    g = torch.Generator().manual_seed(3)
    on, off = (torch.randint(0, 90, (3, 16, 5, 6), generator=g, dtype=torch.int16) for _ in range(2))
    sums = np.zeros((3, 2, 2, 5, 6), dtype=np.int64)  # [N, T, 2, H, W]
    for channel, counts in enumerate((off, on)):
        np.add.at(sums[:, :, channel], (slice(None), np.arange(16) * 2 // 16), counts.numpy().astype(np.int64))
    h, w = 5 // stride, 6 // stride
    sums = sums[..., :h * stride, :w * stride].reshape(3, 2, 2, h, stride, w, stride).sum(axis=(4, 6))
    expected = np.minimum(sums, 1 if binary else 255)
    largest = []
    stack, to = torch.stack, torch.Tensor.to
    monkeypatch.setattr(torch, "stack", lambda *a, **k: largest.append(stack(*a, **k).nbytes) or stack(*a, **k))
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *a, **k: largest.append(to(self, *a, **k).nbytes) or to(
        self, *a, **k))
    frames = counts_to_frames(on, off, 2, stride, binary)
    monkeypatch.undo()
    assert frames.dtype == torch.uint8 and np.array_equal(frames.numpy(), expected)
    assert max(largest, default=0) <= 3 * 2 * 2 * 5 * 6 * 4  # at most the int32 frames, not the counts (4x them)



class _NewStorages(TorchDispatchMode):
    """Every storage an op returns that is not one of ``known``'s (inputs, views of them), once (kept alive, so no
    new one reuses its address); ``sizes``: their bytes."""

    def __init__(self, *known: torch.Tensor) -> None:
        super().__init__()
        self.known, self.new = {t.untyped_storage().data_ptr() for t in known}, {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for st in (t.untyped_storage() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)):
            if st.data_ptr() not in self.known:
                self.new.setdefault(st.data_ptr(), st)
        return out

    @property
    def sizes(self) -> list[int]:
        return [st.nbytes() for st in self.new.values()]


@pytest.mark.parametrize("stride, binary", [(1, True), (2, False), (3, False)])
def test_counts_to_frames_makes_nothing_larger_than_its_frames(stride, binary):
    """With stride > 1 the counts were binned into int32 frames of the full sensor, then pooled by a sum beside them
    (int64) and clipped into a copy, none of it in check_emulation_memory's int32 frames of the chunk. On 3 x 16 x 5 x
    6 counts, T = 4: stride 2 made tensors of 2,880 + 1,152 + 1,152 bytes for 144 bytes of frames, stride 1 binary
    three int32 frames of 2,880 (clamp copies) for 720. Now each sample is pooled before it is added to the int32
    sums of its one frame, which are clipped in place into the uint8 frames: no tensor larger than those frames; the
    frames are the numpy reference's (test above; here, for stride 1, the plain sums)."""
    g = torch.Generator().manual_seed(3)
    on, off = (torch.randint(0, 90, (3, 16, 5, 6), generator=g, dtype=torch.int16) for _ in range(2))
    with _NewStorages(on, off) as seen:
        frames = counts_to_frames(on, off, 4, stride, binary)
    assert max(seen.sizes) == frames.nbytes == 3 * 4 * 2 * (5 // stride) * (6 // stride)
    if stride == 1:
        expected = torch.stack([c.reshape(3, 4, 4, 5, 6).sum(2) for c in (off, on)], 2).clamp(max=1).to(torch.uint8)
        assert torch.equal(frames, expected)

def test_emulate_frames_fills_one_tensor_instead_of_joining_copies(monkeypatch):
    """The frames of each chunk were kept in a list and joined by torch.cat: the split's frames twice at the end
    (60,000 random 28 x 28 images, timesteps 8, substeps 1: peak RSS growth 2,503 MiB for 1,058 MiB of frames; now
    1,567, the same frames). Now each chunk is written into the one output tensor; the frames equal those emulated
    in one chunk, and no images give [0, T, 2, H', W'] (torch.cat of no chunks raised)."""
    images = torch.rand(5, 6, 6, generator=torch.Generator().manual_seed(4))
    whole = emulate_frames(images, timesteps=3, substeps=2, pad=2, stride=2, chunk=5)
    joined = []
    cat = torch.cat
    monkeypatch.setattr(torch, "cat", lambda *a, **k: joined.append(1) or cat(*a, **k))
    chunked = emulate_frames(images, timesteps=3, substeps=2, pad=2, stride=2, chunk=2)
    monkeypatch.undo()
    assert chunked.shape == (5, 3, 2, 5, 5) and torch.equal(chunked, whole) and not joined
    assert emulate_frames(images[:0], timesteps=3, substeps=2, pad=2, stride=2).shape == (0, 3, 2, 5, 5)


def test_the_cache_digest_of_the_source_images_reads_them_in_place():
    """The cache key's SHA-1 of the source images hashed ``x.numpy().tobytes()``, a copy of them (4 MB here, traced
    peak 4,096,273 bytes); now the array is hashed in place (peak under 64 kB), with the same digest, so the entries
    cached before are still found."""
    import hashlib
    import tracemalloc

    from deepspike.data.neuromorphic.static_events import _digest

    x = torch.rand(1000, 1, 32, 32, generator=torch.Generator().manual_seed(5))
    tracemalloc.start()
    digest = _digest(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert digest == hashlib.sha1(x.numpy().tobytes()).hexdigest() and peak < 65536
    for other in (x.transpose(2, 3), torch.arange(7), torch.ones(3, dtype=torch.bool), torch.zeros(0, 3)):
        assert _digest(other) == hashlib.sha1(other.contiguous().numpy().tobytes()).hexdigest()


def test_digits_events_data_set_and_cache(tmp_path):
    s = load_dataset("digits_events", data_dir=tmp_path, timesteps=2, substeps=2, val_fraction=0.1)
    assert s.input_shape == (2, 14, 14) and s.train.x.shape[1:] == (2, 2, 14, 14) and s.val is not None
    assert s.train.x.dtype == torch.uint8 and s.train.x.float().mean() > 0
    assert len(list((tmp_path / "event_frames").glob("digits_events-*.npz"))) == 2
    again = load_dataset("digits_events", data_dir=tmp_path, timesteps=2, substeps=2, val_fraction=0.1)
    assert torch.equal(again.train.x, s.train.x)
    with pytest.raises(ConfigError):
        load_dataset("digits_events", data_dir=tmp_path, timesteps=0)
    for entry in (tmp_path / "event_frames").glob("digits_events-*.npz"):  # frames of 1 step under the 2-step key:
        with np.load(entry) as f:  # read back as they were, now built again
            x, y = f["x"], f["y"]
        np.savez(entry, x=x[:, :1], y=y)
    third = load_dataset("digits_events", data_dir=tmp_path, timesteps=2, substeps=2, val_fraction=0.1)
    assert torch.equal(third.train.x, s.train.x)


def test_new_labels_of_the_same_images_are_not_read_from_the_cache(tmp_path, monkeypatch):
    """The cache key digests the labels too: relabelled source files gave the old labels back."""
    from deepspike.data.neuromorphic import static_events

    digits = load_dataset("digits")
    relabelled = replace(digits, train=TensorDataset(digits.train.x, (digits.train.y + 3) % 10))
    first = load_dataset("digits_events", data_dir=tmp_path, timesteps=2, substeps=2)
    monkeypatch.setattr(static_events, "load_dataset", lambda *a, **k: relabelled)
    second = load_dataset("digits_events", data_dir=tmp_path, timesteps=2, substeps=2)
    assert torch.equal(second.train.y, (first.train.y + 3) % 10) and torch.equal(second.train.x, first.train.x)


@pytest.mark.parametrize(("options", "message"), [
    ({"substeps": 10**8}, "substeps must be an integer from 1 to 1024"), ({"substeps": 2.5}, "substeps must be"),
    ({"threshold": "x"}, "threshold must be a finite number >= 1e-06"), ({"amplitude": float("nan")}, "amplitude must"),
    ({"pad": -1}, "pad must be an integer from 0")])
def test_emulation_options_of_the_wrong_kind_or_size_are_refused(tmp_path, options, message):
    """substeps=1e8 asked the allocator for 3.2 GB per chunk; a string threshold crashed in a comparison."""
    with pytest.raises(ConfigError, match=f"^emulation: {message}"):
        load_dataset("digits_events", data_dir=tmp_path, **options)


def test_event_counts_larger_than_the_machine_are_refused_before_they_are_allocated(tmp_path, monkeypatch):
    """timesteps=1000, substeps=1024 on digits (1,437 training images, a 14 x 14 sensor) asked torch for 577 GB of
    ON and OFF counts: a RuntimeError traceback (only the frames' memory was checked)."""
    from deepspike.data.neuromorphic import static_events

    monkeypatch.setattr(static_events, "physical_memory", lambda: 64 * 2**30)  # a machine of 64 GiB
    need = 1437 * 1000 * 1024 * 14 * 14 * 4 / 2**30
    with pytest.raises(ConfigError, match=rf"^digits_events: emulating 1,024,000 position samples \(timesteps x "
                                          rf"substeps\) on a 14 x 14 sensor needs {need:.1f} GiB of event counts"):
        load_dataset("digits_events", data_dir=tmp_path, timesteps=1000, substeps=1024, cache=False)


def test_the_event_counts_are_counted_beside_the_frames_and_source_images(tmp_path, monkeypatch):
    """The counts check saw the ON and OFF counts of one chunk alone, though the frames of both splits, the source
    images and the chunk's working arrays are held beside them: digits (timesteps 8, substeps 4, a 14 x 14 sensor) has
    1,437 x 196 = 281,652 pixels x 32 samples x 4 = 36,051,456 bytes of counts, (2 x 8 + 16 + 2) x 281,652 =
    9,576,168 of counts_to_frames' arrays (more than change_events' 24 x 281,652), 5,635,392 of frames and 474,408
    of source images and labels: 51,737,424 in all. A machine of 51,737,423 bytes passed."""
    from deepspike.data.neuromorphic import frames, static_events

    monkeypatch.setattr(frames, "physical_memory", lambda: 51_737_423)
    monkeypatch.setattr(static_events, "physical_memory", lambda: 51_737_423)
    with pytest.raises(ConfigError, match=r"^digits_events: emulating 32 position samples \(timesteps x substeps\) on "
                                          r"a 14 x 14 sensor needs 0.0 GiB of event counts beside 0.0 GiB of working "
                                          r"arrays, frames and source images, 0.0 GiB in all, more than this "):
        load_dataset("digits_events", data_dir=tmp_path, timesteps=8, substeps=4, cache=False)
    monkeypatch.setattr(static_events, "physical_memory", lambda: 51_737_424)
    assert len(load_dataset("digits_events", data_dir=tmp_path, timesteps=8, substeps=4, cache=False).test) == 360


def test_the_working_arrays_of_one_step_emulation_are_counted(tmp_path, monkeypatch):
    """change_events holds six float32 [chunk, H, W] arrays beside the counts (24 bytes a sensor pixel), more than the
    check's 4 bytes a frame pixel (8 T a sensor pixel) at timesteps 1 or 2: 2000 random 28 x 28 images, timesteps 1,
    substeps 4 took 88.1 MiB at their peak, the check counted 57.3 (session42/event_memory_checks emulation).
    Digits at timesteps 1, substeps 4: 281,652 pixels x 4 samples x 4 = 4,506,432 bytes of counts, 24 x 281,652 =
    6,759,648 of working arrays (counts_to_frames': 20 x 281,652), 704,424 of frames and 474,408 of source images
    and labels: 12,444,912; the check counted 7,938,480 (2,253,216 for the frames' work)."""
    from deepspike.data.neuromorphic import static_events

    monkeypatch.setattr(static_events, "physical_memory", lambda: 12_444_911)
    with pytest.raises(ConfigError, match=r"^digits_events: emulating 4 position samples .* beside 0.0 GiB of working "
                                          r"arrays, frames and source images"):
        load_dataset("digits_events", data_dir=tmp_path, timesteps=1, substeps=4, cache=False)
    monkeypatch.setattr(static_events, "physical_memory", lambda: 12_444_912)
    assert load_dataset("digits_events", data_dir=tmp_path, timesteps=1, substeps=4, cache=False).train.timesteps == 1


def test_cached_event_frames_are_not_refused_for_counts_they_do_not_make(tmp_path, monkeypatch):
    """The counts check ran before the cache was read: frames emulated once (digits, 36 MB of counts a chunk) were
    refused on a machine too small for the counts, though a cache hit makes none. Now only an emulation checks."""
    from deepspike.data.neuromorphic import static_events

    first = load_dataset("digits_events", data_dir=tmp_path, timesteps=8, substeps=4)
    monkeypatch.setattr(static_events, "physical_memory", lambda: 30_000_000)  # less than the counts of one chunk
    with pytest.raises(ConfigError, match=r"^digits_events: emulating 40 position samples"):
        load_dataset("digits_events", data_dir=tmp_path, timesteps=8, substeps=5)  # not cached: emulated
    again = load_dataset("digits_events", data_dir=tmp_path, timesteps=8, substeps=4)
    assert torch.equal(again.train.x, first.train.x) and torch.equal(again.test.x, first.test.x)


def test_a_stride_larger_than_the_emulated_sensor_is_refused(tmp_path):
    """digits with pad 3 make a 14 x 14 sensor: stride 15 gave frames [N, T, 2, 0, 0] without a word; 14 is 1 x 1."""
    with pytest.raises(ConfigError, match=r"stride=15 is larger than the 14 x 14 sensor \(frames of 0 pixels\); "
                                          "at most 14"):
        load_dataset("digits_events", data_dir=tmp_path, timesteps=2, substeps=2, stride=15, cache=False)
    assert load_dataset("digits_events", data_dir=tmp_path, timesteps=2, substeps=2, stride=14,
                        cache=False).input_shape == (2, 1, 1)


def test_a_tiny_threshold_caps_the_counts_instead_of_wrapping_them():
    """One bright pixel moved by whole pixels crosses ``floor((log 1.1 - log 0.1) / 5e-5) = 47,957`` thresholds per
    move, more than int16 holds: the count wrapped to -17,579 ON events, and the frames (clipped to 255 only from
    above) held 85 instead of 255. Now the counts are capped at 32,767 and the frames are exactly those of any
    threshold that saturates them without overflowing (1e-3: 2,397 events per move)."""
    img = torch.zeros(1, 3, 3)
    img[0, 1, 1] = 1.0
    on, off = change_events(img, samples=3, threshold=5e-5, pad=2, amplitude=2.0, eps=0.1)
    assert int(on.min()) == 0 and int(off.min()) == 0
    assert int(on.max()) == 32767 and int(off.max()) == 32767
    assert (on > 0).equal(change_events(img, samples=3, threshold=0.5, pad=2, amplitude=2.0)[0] > 0)
    for binary in (False, True):
        tiny = emulate_frames(img, timesteps=3, substeps=1, threshold=5e-5, pad=2, amplitude=2.0, binary=binary)
        coarse = emulate_frames(img, timesteps=3, substeps=1, threshold=1e-3, pad=2, amplitude=2.0, binary=binary)
        assert int(coarse.max()) == (1 if binary else 255)
        torch.testing.assert_close(tiny, coarse, rtol=0, atol=0)


@pytest.mark.parametrize("threshold", [1e-7, 1e-40, 1e-300])
def test_a_threshold_below_float32s_resolution_of_the_log_level_is_refused(tmp_path, threshold):
    """The reference level moves by ``steps * threshold`` in float32, whose rounding (2.4e-7 at log 0.1) is then
    counted as crossings: at 1e-7 pixels that did not change fired (6 more ON pixels than at 5e-5 on 3 random
    10 x 10 images), below float32's smallest normal the level went inf and then NaN, and a bright square's ON
    pixels fell from 85 to 25 (1e-300), all without a word. Now one line, in the data set's options and here."""
    with pytest.raises(ConfigError, match=r"emulation: threshold must be a finite number >= 1e-06 \(float32 "):
        change_events(torch.rand(1, 4, 4), samples=3, threshold=threshold)
    with pytest.raises(ConfigError, match=r"^emulation: threshold must be a finite number >= 1e-06 \(float32 "):
        load_dataset("digits_events", data_dir=tmp_path, threshold=threshold)
    on, off = change_events(torch.rand(1, 4, 4), samples=3, threshold=1e-6)  # the smallest: 4 float32 steps of 0.1
    assert int(on.min()) >= 0 and int(off.min()) >= 0



def test_too_few_position_samples_name_timesteps_and_substeps(tmp_path):
    """timesteps=1, substeps=2: refused as "needs >= 3 position samples, got 2" without naming the keys that set it
    (and only after the source was loaded)."""
    message = r"^emulation needs timesteps x substeps >= 3 position samples \(one per saccade\), got 1 x 2 = 2$"
    with pytest.raises(ConfigError, match=message):
        load_dataset("digits_events", data_dir=tmp_path / "none", timesteps=1, substeps=2, cache=False)
    with pytest.raises(ConfigError, match=message):
        emulate_frames(torch.zeros(1, 4, 4), timesteps=1, substeps=2)
    assert emulate_frames(torch.zeros(1, 4, 4), timesteps=1, substeps=3).shape == (1, 1, 2, 10, 10)


def test_the_frames_of_both_splits_are_counted_before_they_are_emulated(tmp_path, monkeypatch):
    """The train and test frames are both held (the test split is emulated beside the train one): digits' 1,437 +
    360 samples of 8 x 2 x 14 x 14 = 3,136 bytes need 5,635,392 bytes; only the train split's 4,506,432 were
    counted, so a machine of 5,000,000 bytes passed the check and emulated both."""
    from deepspike.data.neuromorphic import frames

    monkeypatch.setattr(frames, "physical_memory", lambda: 5_000_000)
    with pytest.raises(ConfigError, match=r"^digits_events: 1,797 samples of 3,136 bytes of frames beside "):
        load_dataset("digits_events", data_dir=tmp_path, timesteps=8, cache=False)


def test_the_source_images_are_counted_beside_the_frames_emulated_from_them(tmp_path, monkeypatch):
    """The source images (and labels) stay loaded while their frames are emulated: digits' 1,797 float32 images of
    1 x 8 x 8 and int64 labels hold 474,408 bytes beside the 5,635,392 bytes of frames (timesteps 8), 6,109,800 in
    all. Only the frames were counted, so a machine of 6,000,000 bytes passed the check. Splitting the frames and
    taking their statistics hold up to a float64 chunk of all 1,797 (45,083,136 bytes) beside them: 51,192,936."""
    from deepspike.data.neuromorphic import frames

    monkeypatch.setattr(frames, "physical_memory", lambda: 51_192_935)
    with pytest.raises(ConfigError, match=r"^digits_events: 1,797 samples of 3,136 bytes of frames beside the 0.0 GiB "
                                          r"of source images already held and 45,083,136 bytes of buffers to split "
                                          r"them and take their statistics need 0.0 GiB"):
        load_dataset("digits_events", data_dir=tmp_path, timesteps=8, cache=False)
    monkeypatch.setattr(frames, "physical_memory", lambda: 51_192_936)
    assert len(load_dataset("digits_events", data_dir=tmp_path, timesteps=8, cache=False).train) == 1437


def test_the_count_images_of_both_splits_are_counted_beside_their_frames(tmp_path, monkeypatch):
    """``output: counts`` makes float32 images (2 x 14 x 14 x 4 = 1,568 bytes a sample) beside the frames (3,136):
    digits' 1,797 samples need 8,453,088 bytes, but the check counted the frames' 5,635,392, so a machine of
    6,000,000 bytes passed it."""
    from deepspike.data.neuromorphic import frames

    monkeypatch.setattr(frames, "physical_memory", lambda: 6_000_000)
    with pytest.raises(ConfigError, match=r"^digits_events: 1,797 samples of 4,704 bytes of frames and count images "):
        load_dataset("digits_events", data_dir=tmp_path, timesteps=8, cache=False, output="counts")
