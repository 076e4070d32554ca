"""Live streams on this machine (`picojepa-bench --streams`): how many concurrent 720p30 camera
streams the bundle classifies in real time, where the time goes, and how late results come.

A real clip is scaled to 1280x720 at 30 fps (H.264 with B-frames, a GOP of 2 s, as cameras send)
and served N times at once by FFmpeg over TCP on loopback (`-re -c copy`: the servers only copy
packets). `picojepa-run --streams`'s own code reads and classifies them for `seconds`, window
2 s, stride 1 s. A stream keeps up when no window was dropped and its frames arrived at the
stream's rate. Latency: from the arrival of a window's last frame to its result.

The cost to beat is decoding every frame of every stream. Beside it, per frame of one stream
decoded as fast as it goes: FFmpeg skipping the non-reference frames (`skip_frame=NONREF`), and
the part that is scaling the frame down to the clip's size (the H.264 decoder has no
reduced-size decoding: FFmpeg's `lowres` is for a few older codecs).
"""
from __future__ import annotations

import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from picojepa.core.bundle import load_bundle
from picojepa.runtime.ensemble import Ensemble
from picojepa.runtime.live import LiveOptions, LiveRunner, classify_streams, clip_rgb

from .errors import BenchError
from .stats import summarize

FPS, WIDTH, HEIGHT = 30, 1280, 720


def camera_file(source: str, tmp: Path, seconds: int = 20) -> Path:
    """`source` as a 720p30 camera would send it: H.264, B-frames, 2-s GOP, MPEG-TS."""
    out = tmp / "camera720p30.ts"
    done = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-stream_loop", "-1", "-i", str(source), "-t",
                           str(seconds), "-an", "-vf", f"scale={WIDTH}:{HEIGHT},fps={FPS}", "-c:v", "libx264",
                           "-preset", "veryfast", "-bf", "2", "-g", str(2 * FPS), "-f", "mpegts", str(out)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode:
        why = " ".join(done.stderr.split())[-160:] or f"ffmpeg exit {done.returncode}"
        raise BenchError(f"{source}: cannot be made into a camera stream ({why})")
    return out


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(path: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(["ffmpeg", "-v", "quiet", "-nostdin", "-re", "-stream_loop", "-1", "-i", str(path),
                             "-c", "copy", "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def concurrent(ens: Ensemble, camera: Path, n: int, seconds: float, window_s: float = 2.0,
               stride_s: float = 1.0) -> dict:
    """N streams served at once and classified together for `seconds` of wall time."""
    ports = [_port() for _ in range(n)]
    servers = [_serve(camera, p) for p in ports]
    time.sleep(0.5)
    opts = LiveOptions(window_s, stride_s, None, 10.0, 5.0)
    runners = {f"cam{i}": LiveRunner(f"tcp://127.0.0.1:{p}", ens.bundle.clip, opts) for i, p in enumerate(ports)}
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    latency, decode, inference, t0 = [], [], [], time.monotonic()
    timer.start()
    try:
        for _, w, pred in classify_streams(ens, runners, "majority", stop):
            latency.append((time.time() - w.wall_time) * 1e3)
            decode.append(pred.timings_ms["decode"])
            inference.append(pred.timings_ms["inference"])
    finally:
        timer.cancel()
        wall = time.monotonic() - t0
        for r in runners.values():
            r.close()
        for s in servers:
            s.kill()
            s.wait(10)
    stats = [r.stats for r in runners.values()]
    fps = [s.frames / wall for s in stats]
    errors = [str(r.error) for r in runners.values() if r.error]
    return {"streams": n, "seconds": round(wall, 1), "windows": sum(s.windows for s in stats),
            "dropped": sum(s.dropped for s in stats), "fps_per_stream": [round(f, 1) for f in fps],
            "real_time": not errors and all(s.dropped == 0 for s in stats) and min(fps) >= 0.9 * FPS,
            "latency_ms": summarize(latency), "decode_ms_per_window": summarize(decode),
            "inference_ms_per_window": summarize(inference), "errors": errors}


def decode_costs(camera: Path, size: int, frames: int = 300) -> dict:
    """ms per frame of one stream decoded flat out (the first `frames` packets): every frame,
    and with non-reference frames skipped; and the part of each that is converting and scaling
    it to the clip's size as the live path does (two swscale steps, pixel-identical to the file
    path), beside one combined step (cheaper, ~2 grey levels off)."""
    import av

    out = {}
    for mode in ("DEFAULT", "NONREF"):
        with av.open(str(camera)) as c:
            stream = c.streams.video[0]
            stream.codec_context.skip_frame = mode
            got, decode_s, scale_s, one_step_s = 0, 0.0, 0.0, 0.0
            for k, packet in enumerate(c.demux(stream)):
                if k >= frames:
                    break
                t0 = time.perf_counter()
                decoded = packet.decode()
                decode_s += time.perf_counter() - t0
                for f in decoded:
                    t1 = time.perf_counter()
                    clip_rgb(f, size)  # the live path's conversion and resize
                    t2 = time.perf_counter()
                    f.to_ndarray(width=size, height=size, format="rgb24", interpolation="BILINEAR")
                    scale_s += t2 - t1
                    one_step_s += time.perf_counter() - t2
                    got += 1
        out[mode.lower()] = {"frames_out": got, "decode_ms_per_frame_out": decode_s * 1e3 / got,
                             "scale_ms_per_frame_out": scale_s * 1e3 / got,
                             "one_step_scale_ms_per_frame_out": one_step_s * 1e3 / got}
    d, s = out["default"], out["nonref"]
    # per second of stream: every frame vs what skipping leaves (I and P frames only)
    kept = s["frames_out"] / max(1, d["frames_out"])
    out["frames_kept_by_nonref"] = kept
    out["decode_ms_per_stream_second"] = {"every_frame": (d["decode_ms_per_frame_out"] + d["scale_ms_per_frame_out"]) * FPS,
                                          "nonref_skipped": (s["decode_ms_per_frame_out"] + s["scale_ms_per_frame_out"]) * FPS * kept}
    return out


def streams_report(bundle: Path, source: str, counts: tuple[int, ...] = (1, 2, 4, 6), seconds: float = 15.0,
                   threads: int = 0) -> dict:
    with tempfile.TemporaryDirectory(prefix="picojepa-streams-") as tmp:  # the camera file goes with it
        camera = camera_file(source, Path(tmp))
        ens = Ensemble.load(bundle, provider="cpu", threads=threads)
        runs = []
        for n in counts:
            runs.append(concurrent(ens, camera, n, seconds))
            if not runs[-1]["real_time"]:
                break  # more streams cannot keep up either
        ok = [r["streams"] for r in runs if r["real_time"]]
        return {"source": str(source), "camera": f"{WIDTH}x{HEIGHT} {FPS} fps H.264 (B-frames, GOP 2 s) over TCP",
                "bundle": str(bundle), "clip": load_bundle(bundle).clip.to_dict(), "window_s": 2.0,
                "stride_s": 1.0, "runs": runs, "max_real_time_streams": max(ok) if ok else 0,
                "decode": decode_costs(camera, ens.bundle.clip.size)}


def markdown(r: dict) -> str:
    lines = ["# Live streams on this machine (`picojepa-bench --streams`)", "",
             f"Camera: {r['camera']}, from `{Path(r['source']).name}`; bundle `{r['bundle']}`; window "
             f"{r['window_s']:g} s, stride {r['stride_s']:g} s. Real time: no window dropped and every "
             f"stream's frames read at >= 90 % of {FPS} fps.", "",
             "| streams | real time | windows | dropped | fps per stream | latency p50 / p90 ms | "
             "decode ms per window p50 | inference ms per window p50 |", "|---|---|---|---|---|---|---|---|"]
    for x in r["runs"]:
        lines.append(f"| {x['streams']} | {'yes' if x['real_time'] else 'no'} | {x['windows']} | {x['dropped']} | "
                     f"{', '.join(map(str, x['fps_per_stream']))} | {x['latency_ms'].get('p50', 0):.0f} / "
                     f"{x['latency_ms'].get('p90', 0):.0f} | {x['decode_ms_per_window'].get('p50', 0):.0f} | "
                     f"{x['inference_ms_per_window'].get('p50', 0):.1f} |")
    d = r["decode"]
    per_s = d["decode_ms_per_stream_second"]
    lines += ["", f"**Most streams in real time: {r['max_real_time_streams']}.**", "",
              f"Decoding one stream flat out: every frame {d['default']['decode_ms_per_frame_out']:.2f} ms decode + "
              f"{d['default']['scale_ms_per_frame_out']:.2f} ms scaling per frame; skipping non-reference frames "
              f"keeps {d['frames_kept_by_nonref']:.0%} of them at {d['nonref']['decode_ms_per_frame_out']:.2f} + "
              f"{d['nonref']['scale_ms_per_frame_out']:.2f} ms each. Converting and scaling in one swscale "
              f"step instead of the file path's two would cost {d['default']['one_step_scale_ms_per_frame_out']:.2f} "
              "ms a frame (pixels ~2 grey levels off). Per second of stream: "
              f"{per_s['every_frame']:.0f} ms of a core decoding every frame, {per_s['nonref_skipped']:.0f} ms "
              "with non-reference frames skipped."]
    return "\n".join(lines) + "\n"
