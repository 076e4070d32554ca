"""Live streams on this machine (`picojepa-bench --streams`): how many concurrent camera streams
the bundle classifies in real time, at the main-stream size (1280x720) and a sub-stream size
(640x360), beside the physical bound of this machine, and where the time goes.

A real clip is scaled to each size at 30 fps (H.264 with B-frames, a GOP of 2 s, as cameras send)
and served N times at once by FFmpeg over TCP on loopback (`-re -c copy`: the servers only copy
packets). `picojepa-run --streams`'s own code reads and classifies them for `seconds`, window
2 s, stride 1 s. A stream keeps up when no window was dropped and its frames arrived at the
stream's rate. Latency: from the arrival of a window's last frame to its result.

The limit line: decoding every frame is work no reader avoids (H.264 needs its references), so
this machine's cores divided by one stream's decode cost per second (ms a frame, measured flat
out on one stream with one decoder thread, x 30 fps) bounds the streams, with conversion,
inference and everything else taken as free. Beside the ladder: decoder threads per stream and
FFmpeg skipping non-reference frames, each measured with many streams at once.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from picojepa.core.bundle import load_bundle
from picojepa.core.clips import normalize
from picojepa.runtime.ensemble import Decoded, Ensemble
from picojepa.runtime.live.classify import classify_streams
from picojepa.runtime.live.options import LiveOptions, LiveStats
from picojepa.runtime.live.reader import LiveRunner, windows
from picojepa.runtime.live.source import clip_rgb

from .errors import BenchError
from .stats import summarize

FPS = 30
SIZES = ((1280, 720), (640, 360))  # a camera's main stream and its analysis sub-stream
LADDERS = {720: (1, 4, 8, 12, 16, 20, 24), 360: (8, 16, 24, 32, 40, 48, 64)}


def camera_file(source: str, tmp: Path, size: tuple[int, int] = SIZES[0], seconds: int = 20) -> Path:
    """`source` as a camera would send it at `size`, 30 fps: H.264, B-frames, 2-s GOP, MPEG-TS."""
    width, height = size
    out = tmp / f"camera{height}p{FPS}.ts"
    done = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-stream_loop", "-1", "-i", str(source), "-t",
                           str(seconds), "-an", "-vf", f"scale={width}:{height},fps={FPS}", "-c:v", "libx264",
                           "-preset", "veryfast", "-bf", "2", "-g", str(2 * FPS), "-f", "mpegts", str(out)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode:
        why = " ".join(done.stderr.split())[-160:] or f"ffmpeg exit {done.returncode}"
        raise BenchError(f"{source}: cannot be made into a camera stream ({why})")
    return out


def _serve(path: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(["ffmpeg", "-v", "quiet", "-nostdin", "-re", "-stream_loop", "-1", "-i", str(path),
                             "-c", "copy", "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _listeners() -> dict[int, set[str]] | None:
    """Each TCP port something listens on here -> the socket inodes listening there (Linux's
    /proc/net/tcp); None where there is no /proc to read."""
    found, read = {}, False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        read = True
        for r in (row.split() for row in rows):
            if r[3] == "0A":  # LISTEN
                found.setdefault(int(r[1].rsplit(":", 1)[1], 16), set()).add(r[9])
    return found if read else None


def _sockets(pid: int) -> set[str]:
    """The socket inodes a process holds open."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return set()
    out = set()
    for fd in fds:
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(link[8:-1])
    return out


def _serving(servers: list, ports: list[int]) -> bool | None:
    """Whether every server listens on its own port (its own socket: not something else that took
    the port); None where /proc cannot tell."""
    listening = _listeners()
    if listening is None:
        return None
    return all(listening.get(port, set()) & _sockets(srv.pid) for srv, port in zip(servers, ports))


def _distinct_ports(n: int, taken: set[int] = frozenset()) -> list[int]:
    """N free loopback ports, all different (each held until all are chosen) and none of `taken`."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
            if sock.getsockname()[1] not in taken:
                ports.append(sock.getsockname()[1])
    finally:
        for sock in socks:
            sock.close()
    return ports


def _start_servers(camera: Path, n: int, timeout_s: float = 30.0, restarts: int = 3) -> tuple[list, list[int]]:
    """N FFmpeg servers of `camera`, each listening on its own port, waited for until each listens
    on its own socket (read from /proc: a listen=1 server takes one client, so it is not probed by
    connecting; N processes starting on two cores take seconds, and an early reader is refused).
    A server that exits before it listens (its port taken meanwhile) starts again on another port,
    `restarts` times at most; then BenchError, as when they are not all up within `timeout_s`."""
    servers: list = []
    try:
        ports = _distinct_ports(n)
        for port in ports:
            servers.append(_serve(camera, port))
        left, end = restarts, time.monotonic() + timeout_s
        while time.monotonic() < end:
            dead = [i for i, srv in enumerate(servers) if srv.poll() is not None]
            if dead and left <= 0:
                raise BenchError(f"the FFmpeg server on 127.0.0.1:{ports[dead[0]]} exited before listening")
            if dead:
                left -= 1
                for i, port in zip(dead, _distinct_ports(len(dead), set(ports))):
                    ports[i], servers[i] = port, _serve(camera, port)
                continue
            up = _serving(servers, ports)
            if up is None:  # no /proc: give them the time they usually need
                time.sleep(0.5 + 0.05 * n)
            if up is not False:
                return servers, ports
            time.sleep(0.1)
        raise BenchError(f"the {n} FFmpeg servers were not all listening after {timeout_s:g} s")
    except BaseException:
        _stop(servers)
        raise


def _stop(servers: list) -> None:
    """Kill every server, then reap each (one that will not go is left to the OS, never waited on forever)."""
    for srv in servers:
        srv.kill()
    for srv in servers:
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            pass


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far; None where /proc does not say."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _cores(before: list, after: list, wall: float) -> float | None:
    """Cores the processes kept busy between two `_cpu_s` readings over `wall` seconds."""
    if None in before or None in after:
        return None
    return round((sum(after) - sum(before)) / wall, 3)


def concurrent(ens: Ensemble, camera: Path, n: int, seconds: float, opts: LiveOptions) -> dict:
    """N streams served at once and classified together for `seconds` of wall time; with the
    cores the FFmpeg servers (standing in for the cameras) and the reading, classifying process
    each kept busy meanwhile."""
    servers, ports = _start_servers(camera, n)
    served0, ours0 = [_cpu_s(s.pid) for s in servers], time.process_time()
    runners: dict = {}
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    latency, decode, inference, t0 = [], [], [], time.monotonic()
    try:
        for i, port in enumerate(ports):  # one by one: those started are closed below if one fails
            runners[f"cam{i}"] = LiveRunner(f"tcp://127.0.0.1:{port}", ens.bundle.clip, opts)
        timer.start()
        for _, w, pred in classify_streams(ens, runners, "majority", stop):
            latency.append((time.time() - w.wall_time) * 1e3)
            decode.append(pred.timings_ms["decode"])
            inference.append(pred.timings_ms["inference"])
    finally:
        timer.cancel()
        wall = time.monotonic() - t0
        served, ours = [_cpu_s(s.pid) for s in servers], time.process_time()
        for r in runners.values():
            r.close()
        _stop(servers)
    stats = [r.stats for r in runners.values()]
    fps = [s.frames / wall for s in stats]
    errors = [str(r.error) for r in runners.values() if r.error]
    return {"streams": n, "seconds": round(wall, 1), "windows": sum(s.windows for s in stats),
            "dropped": sum(s.dropped for s in stats), "fps_per_stream": [round(f, 1) for f in fps],
            "fps_min": round(min(fps), 1), "converted_per_decoded": sum(s.converted for s in stats) / max(
                1, sum(s.frames for s in stats)), "repicked": sum(s.repicked for s in stats),
            "real_time": not errors and all(s.dropped == 0 for s in stats) and min(fps) >= 0.9 * FPS,
            "latency_ms": summarize(latency), "decode_ms_per_window": summarize(decode),
            "inference_ms_per_window": summarize(inference), "errors": errors,
            "cores_servers": _cores(served0, served, wall), "cores_reader": round((ours - ours0) / wall, 3)}


def decode_costs(camera: Path, size: int, frames: int = 300) -> dict:
    """ms per frame of one stream decoded flat out (the first `frames` packets): every frame,
    and with non-reference frames skipped; and the part of each that is converting and scaling
    it to the clip's size as the live path does (two swscale steps, pixel-identical to the file
    path), beside one combined step (cheaper, ~2 grey levels off)."""
    import av  # optional extra (live)

    out = {}
    for mode in ("DEFAULT", "NONREF"):
        with av.open(str(camera)) as c:
            stream = c.streams.video[0]
            stream.codec_context.skip_frame = mode
            stream.codec_context.thread_count = 1  # the limit line's cost: one core's work per frame
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


def skip_accuracy(ens: Ensemble, videos: list[Path], window_s: float = 1.0) -> dict:
    """Labelled videos (the folder names the class) read by the live path, as a stream would be,
    windows of `window_s` every `window_s`: the vote's accuracy over the windows and the frames
    decoded, with every frame decoded and with FFmpeg skipping the non-reference frames (the clip
    then comes from the frames that remain)."""
    out = {}
    for mode in ("none", "nonref"):
        opts = LiveOptions(window_s, None, None, 10.0, 5.0, skip_frame=mode)
        right = total = frames = 0
        for v in videos:
            stats = LiveStats()
            for w in windows(str(v), ens.bundle.clip, opts, stats, threading.Event()):
                clip = normalize(w.frames, ens.bundle.clip)[None]
                pred = ens.finish(Decoded(str(v), clip, [(w.start_s, w.end_s)], 0.0, 0.0), "majority")
                right += pred.label == Path(v).parent.name
                total += 1
            frames += stats.frames
        out[mode] = {"windows": total, "accuracy": 100.0 * right / max(1, total), "frames_decoded": frames}
    return out


def _ladder(ens: Ensemble, camera: Path, counts: tuple[int, ...], seconds: float, opts: LiveOptions) -> list:
    runs = []
    for n in counts:
        runs.append(concurrent(ens, camera, n, seconds, opts))
        if not runs[-1]["real_time"]:
            break  # more streams cannot keep up either
    return runs


def _most(runs: list) -> int:
    return max([r["streams"] for r in runs if r["real_time"]], default=0)


def streams_report(bundle: Path, source: str, seconds: float = 15.0, threads: int = 0,
                   ladders: dict | None = None, labelled: list[Path] = ()) -> dict:
    """Per size: the ladder of concurrent streams under the runtime's defaults, this machine's
    limit line, and at the ladder's top (the most streams in real time + one step) decoder
    threads 0/2 and skipping non-reference frames, side by side with the default."""
    ladders = ladders or LADDERS
    base = LiveOptions(2.0, 1.0, None, 10.0, 5.0)
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="picojepa-streams-") as tmp:  # the camera files go with them
        ens = Ensemble.load(bundle, provider="cpu", threads=threads)
        sizes = []
        for size in SIZES:
            camera = camera_file(source, Path(tmp), size)
            decode = decode_costs(camera, ens.bundle.clip.size)
            per_stream_ms = decode["default"]["decode_ms_per_frame_out"] * FPS
            runs = _ladder(ens, camera, ladders[size[1]], seconds, base)
            most = _most(runs)
            probe = next((r["streams"] for r in runs if not r["real_time"]), runs[-1]["streams"])
            variants = {"decoder threads 1 (default)": [r for r in runs if r["streams"] == probe][0]}
            for name, opts in (("decoder threads 2", dataclasses.replace(base, decoder_threads=2)),
                               ("decoder threads 0 (FFmpeg's choice)", dataclasses.replace(base, decoder_threads=0)),
                               ("skip non-reference frames", dataclasses.replace(base, skip_frame="nonref"))):
                variants[name] = concurrent(ens, camera, probe, seconds, opts)
            sizes.append({"size": f"{size[0]}x{size[1]}", "runs": runs, "max_real_time_streams": most,
                          "limit_streams": cores * 1000.0 / per_stream_ms, "decode": decode,
                          "variants_at": probe, "variants": variants})
        labelled = [Path(v) for v in labelled if Path(v).parent.name in ens.classes]
        skip = skip_accuracy(ens, labelled) if labelled else None
        return {"skip_accuracy": skip, "source": str(source), "camera": f"{FPS} fps H.264 (B-frames, GOP 2 s) over TCP", "cores": cores,
                "bundle": str(bundle), "clip": load_bundle(bundle).clip.to_dict(), "window_s": 2.0,
                "stride_s": 1.0, "sizes": sizes}


def _row(x: dict, label: str) -> str:
    cores = "–" if x.get("cores_servers") is None else f"{x['cores_servers']:.2f}"
    return (f"| {label} | {'yes' if x['real_time'] else 'no'} | {x['windows']} ({x['dropped']}) | {x['fps_min']:.1f} | "
            f"{x['latency_ms'].get('p50', 0):.0f} / {x['latency_ms'].get('p90', 0):.0f} | "
            f"{x['decode_ms_per_window'].get('p50', 0):.0f} | {x['inference_ms_per_window'].get('p50', 0):.1f} | "
            f"{x['converted_per_decoded']:.2f} | {x.get('cores_reader', 0):.2f} / {cores} |")


HEAD = ["| streams | real time | windows (dropped) | slowest stream fps | latency p50 / p90 ms | "
        "decode+convert ms per window p50 | inference ms per window p50 | frames converted / decoded | "
        "cores busy: reader / FFmpeg servers |",
        "|---|---|---|---|---|---|---|---|---|"]


def markdown(r: dict) -> str:
    lines = ["# Live streams on this machine (`picojepa-bench --streams`)", "",
             f"Camera: {r['camera']}, from `{Path(r['source']).name}`; bundle `{r['bundle']}`; window "
             f"{r['window_s']:g} s, stride {r['stride_s']:g} s; {r['cores']} cores. Real time: no window dropped "
             f"and every stream's frames read at >= 90 % of {FPS} fps.", ""]
    for z in r["sizes"]:
        d = z["decode"]
        lines += [f"## {z['size']}", "", *HEAD]
        lines += [_row(x, str(x["streams"])) for x in z["runs"]]
        lines += ["", f"**Most streams in real time: {z['max_real_time_streams']}; limit line "
                      f"{z['limit_streams']:.1f}** ({r['cores']} cores / (decoding every frame, "
                      f"{d['default']['decode_ms_per_frame_out']:.2f} ms a frame x {FPS} fps), everything else at zero).",
                  "", f"At {z['variants_at']} streams:", "", *HEAD]
        lines += [_row(x, name) for name, x in z["variants"].items()]
        lines += ["", f"One stream flat out, one decoder thread: {d['default']['decode_ms_per_frame_out']:.2f} ms decode + "
                      f"{d['default']['scale_ms_per_frame_out']:.2f} ms converting a frame; skipping non-reference "
                      f"frames keeps {d['frames_kept_by_nonref']:.0%} of them at {d['nonref']['decode_ms_per_frame_out']:.2f} "
                      "ms each. Converting in one swscale step instead of the file path's two: "
                      f"{d['default']['one_step_scale_ms_per_frame_out']:.2f} ms a frame (pixels ~2 grey levels off).", ""]
    if r.get("skip_accuracy"):
        k = r["skip_accuracy"]
        lines += ["## Skipping non-reference frames: accuracy", "",
                  f"The labelled videos read by the live path (1-s windows, majority vote): every frame decoded "
                  f"{k['none']['accuracy']:.1f} % of {k['none']['windows']} windows ({k['none']['frames_decoded']} "
                  f"frames decoded); non-reference frames skipped {k['nonref']['accuracy']:.1f} % of "
                  f"{k['nonref']['windows']} windows ({k['nonref']['frames_decoded']} frames decoded).", ""]
    return "\n".join(lines)
