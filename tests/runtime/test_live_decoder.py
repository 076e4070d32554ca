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


def test_the_one_step_conversion_gives_the_windows_their_pixels_within_a_few_grey_levels(tmp_path):
    """The reader converts a clip's frames in one swscale step when asked: same windows, same
    frames' timing, pixels a few grey levels from the file path's two-step conversion."""
    video = _h264(tmp_path / "pan.ts", 0.5, 2.0)
    spec, read = ClipSpec(frames=4, size=32), {}
    for one_step in (False, True):
        got = windows(video, spec, LiveOptions(window_s=1.0, one_step_convert=one_step), LiveStats(), threading.Event())
        read[one_step] = [(w.start_s, w.frames.astype(np.int16)) for w in got]
    assert [t for t, _ in read[True]] == [t for t, _ in read[False]] and len(read[True]) == 2
    diff = [np.abs(a - b).mean() for (_, a), (_, b) in zip(read[False], read[True])]
    assert all(0 < d < 4 for d in diff), diff  # grey levels, on average: not equal, not far


def test_a_still_h264_stream_is_gated_until_it_starts_moving(tmp_path):
    video = _h264(tmp_path / "still-then-pan.ts", 3.0, 3.0)
    stats = LiveStats()
    got = list(windows(video, ClipSpec(frames=4, size=16), LiveOptions(window_s=1.0, motion_gate=DEFAULT_THRESHOLD),
                       stats, threading.Event()))
    assert [w.gated for w in got] == [True, True, True, False, False], [w.motion for w in got]
    assert stats.converted == 2 * 4 and got[3].frames.shape == (4, 16, 16, 3)


def _serve_once(video, port: int) -> subprocess.Popen:
    """FFmpeg playing `video` once in real time as MPEG-TS on tcp://127.0.0.1:port (packets copied)."""
    return subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-re", "-i", str(video), "-c", "copy", "-f", "mpegts",
                             f"tcp://127.0.0.1:{port}?listen=1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_picojepa_run_answers_a_still_stream_no_motion_until_it_moves(smoke_bundle, tmp_path):
    import json
    import socket
    import sys
    import time

    from conftest import REPO

    video = _h264(tmp_path / "still-then-pan.ts", 3.0, 3.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = _serve_once(video, port)
    try:
        time.sleep(0.5)
        r = subprocess.run([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(smoke_bundle), "--format",
                            "json", f"tcp://127.0.0.1:{port}", "--window", "1", "--reconnect-s", "1"],
                           capture_output=True, text=True, cwd=REPO, timeout=60)
    finally:
        server.kill()
        server.wait(10)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    labels = [row["label"] for row in rows]
    assert labels[:3] == ["no motion"] * 3 and "no motion" not in labels[3:] and len(rows) >= 4, r.stderr
    assert rows[0]["confidence"] is None and rows[0]["members"] == {} and rows[0]["motion"] < DEFAULT_THRESHOLD
    assert rows[3]["motion"] > DEFAULT_THRESHOLD and rows[3]["confidence"] is not None
    assert "3 answered no motion" in r.stderr


def test_the_motion_gate_and_the_loop_filter_on_a_file_are_usage_errors(smoke_bundle, tmp_path):
    import sys

    from conftest import REPO

    video = _h264(tmp_path / "clip.ts", 1.0, 1.0)
    for flag in (["--motion-gate", "0.2"], ["--loop-filter"]):
        r = subprocess.run([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(smoke_bundle), video, *flag],
                           capture_output=True, text=True, cwd=REPO, timeout=60)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert f"{flag[0]}: applies to live sources" in r.stderr


def test_the_decode_cost_measures_share_one_loop_and_count_every_variants_frames(tmp_path):
    """The streams bench's flat-out costs and the deblocking pairs decode through one loop
    (`timed_packets`): every variant gets its frames, skipping non-reference frames gives fewer,
    skipping the filter none fewer. Counts and signs only: timings belong to the benchmarks."""
    from picojepa.benchmarks.deblock import decode_pairs
    from picojepa.benchmarks.stream_decode import decode_costs

    video = _h264(tmp_path / "pan.ts", 0.5, 2.0, crf=40)
    costs = decode_costs(video, 32, frames=1000)
    every = costs["default"]["frames_out"]
    assert every == int(2.5 * FPS) == costs["loop_filter_skipped"]["frames_out"]
    assert 0 < costs["nonref"]["frames_out"] < every
    assert all(costs[k]["decode_ms_per_frame_out"] > 0 for k in ("default", "nonref", "loop_filter_skipped"))
    pairs = decode_pairs(video, rounds=2, frames=20)
    assert set(pairs["ms_per_frame"]) == {"loop filter on", "loop filter skipped", "skipped, flags2 +fast"}
    assert all(len(v["samples"]) == 2 and v["median"] > 0 for v in pairs["ms_per_frame"].values())
