"""``events_to_frames`` with an explicit time origin ``t0``: the bins start there, not at the first event."""

from __future__ import annotations

import numpy as np

from deepspike.data.neuromorphic import FrameOptions, events_to_frames
from deepspike.data.neuromorphic.formats import make_events


def test_time_window_bins_start_at_t0():
    # window 5 ms from t0 = 0: t = 7000 -> bin 1, t = 12000 -> bin 2; from the first event (7000) they would be 0, 1
    ev = make_events([0, 1], [0, 0], [7000, 12000], [1, 1])
    f = events_to_frames(ev, (2, 2), timesteps=3, time_window=5000.0, t0=0)
    assert f[1, 1, 0, 0] == 1 and f[2, 1, 0, 1] == 1 and f.sum() == 2
    g = events_to_frames(ev, (2, 2), timesteps=3, time_window=5000.0)
    assert g[0, 1, 0, 0] == 1 and g[1, 1, 0, 1] == 1 and g.sum() == 2
    late = events_to_frames(ev, (2, 2), timesteps=3, time_window=5000.0, t0=8000)  # before t0: dropped
    assert late[0, 1, 0, 1] == 1 and late.sum() == 1


def test_equal_bins_span_t0_to_the_last_event():
    # T = 3 over [0, 12000]: k = floor(t * 3 / 12001): 7000 -> 1, 12000 -> 2
    ev = make_events([0, 1], [0, 0], [7000, 12000], [0, 0])
    f = events_to_frames(ev, (2, 2), timesteps=3, t0=0)
    assert f[1, 0, 0, 0] == 1 and f[2, 0, 0, 1] == 1 and f.sum() == 2
    assert events_to_frames(ev, (2, 2), timesteps=3, t0=20000).sum() == 0  # every event before t0
    assert events_to_frames(ev[:0], (2, 2), timesteps=3, t0=0).shape == (3, 2, 2, 2)


def test_t0_is_an_anchor_event_at_t0_outside_the_sensor():
    """The origin equals the old trick of an extra event at ``t0`` that falls outside the sensor (never counted)."""
    rng = np.random.default_rng(0)
    ev = make_events(rng.integers(0, 6, 80), rng.integers(0, 4, 80), np.sort(rng.integers(3000, 90_000, 80)),
                     rng.integers(0, 2, 80))
    anchored = np.concatenate([make_events([-1], [0], [1000], [1]), ev])
    for window in (None, 7000.0):
        options = FrameOptions(timesteps=6, time_window_ms=None if window is None else window / 1000, stride=2)
        np.testing.assert_array_equal(options.frames(ev, (4, 6), t0=1000), options.frames(anchored, (4, 6)))
        np.testing.assert_array_equal(events_to_frames(ev, (4, 6), 6, window, 2, t0=1000),
                                      events_to_frames(anchored, (4, 6), 6, window, 2))


def test_binning_holds_the_int64_counts_and_the_uint8_frames_only():
    """Before: the int64 counts were clipped into a second int64 array (a third with ``binary``) before the cast, a
    peak of 17 x the uint8 frames (100 x 2 x 128 x 128: 55.8 MB for 3.3 MB of frames), which no memory check counted;
    now 9 x (``binning_bytes``), clipped in place, the same frames as clipping a copy."""
    import tracemalloc

    from deepspike.data.neuromorphic.frames import binning_bytes

    rng = np.random.default_rng(0)
    ev = make_events(rng.integers(0, 64, 300), rng.integers(0, 64, 300), np.sort(rng.integers(0, 10**5, 300)),
                     rng.integers(0, 2, 300))
    ev["x"][:3], ev["y"][:3], ev["t"][:3], ev["p"][:3] = 5, 6, 0, 1  # three events in one pixel of bin 0
    for binary, cap in ((False, 255), (True, 1)):
        tracemalloc.start()
        frames = events_to_frames(ev, (64, 64), 20, binary=binary)  # [20, 2, 64, 64]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert frames.nbytes * 9 <= peak < binning_bytes(frames.size) + 64 * len(ev) + 4096  # was 17 x frames
        counts = np.zeros((20, 2, 64, 64), np.int64)
        np.add.at(counts, (np.floor(ev["t"] * 20 / (ev["t"].max() + 1)).astype(int), ev["p"], ev["y"], ev["x"]), 1)
        np.testing.assert_array_equal(frames, np.minimum(counts, cap))
        assert frames[0, 1, 6, 5] == min(3, cap)


def test_the_memory_message_names_the_largest_term_and_its_remedy(monkeypatch):
    """The refusal said "buffers to split them and take their statistics ...; take fewer timesteps or a larger stride"
    whatever the buffers were: also where reading one recording's events (which neither changes) was the largest term.
    Need: 2 x 1,000 frames + max(500 buffers, 9,000 read + 300 binned) = 11,300 bytes."""
    import pytest

    from deepspike.core.errors import ConfigError
    from deepspike.data.neuromorphic import frames

    monkeypatch.setattr(frames, "physical_memory", lambda: 11_299)
    with pytest.raises(ConfigError, match=r"^x: 2 samples of 1,000 bytes of frames and 9,300 bytes of buffers to read "
                                          r"one recording's events and bin them need 0\.0 GiB, more than this "
                                          r"machine's 0\.0 GiB; its events read take 9,000 bytes, which timesteps "
                                          r"and stride do not change; split or remove the largest recording$"):
        frames.check_frame_memory(2, 1000, "x", work=500, reading=9000, binning=300)
    frames.check_frame_memory(2, 1000, "x", work=500, reading=9000 - 1, binning=300)  # 11,299 bytes fit
    with pytest.raises(ConfigError, match=r"and 9,300 bytes of buffers to read .*; take fewer timesteps or a larger "
                                          r"stride$"):
        frames.check_frame_memory(2, 1000, "x", work=500, reading=300, binning=9000)
    with pytest.raises(ConfigError, match=r"and 10,000 bytes of buffers to split them and take their statistics need "
                                          r".*; take fewer timesteps or a larger stride$"):
        frames.check_frame_memory(2, 1000, "x", work=10_000, reading=300, binning=300)
