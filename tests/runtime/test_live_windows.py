"""Cutting a live stream's frames into windows, on made-up frames and timestamps: no PyAV, no
video, no network."""
import numpy as np
import pytest

from picojepa.core.clips import ClipSpec, max_start, window_indices
from picojepa.runtime.live.options import LiveOptions, LiveStats
from picojepa.runtime.live.windows import Interval, cut_windows


def _items(times):
    """(t, frame, decode ms) per time, None kept as a gap; the frame is its own time."""
    return [None if t is None else (t, t, 0.5) for t in times]


def _convert(size, seen=None):
    """A frame (its time) as an image whose pixels are its index at 30 fps."""
    def convert(t):
        if seen is not None:
            seen.append(t)
        return np.full((size, size, 3), int(round(t * 30)) % 256, np.uint8)
    return convert


def _cut(times, spec, opts, stats=None, seen=None):
    stats = stats if stats is not None else LiveStats()
    return list(cut_windows(_items(times), spec, opts, stats, _convert(spec.size, seen))), stats


def test_back_to_back_windows_span_their_length_of_stream_time():
    got, stats = _cut([i / 30 for i in range(95)], ClipSpec(frames=4, size=8), LiveOptions(window_s=1.0))
    assert [(round(w.start_s, 3), round(w.end_s, 3)) for w in got] == [(0, 1), (1, 2), (2, 3)]
    assert all(w.frames.shape == (4, 8, 8, 3) and w.decode_ms > 0 for w in got)
    assert stats.gaps == [] and stats.repicked == 0


def test_a_stride_shorter_than_the_window_overlaps_windows():
    got, _ = _cut([i / 30 for i in range(125)], ClipSpec(frames=4, size=8), LiveOptions(window_s=2.0, stride_s=1.0))
    assert [(round(w.start_s, 3), round(w.end_s, 3)) for w in got] == [(0, 2), (1, 3), (2, 4)]


def test_each_window_clip_holds_the_file_rules_frames_and_only_they_are_converted():
    times, seen = [i / 30 for i in range(181)], []
    spec = ClipSpec(frames=8, size=8, frame_step=2)
    got, stats = _cut(times, spec, LiveOptions(window_s=2.0), seen=seen)
    for w in got:
        inside = [t for t in times if w.start_s <= t < w.end_s]
        want = [inside[i] for i in window_indices(len(inside), spec, max_start(len(inside), spec) // 2)]
        assert w.frames[:, 0, 0, 0].tolist() == [int(round(t * 30)) for t in want]
    assert len(got) == 3 and stats.converted == len(seen) <= 60 + 8 * 2  # first window: before the rate is known


def test_a_timestamp_jump_and_a_reconnect_each_start_a_new_series():
    times = [i / 30 for i in range(45)] + [50 + i / 30 for i in range(45)] + [None] + [3 + i / 30 for i in range(45)]
    got, stats = _cut(times, ClipSpec(frames=4, size=8), LiveOptions(window_s=1.0))
    assert [round(w.start_s, 3) for w in got] == [0, 50, 3]
    assert [g["reason"].split(" from")[0] for g in stats.gaps] == ["timestamps jumped", "the stream dropped; reconnected"]


def test_a_hole_in_a_window_still_gives_a_full_clip_from_inside_it():
    times = [i / 30 for i in range(95) if not 35 <= i < 50]
    got, stats = _cut(times, ClipSpec(frames=8, size=8, frame_step=2), LiveOptions(window_s=1.0))
    seen = got[1].frames[:, 0, 0, 0] / 30
    assert len(seen) == 8 and all(1.0 <= t < 2.0 for t in seen) and stats.repicked <= 1


def test_the_frame_interval_is_the_median_of_the_recent_gaps():
    iv = Interval()
    assert iv.frames_before(0.0, 1.0) is None
    for t in (0.0, 0.1, 0.2, 0.5, 0.6):  # one long gap among 0.1 s ones
        iv.add(t)
    assert iv.dt == pytest.approx(0.1) and iv.frames_before(0.6, 1.6) == 10


# The motion gate: frames are small grey pictures here (the gate's `grey` is the identity)
TEXTURE = np.random.default_rng(0).integers(0, 256, (90, 120), dtype=np.uint8)


def _scene(moving_from_s: float | None):
    """A textured scene with a little sensor noise, shifting 3 px a frame from `moving_from_s`
    (None: never)."""
    noise = np.random.default_rng(1)

    def at(t):
        shift = 0 if moving_from_s is None or t < moving_from_s else int((t - moving_from_s) * 30) * 3
        pic = np.roll(TEXTURE, shift, axis=1).astype(np.int16) + noise.integers(-4, 5, TEXTURE.shape)
        return np.clip(pic, 0, 255).astype(np.uint8)
    return at


def _gated(moving_from_s, seconds=6.0, threshold=0.5):
    scene, converted = _scene(moving_from_s), []
    items = [(i / 30, scene(i / 30), 0.5) for i in range(int(seconds * 30) + 1)]
    stats = LiveStats()
    got = list(cut_windows(items, ClipSpec(frames=8, size=8), LiveOptions(window_s=1.0, motion_gate=threshold),
                           stats, lambda f: converted.append(f) or np.zeros((8, 8, 3), np.uint8), grey=lambda f: f))
    return got, stats, converted


def test_a_still_stream_is_gated_and_nothing_of_it_is_converted():
    got, stats, converted = _gated(None)
    assert len(got) == 6 and all(w.gated and w.frames is None and w.motion < 0.5 for w in got)
    assert converted == [] and stats.converted == 0


def test_a_moving_stream_is_not_gated_and_its_clips_are_converted():
    got, stats, converted = _gated(0.0)
    assert len(got) == 6 and not any(w.gated for w in got)
    assert all(w.frames.shape == (8, 8, 8, 3) and w.motion > 5 for w in got)
    assert stats.converted == len(converted) == 6 * 8


def test_a_stream_that_starts_moving_opens_the_gate_within_one_window():
    got, _, _ = _gated(2.5)  # still for 2.5 s, then moving: window [2, 3) holds the start
    assert [w.gated for w in got] == [True, True, False, False, False, False]


def test_without_the_gate_every_window_has_its_clip():
    scene = _scene(None)
    items = [(i / 30, scene(i / 30), 0.5) for i in range(91)]
    got = list(cut_windows(items, ClipSpec(frames=4, size=8), LiveOptions(window_s=1.0), LiveStats(),
                           lambda f: np.zeros((8, 8, 3), np.uint8), grey=lambda f: f))
    assert len(got) == 3 and not any(w.gated for w in got) and all(w.motion is None for w in got)


def test_the_motion_score_is_the_largest_share_of_pixels_moved_between_picks():
    from picojepa.runtime.live.motion import motion_score, small_grey

    a = np.zeros((90, 100), np.uint8)
    b = a.copy()
    b[:9, :] = 200  # a tenth of the picture changed
    assert motion_score([a, a, b, b]) == pytest.approx(10.0) and motion_score([a]) == 0.0
    assert small_grey(np.zeros((720, 1280, 3), np.uint8)).shape == (90, 160)
