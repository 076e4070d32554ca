"""Live sources on loopback: FFmpeg serving a real clip as MPEG-TS over TCP and UDP, and HLS from
a local static HTTP server; every server started here, bounded in time, and stopped."""
import json
import re
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REAL, REPO, needs_real

pytestmark = [needs_real, pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")]
pytest.importorskip("av")
CLIP = REAL / "bench" / "video3__pytorch-android-demo.mp4"  # 10 s, 340x256


def _port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(url: str, realtime: bool = True, loop: bool = True) -> subprocess.Popen:
    """FFmpeg pushing CLIP (re-encoded to H.264 with B-frames, as cameras do) to `url`."""
    cmd = ["ffmpeg", "-v", "error", "-nostdin", *(["-re"] if realtime else []),
           *(["-stream_loop", "-1"] if loop else []), "-i", str(CLIP), "-c:v", "libx264",
           "-preset", "ultrafast", "-bf", "2", "-f", "mpegts", url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _run(bundle, source, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(bundle),
                           "--format", "json", source, *args], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


@pytest.fixture
def stop_after():
    procs = []
    yield procs.append
    for p in procs:
        p.kill()
        p.wait(10)


def test_tcp_stream_gives_one_result_per_window_as_it_plays(smoke_bundle, stop_after):
    port = _port()
    stop_after(_serve(f"tcp://127.0.0.1:{port}?listen=1"))
    time.sleep(0.5)
    t0 = time.monotonic()
    r = _run(smoke_bundle, f"tcp://127.0.0.1:{port}", "--window", "1", "--duration", "4.5")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) >= 3 and all(row["error"] is None for row in rows)
    assert [row["end_s"] - row["start_s"] for row in rows] == pytest.approx([1.0] * len(rows))
    assert all(b["start_s"] == pytest.approx(a["end_s"]) for a, b in zip(rows, rows[1:]))
    assert all(row["wall_time"] <= time.time() and set(row["members"]) >= {"1", "2"} for row in rows)
    assert all(row["timings_ms"]["decode"] > 0 and row["timings_ms"]["preprocess"] > 0 for row in rows)
    assert "windows classified" in r.stderr.splitlines()[-1] and took < 20


def test_udp_stream_is_received_and_classified(smoke_bundle, stop_after):
    port = _port(socket.SOCK_DGRAM)
    run = subprocess.Popen([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(smoke_bundle),
                            "--format", "json", f"udp://127.0.0.1:{port}", "--window", "1",
                            "--duration", "6"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=REPO)
    stop_after(run)
    time.sleep(1.5)  # the receiver binds first
    stop_after(_serve(f"udp://127.0.0.1:{port}?pkt_size=1316"))
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) >= 2 and all(row["error"] is None for row in rows)


def test_a_source_that_never_starts_fails_after_the_connect_timeout(smoke_bundle):
    t0 = time.monotonic()
    r = _run(smoke_bundle, f"tcp://127.0.0.1:{_port()}", "--connect-timeout", "1.5")
    took = time.monotonic() - t0
    assert r.returncode == 3 and took < 15
    assert "could not open the stream within 1.5 s" in r.stderr and "Traceback" not in r.stderr


def test_a_source_that_never_opens_within_a_short_duration_is_an_error_naming_it(smoke_bundle):
    """--duration passes while the source is still being retried (nothing listens there): not
    exit 0 with no window, but one error line naming the source, exit 3."""
    source = f"tcp://127.0.0.1:{_port()}"
    r = _run(smoke_bundle, source, "--duration", "1.5", "--connect-timeout", "30")
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 3, r.stderr
    assert len(errors) == 1 and source in errors[0] and "--duration 1.5 s" in errors[0], r.stderr


def test_a_stream_faster_than_the_classifier_drops_whole_windows():
    """The real file read as a stream arrives far faster than real time; a classifier taking
    200 ms per window keeps up with few of them: the rest are dropped whole, counted, and the
    reader never holds more than the one window waiting."""
    import threading

    from picojepa.core.clips import ClipSpec
    from picojepa.runtime.live.reader import LiveOptions, LiveRunner, LiveStats, windows

    spec, opts = ClipSpec(frames=4, size=32), LiveOptions(window_s=0.2)
    every = sum(1 for _ in windows(str(CLIP), spec, opts, LiveStats(), threading.Event()))
    runner = LiveRunner(str(CLIP), spec, opts)
    taken = []
    while (w := runner.next_window(time.monotonic() + 30)) is not None:
        taken.append(w)
        time.sleep(0.2)
    runner.close()
    s = runner.stats
    assert runner.error is None and s.dropped > 0 and len(taken) >= 1
    assert len(taken) + s.dropped == every >= 45  # each window served or counted, none lost
    assert all(b.start_s > a.start_s for a, b in zip(taken, taken[1:]))  # newest served, in order


@pytest.mark.slow
def test_the_run_reconnects_when_the_server_comes_back_and_ends_when_it_does_not(smoke_bundle, stop_after):
    port = _port()
    server = _serve(f"tcp://127.0.0.1:{port}?listen=1")
    stop_after(server)
    time.sleep(0.5)
    run = subprocess.Popen([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(smoke_bundle),
                            "--format", "json", f"tcp://127.0.0.1:{port}", "--window", "1",
                            "--reconnect-s", "6"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=REPO)
    stop_after(run)
    time.sleep(4)
    server.kill()
    time.sleep(2)
    server2 = _serve(f"tcp://127.0.0.1:{port}?listen=1")
    time.sleep(4)
    server2.kill()  # gone for good: the run ends after --reconnect-s
    out, err = run.communicate(timeout=60)
    rows = [json.loads(line) for line in out.splitlines()]
    assert run.returncode == 1, err  # windows answered, then the source failed for good
    assert rows[-1]["gaps"] >= 1 and "reconnects" in err and "no frames for 6 s" in err.splitlines()[-1]


def test_live_frames_are_the_file_path_frames_pixel_for_pixel(tmp_path):
    """The live path decodes with PyAV, the file path with torchcodec; both convert to RGB at full
    size and then resize bilinearly in FFmpeg's scaler, so the pixels are the same, and what
    follows is the shared clip module's normalisation."""
    import threading

    from picojepa.core.clips import ClipSpec, normalize
    from picojepa.core.decode import open_video
    from picojepa.runtime.live.reader import LiveOptions, LiveRunner, LiveStats, clip_rgb, frames

    got = [clip_rgb(item[1], 64) for _, item in zip(range(30), frames(str(CLIP), LiveOptions(), LiveStats(),
                                                                        threading.Event()))]
    ref = open_video(CLIP, 64).read(list(range(30)))
    assert np.array_equal(np.stack(got), ref)
    spec = ClipSpec(frames=8, size=64)
    runner = LiveRunner(str(CLIP), spec, LiveOptions(window_s=1.0))
    w = runner.next_window(time.monotonic() + 30)
    runner.close()
    assert np.array_equal(runner.clip(w)[0], normalize(w.frames, spec))


def test_hls_from_a_local_http_server_plays_to_its_end(smoke_bundle, stop_after, tmp_path):
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(CLIP), "-t", "4", "-c:v", "libx264",
                    "-preset", "ultrafast", "-g", "25", "-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
                    str(tmp_path / "index.m3u8")], check=True, timeout=120)
    port = _port()
    stop_after(subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                 "--directory", str(tmp_path)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL))
    time.sleep(1.0)
    r = _run(smoke_bundle, f"http://127.0.0.1:{port}/index.m3u8", "--window", "1")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    summary = r.stderr.splitlines()[-1]
    # a playlist of files is read faster than real time: windows the classifier is behind on are dropped
    classified, dropped = map(int, re.search(r"(\d+) windows classified, (\d+) dropped", summary).groups())
    assert len(rows) == classified >= 1 and classified + dropped >= 3 and "the stream ended" in summary


def test_on_change_prints_a_line_only_when_the_label_changes(smoke_bundle, stop_after):
    port = _port()
    stop_after(_serve(f"tcp://127.0.0.1:{port}?listen=1"))
    time.sleep(0.5)
    r = _run(smoke_bundle, f"tcp://127.0.0.1:{port}", "--window", "0.25", "--duration", "6", "--on-change")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    summary = r.stderr.strip().splitlines()[-1]
    classified = int(summary.split(": ")[1].split()[0])
    assert rows and rows[0]["previous"] is None and len(rows) <= classified
    assert all(a["label"] != b["label"] for a, b in zip(rows, rows[1:]))
    for a, b in zip(rows, rows[1:]):  # each change says how long the label before it held
        assert b["previous"]["label"] == a["label"] and b["previous"]["from_s"] == a["start_s"]
        assert b["previous"]["to_s"] == pytest.approx(b["start_s"]) and b["previous"]["held_s"] > 0


def test_sigterm_ends_the_run_cleanly_with_its_summary(smoke_bundle, stop_after):
    import signal

    port = _port()
    stop_after(_serve(f"tcp://127.0.0.1:{port}?listen=1"))
    time.sleep(0.5)
    run = subprocess.Popen([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(smoke_bundle),
                            "--format", "json", f"tcp://127.0.0.1:{port}", "--window", "0.5"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    stop_after(run)
    time.sleep(4)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=30)
    assert run.returncode == 0, err
    assert out.splitlines() and err.strip().splitlines()[-1].endswith("; stopped")


def test_publish_sends_every_window_result_over_nats(smoke_bundle, stop_after):
    import asyncio

    pytest.importorskip("nats")
    from picojepa.runtime.net.localnet import NatsServer, find_nats_server

    try:
        find_nats_server()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(str(exc))
    port = _port()
    stop_after(_serve(f"tcp://127.0.0.1:{port}?listen=1"))
    time.sleep(0.5)
    with NatsServer(token="s3cret") as server:
        async def listen_while(run_args):
            import nats

            nc = await nats.connect(server.url, token="s3cret")
            got = []

            async def keep(msg):
                got.append(json.loads(msg.data))

            await nc.subscribe("picojepa.live.cam_1", cb=keep)
            await nc.flush()
            r = await asyncio.to_thread(_run, smoke_bundle, *run_args)
            await nc.flush()
            await asyncio.sleep(0.5)
            await nc.close()
            return r, got

        url = f"nats://s3cret@127.0.0.1:{server.port}"
        r, got = asyncio.run(listen_while([f"tcp://127.0.0.1:{port}", "--window", "1", "--duration", "4",
                                           "--publish", url, "--name", "cam 1"]))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert rows and got == rows  # subject picojepa.live.cam_1: the name made subject-safe


def test_many_streams_at_once_share_the_classifier(smoke_bundle, stop_after, tmp_path):
    ports = [_port(), _port()]
    for p in ports:
        stop_after(_serve(f"tcp://127.0.0.1:{p}?listen=1"))
    time.sleep(0.5)
    listing = tmp_path / "streams.txt"
    listing.write_text(f"# two cameras\ntcp://127.0.0.1:{ports[0]} cam-a\n\ntcp://127.0.0.1:{ports[1]} cam-b\n")
    r = subprocess.run([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(smoke_bundle), "--format",
                        "json", "--streams", str(listing), "--window", "1", "--duration", "4.5"],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    by = {s: [row for row in rows if row["stream"] == s] for s in ("cam-a", "cam-b")}
    assert len(by["cam-a"]) >= 2 and len(by["cam-b"]) >= 2 and len(rows) == len(by["cam-a"]) + len(by["cam-b"])
    assert [line.split(":")[0] for line in r.stderr.strip().splitlines()[-2:]] == ["cam-a", "cam-b"]
    bad = tmp_path / "bad.txt"
    bad.write_text(f"tcp://127.0.0.1:{ports[0]} cam\ntcp://127.0.0.1:{ports[1]} cam\n")
    r = subprocess.run([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(smoke_bundle),
                        "--streams", str(bad)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 3 and "the name 'cam' is used twice" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_memory_stays_flat_over_a_long_stream_played_faster_than_real_time(stop_after):
    """About 200 s of video (the clip looped 20 times) pushed as fast as FFmpeg encodes it."""
    from picojepa.benchmarks.stats import rss_mb
    from picojepa.core.clips import ClipSpec
    from picojepa.runtime.live.reader import LiveOptions, LiveRunner

    if rss_mb() is None:
        pytest.skip("no /proc/self/status here")
    port = _port()
    stop_after(subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-stream_loop", "19", "-i", str(CLIP),
                                 "-c:v", "libx264", "-preset", "ultrafast", "-f", "mpegts",
                                 f"tcp://127.0.0.1:{port}?listen=1"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL))
    time.sleep(0.5)
    runner = LiveRunner(f"tcp://127.0.0.1:{port}", ClipSpec(frames=8, size=64),
                        LiveOptions(window_s=0.5, reconnect_s=1.0))
    trace = []
    while (w := runner.next_window(time.monotonic() + 60)) is not None:
        runner.clip(w)
        if runner.stats.frames // 250 > len(trace):
            trace.append(rss_mb())
    runner.close()
    assert runner.stats.frames >= 4000 and len(trace) >= 10, (runner.stats, len(trace))
    k = len(trace) // 5
    growth = np.median(trace[-k:]) - np.median(trace[k:2 * k])
    assert growth < 10, trace  # MiB, from the second to the last fifth of the stream


def _fake_frames(monkeypatch, times, scale: int = 10):
    """`live.frames` replaced by frames at the given stream times (None: a reconnect), each
    converted to a frame whose pixels are int(time x scale) % 256."""
    from picojepa.runtime.live import reader as live

    def fake(source, opts, stats, stop, tap=None):
        for t in times:
            yield None if t is None else (t, t, 1.0)

    monkeypatch.setattr(live, "frames", fake)
    monkeypatch.setattr(live, "clip_rgb",
                        lambda t, size, region=None, one_step=False: np.full((size, size, 3), int(t * scale + 1e-6) % 256, np.uint8))


def test_timestamps_that_jump_or_change_rate_still_give_correct_windows(monkeypatch):
    """A camera restarting (timestamps back to 0), jumping ahead, and its frame rate halving
    mid-stream: no window mixes frames from both sides of a jump, every window spans its length
    of stream time, and a window at the lower frame rate still yields a full clip."""
    import threading

    from picojepa.core.clips import ClipSpec
    from picojepa.runtime.live.reader import LiveOptions, LiveStats, windows

    at30 = [i / 30 for i in range(90)]  # 3 s at 30 fps
    restart = [i / 15 for i in range(45)]  # back to 0 s, 3 s at 15 fps
    ahead = [100 + i / 30 for i in range(60)]  # jumps 97 s ahead, 2 s at 30 fps
    _fake_frames(monkeypatch, at30 + restart + ahead)
    stats = LiveStats()
    got = list(windows("cam", ClipSpec(frames=8, size=16), LiveOptions(window_s=1.0), stats, threading.Event()))
    spans = [(round(w.start_s, 3), round(w.end_s, 3)) for w in got]
    assert spans == [(0, 1), (1, 2), (0, 1), (1, 2), (100, 101)]
    assert [g["reason"].split(" from")[0] for g in stats.gaps] == ["timestamps jumped"] * 2
    assert all(w.frames.shape == (8, 16, 16, 3) for w in got)
    first_restart = got[2].frames[:, 0, 0, 0] / 10  # the frames' stream times, from their pixels
    assert (first_restart < 1.0).all()  # only frames of the restarted series, none from before
    assert all(w.decode_ms > 0 for w in got)


def test_only_the_frames_a_clip_takes_are_converted_and_they_are_the_file_rules_frames(monkeypatch):
    """30 fps for 6 s, 2-s windows every second, clips of 8 frames every 2nd: each window's clip
    holds the frames the file path's centre rule takes from all of the window's frames, but only
    those are converted (the first window, before the frame interval is known, converts all)."""
    import threading

    from picojepa.core.clips import ClipSpec, max_start, window_indices
    from picojepa.runtime.live.reader import LiveOptions, LiveStats, windows

    times = [i / 30 for i in range(180)]
    _fake_frames(monkeypatch, times, scale=30)  # a frame's pixels are its index
    spec, stats = ClipSpec(frames=8, size=8, frame_step=2), LiveStats()
    got = list(windows("cam", spec, LiveOptions(window_s=2.0, stride_s=1.0), stats, threading.Event()))
    assert [(round(w.start_s, 3), round(w.end_s, 3)) for w in got] == [(0, 2), (1, 3), (2, 4), (3, 5)]
    for w in got:
        inside = [t for t in times if w.start_s <= t < w.end_s]
        want = [inside[i] for i in window_indices(len(inside), spec, max_start(len(inside), spec) // 2)]
        assert w.frames[:, 0, 0, 0].tolist() == [int(t * 30 + 1e-6) for t in want]
    assert stats.repicked == 0
    assert stats.converted <= 60 + 8 * 3  # the first window's frames, then 8 a window


def test_a_hole_in_the_stream_moves_the_picks_to_the_frames_that_still_come(monkeypatch):
    """Frames missing in the middle of a window (a lossy network): the window still yields a
    full clip of frames from inside it, and counts as repicked when a frame it needed was gone."""
    import threading

    from picojepa.core.clips import ClipSpec
    from picojepa.runtime.live.reader import LiveOptions, LiveStats, windows

    times = [i / 30 for i in range(120) if not 35 <= i < 50]  # half a second missing in window 1
    _fake_frames(monkeypatch, times, scale=30)
    stats = LiveStats()
    got = list(windows("cam", ClipSpec(frames=8, size=8, frame_step=2), LiveOptions(window_s=1.0),
                       stats, threading.Event()))
    assert [round(w.start_s, 3) for w in got] == [0, 1, 2]
    seen = got[1].frames[:, 0, 0, 0] / 30
    assert all(1.0 <= t < 2.0 for t in seen) and len(seen) == 8
    assert stats.repicked <= 1


def test_a_reconnect_starts_a_new_series_of_windows(monkeypatch):
    import threading

    from picojepa.core.clips import ClipSpec
    from picojepa.runtime.live.reader import LiveOptions, LiveStats, windows

    _fake_frames(monkeypatch, [i / 30 for i in range(45)] + [None] + [2 + i / 30 for i in range(45)])
    stats = LiveStats()
    got = list(windows("cam", ClipSpec(frames=4, size=16), LiveOptions(window_s=1.0), stats, threading.Event()))
    assert [(w.start_s, w.end_s) for w in got] == [(0, 1), (2, 3)]
    assert [g["reason"] for g in stats.gaps] == ["the stream dropped; reconnected"]


def _corrupt(ts: bytes, every: int = 40) -> bytes:
    """Garbage in the payload of every `every`-th 188-byte TS packet (headers kept, so the stream
    still demuxes and the damage reaches the H.264 decoder, as on a lossy link)."""
    buf = bytearray(ts)
    rng = np.random.default_rng(0)
    for off in range(0, len(buf) - 188, 188 * every):
        buf[off + 4:off + 188] = rng.integers(0, 256, 184, dtype=np.uint8).tobytes()
    return bytes(buf)


def test_corrupt_packets_are_skipped_and_the_stream_goes_on(smoke_bundle, stop_after, tmp_path):
    clean = tmp_path / "clean.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(CLIP), "-t", "6", "-c:v", "libx264",
                    "-preset", "ultrafast", "-bf", "2", "-f", "mpegts", str(clean)], check=True, timeout=120)
    bad = tmp_path / "corrupt.ts"
    bad.write_bytes(_corrupt(clean.read_bytes()))
    port = _port()
    stop_after(subprocess.Popen(["ffmpeg", "-v", "quiet", "-nostdin", "-re", "-i", str(bad), "-c", "copy",
                                 "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(0.5)
    r = _run(smoke_bundle, f"tcp://127.0.0.1:{port}", "--window", "1", "--reconnect-s", "2", timeout=90)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert "Traceback" not in r.stderr and len(rows) >= 3, r.stderr
    assert all(row["error"] is None and row["label"] for row in rows)


# Debian's RTSP::Server (librtsp-server-perl, installed by `make test`) started as its
# rtsp-server-perl program starts it: options from the command line, listen, run the event loop
RTSP_SERVER = "RTSP::Server->new_with_options->listen; AnyEvent->condvar->recv"


def _has_rtsp_server() -> bool:
    return subprocess.run(["perl", "-MRTSP::Server", "-e1"], capture_output=True).returncode == 0


def _rtsp_server(stop_after) -> tuple[int, int]:
    """Debian's RTSP server on free loopback ports: (port clients play from, port FFmpeg
    publishes to)."""
    play, publish = _port(), _port()
    rtp = 20000 + 2 * (play % 5000)
    stop_after(subprocess.Popen(["perl", "-MAnyEvent", "-MRTSP::Server", "-e", RTSP_SERVER, "--", "-c", str(play),
                                 "-s", str(publish), "--rtp_start_port", str(rtp), "--client_listen_address",
                                 "127.0.0.1", "--source_listen_address", "127.0.0.1", "-l", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)
    stop_after(subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i", str(CLIP),
                                 "-an", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "30",
                                 "-f", "rtsp", f"rtsp://127.0.0.1:{publish}/cam"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(2.0)
    return play, publish


@pytest.mark.skipif(not _has_rtsp_server(), reason="needs Debian's librtsp-server-perl (make test installs it as root)")
def test_rtsp_through_a_real_rtsp_server(smoke_bundle, stop_after):
    """FFmpeg publishes to Debian's RTSP server; the run plays from it. That server sends RTP
    over UDP only: the default TCP transport is refused with a one-line hint, UDP classifies."""
    play, _ = _rtsp_server(stop_after)
    url = f"rtsp://127.0.0.1:{play}/cam"
    r = _run(smoke_bundle, url, "--window", "1", "--duration", "5", "--rtsp-transport", "udp")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) >= 3 and all(row["error"] is None for row in rows)
    assert [row["end_s"] - row["start_s"] for row in rows] == pytest.approx([1.0] * len(rows))
    r = _run(smoke_bundle, url, "--window", "1", "--duration", "5", "--connect-timeout", "2")
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].endswith("try --rtsp-transport udp")


@pytest.mark.parametrize("flags, cheap", [((), True), (("--loop-filter", "--full-size-convert"), False)])
def test_a_live_run_decodes_cheaply_unless_asked_for_the_files_pixels(monkeypatch, flags, cheap):
    """By default a live source skips the deblocking filter and converts in one step; the two flags
    give the file path's decoding back."""
    from click.testing import CliRunner

    from picojepa.runtime import cli

    asked = []
    monkeypatch.setattr(cli, "run_live", lambda opening, sources, req: asked.append(req.live))
    r = CliRunner().invoke(cli.main, ["--bundle", "b", "rtsp://127.0.0.1:1/x", *flags])
    assert r.exit_code == 0, r.output
    assert (asked[0].skip_loop_filter, asked[0].one_step_convert) == (cheap, cheap)


def test_stream_windows_equal_the_files_windows_when_played_losslessly(smoke_bundle, stop_after):
    """The clip copied packet for packet onto a TCP stream (no re-encoding) and classified live
    with the deblocking filter on and full-size conversion (`--loop-filter --full-size-convert`, as
    files decode) gives the windows `--window 1
    --stride 1` gives for the file: same spans from the start, same labels, same confidence to 1e-5."""
    whole = _run(smoke_bundle, str(CLIP), "--window", "1", "--stride", "1")
    assert whole.returncode == 0, whole.stderr
    files = json.loads(whole.stdout)["windows"]
    port = _port()
    stop_after(subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-re", "-i", str(CLIP), "-c", "copy",
                                 "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(0.5)
    r = _run(smoke_bundle, f"tcp://127.0.0.1:{port}", "--window", "1", "--stride", "1", "--duration", "6.5",
             "--loop-filter", "--full-size-convert")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) >= 4
    t0 = rows[0]["start_s"]
    for row, f in zip(rows, files):
        assert row["start_s"] - t0 == pytest.approx(f["start_s"], abs=1e-3)
        assert row["label"] == f["label"] and row["confidence"] == pytest.approx(f["confidence"], abs=1e-5)
