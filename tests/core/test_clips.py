import numpy as np
import pytest

from picojepa.core.clips import (
    ClipSpec,
    center_indices,
    normalize,
    random_indices,
    sliding_starts,
    uniform_starts,
    window_indices,
)


def test_short_video_repeats_last_frame():
    spec = ClipSpec(frames=8, size=32)
    assert window_indices(5, spec, 0) == [0, 1, 2, 3, 4, 4, 4, 4]
    assert center_indices(3, spec) == [0, 1, 2, 2, 2, 2, 2, 2]


def test_center_window_is_in_the_middle_and_respects_step():
    spec = ClipSpec(frames=4, size=32, frame_step=2)
    assert spec.span == 7
    assert center_indices(21, spec) == [7, 9, 11, 13]


def test_random_window_stays_inside_and_is_contiguous():
    spec = ClipSpec(frames=8, size=32)
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(200):
        idx = random_indices(30, spec, rng)
        assert idx == list(range(idx[0], idx[0] + 8)) and idx[-1] <= 29
        starts.add(idx[0])
    assert starts == set(range(0, 23))


def test_uniform_and_sliding_starts_cover_the_video():
    spec = ClipSpec(frames=8, size=32)
    assert uniform_starts(100, spec, 3) == [0, 46, 92]
    assert uniform_starts(100, spec, 1) == [46]
    assert sliding_starts(100, 10.0, spec, 2.0) == [0, 20, 40, 60, 80]
    assert sliding_starts(5, 10.0, spec, 2.0) == [0]


def test_normalize_layout_and_values():
    spec = ClipSpec(frames=2, size=8)
    frames = np.full((2, 8, 8, 3), 255, np.uint8)
    frames[..., 1] = 0
    x = normalize(frames, spec)
    assert x.shape == (3, 2, 8, 8) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], (1 - 0.485) / 0.229, rtol=1e-6)
    np.testing.assert_allclose(x[1], (0 - 0.456) / 0.224, rtol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(frames=0), dict(size=2), dict(frame_step=0),
                                    dict(std=(1.0, 0.0, 1.0)), dict(seek_mode="fast")])
def test_clip_spec_rejects_impossible_values(kwargs):
    with pytest.raises(ValueError):
        ClipSpec(**kwargs)


def test_normalize_rejects_wrong_input():
    with pytest.raises(ValueError, match="uint8"):
        normalize(np.zeros((2, 8, 8, 3), np.float32), ClipSpec(frames=2, size=8))


def test_keyframe_placement_moves_each_clip_to_the_nearest_valid_keyframe():
    spec = ClipSpec(frames=4, size=32, frame_step=2, placement="keyframe")  # span 7
    # 100 frames: valid starts 0..93; centre start 46
    assert center_indices(100, spec, [0, 40, 60]) == [40, 42, 44, 46]
    assert center_indices(100, spec, [0, 36, 56])[0] == 36  # a tie goes to the earlier keyframe
    assert center_indices(100, spec, [0, 95])[0] == 0  # 95 is no valid start (the clip would run out)
    assert uniform_starts(100, spec, 3, [0, 50, 90]) == [0, 50, 90]
    assert uniform_starts(100, spec, 3, [0]) == [0, 0, 0]
    exact = ClipSpec(frames=4, size=32, frame_step=2)
    assert center_indices(100, exact, [0, 40]) == center_indices(100, exact)  # exact ignores them
    with pytest.raises(ValueError, match="keyframe indices"):
        center_indices(100, spec)


def test_keyframe_placement_needs_exact_seeking():
    with pytest.raises(ValueError, match="seek_mode 'exact'"):
        ClipSpec(placement="keyframe", seek_mode="approximate")
    with pytest.raises(ValueError, match="placement"):
        ClipSpec(placement="nearest")


def test_a_spread_clip_takes_one_frame_in_each_segment_of_the_whole_video():
    from picojepa.core.clips import center_indices, random_indices, spread_indices, uniform_clips, window_picks

    spec = ClipSpec(frames=4, size=32, frame_step=4, sampling="spread")
    assert center_indices(100, spec) == [12, 37, 62, 87]  # each quarter's middle, whatever frame_step says
    assert window_picks(40, spec) == [5, 15, 25, 35]
    assert spread_indices(2, spec, 0.5) == [0, 0, 1, 1]  # fewer frames than the clip: repeated in order
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = random_indices(100, spec, rng)
        assert [i // 25 for i in idx] == [0, 1, 2, 3]  # a random frame, but in its own segment
    clips = uniform_clips(100, spec, 2)
    assert clips == [[6, 31, 56, 81], [18, 43, 68, 93]] and uniform_clips(100, spec, 1) == [center_indices(100, spec)]


def test_a_window_clip_is_unchanged_by_the_sampling_option():
    from picojepa.core.clips import center_indices, uniform_clips, window_indices, window_picks

    spec = ClipSpec(frames=4, size=32, frame_step=2)
    assert spec.sampling == "window" and center_indices(100, spec) == [46, 48, 50, 52]
    assert window_picks(30, spec) == window_indices(30, spec, 11)
    assert uniform_clips(100, spec, 2) == [[0, 2, 4, 6], [93, 95, 97, 99]]


def test_a_spread_clip_cannot_be_moved_to_a_keyframe():
    with pytest.raises(ValueError, match="spread"):
        ClipSpec(sampling="spread", placement="keyframe")
    with pytest.raises(ValueError, match="sampling"):
        ClipSpec(sampling="segments")
