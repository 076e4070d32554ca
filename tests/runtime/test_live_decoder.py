"""The live decoder's options on small generated H.264 files (FFmpeg and PyAV, seconds on a CPU):
the deblocking skip and the motion gate, read through the live path as a stream would be."""
import shutil
import subprocess
import threading

import numpy as np
import pytest

from picojepa.core.clips import ClipSpec
from picojepa.runtime.live.motion import DEFAULT_THRESHOLD
from picojepa.runtime.live.options import LiveOptions, LiveStats
from picojepa.runtime.live.reader import clip_rgb, frames, windows

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")
pytest.importorskip("av")
FPS, W, H = 15, 192, 144


def _h264(path, still_s: float, moving_s: float, crf: int = 30):
    """A textured scene with sensor noise, still for `still_s`, then panning for `moving_s`,
    encoded as a camera would (H.264 in MPEG-TS; not x264's ultrafast, which turns the deblocking
    filter off)."""
    rng = np.random.default_rng(0)
    texture = np.kron(rng.integers(0, 256, (H // 8, 2 * W // 8)), np.ones((8, 8))).astype(np.int16)
    pics = []
    for i in range(int((still_s + moving_s) * FPS)):
        x = max(0, i - int(still_s * FPS)) * 4
        pic = texture[:, x % W:x % W + W] + rng.integers(-3, 4, (H, W))
        pics.append(np.repeat(np.clip(pic, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
                    "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf),
                    "-pix_fmt", "yuv420p", "-f", "mpegts", str(path)], input=np.stack(pics).tobytes(),
                   check=True, timeout=60)
    return str(path)


def test_the_deblocking_skip_keeps_every_frame_and_changes_the_pixels_slightly(tmp_path):
    video = _h264(tmp_path / "pan.ts", 0.5, 2.0, crf=40)  # blocky: the filter has work to do
    read = {}
    for skip in (False, True):
        got = frames(video, LiveOptions(skip_loop_filter=skip), LiveStats(), threading.Event())
        read[skip] = [(t, clip_rgb(f, 64).astype(np.int16)) for t, f, _ in got]
    assert [t for t, _ in read[True]] == [t for t, _ in read[False]] and len(read[True]) == int(2.5 * FPS)
    diff = np.mean([np.abs(a - b).mean() for (_, a), (_, b) in zip(read[False], read[True])])
    assert 0 < diff < 4  # grey levels, on average


def test_a_still_h264_stream_is_gated_until_it_starts_moving(tmp_path):
    video = _h264(tmp_path / "still-then-pan.ts", 3.0, 3.0)
    stats = LiveStats()
    got = list(windows(video, ClipSpec(frames=4, size=16), LiveOptions(window_s=1.0, motion_gate=DEFAULT_THRESHOLD),
                       stats, threading.Event()))
    assert [w.gated for w in got] == [True, True, True, False, False], [w.motion for w in got]
    assert stats.converted == 2 * 4 and got[3].frames.shape == (4, 16, 16, 3)
