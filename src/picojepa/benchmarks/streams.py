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
inference and everything else taken as free; with the deblocking filter skipped, a second one.

The levers (`LEVERS`): today's reader (every frame decoded with its deblocking filter, every
window's frames converted as the file path does and classified), the deblocking skip alone, the
motion gate alone, the one-step conversion alone, and all three (what `picojepa-run` does by
default on a live source); a ladder each, the gated share of windows, and
each stream's CPU per second by step at the ladder's top (decode, convert, the gate: the reading
threads' own CPU time; inference: its time per window; the rest of the process: Python and
everything else). Beside the ladder: decoder threads per stream and FFmpeg skipping non-reference
frames, at the default options, each measured with many streams at once.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from picojepa.core.bundle import load_bundle
from picojepa.core.ports import free_ports
from picojepa.runtime.ensemble import Ensemble
from picojepa.runtime.live.classify import classify_streams
from picojepa.runtime.live.motion import DEFAULT_THRESHOLD
from picojepa.runtime.live.options import LiveOptions
from picojepa.runtime.live.reader import LiveRunner

from .errors import BenchError
from .stats import summarize
from .stream_decode import FPS, decode_costs, skip_accuracy
from .streams_md import markdown

__all__ = ["LEVERS", "LEVER_NAMES", "camera_file", "concurrent", "markdown", "streams_report"]
SIZES = ((1280, 720), (640, 360))  # a camera's main stream and its analysis sub-stream
LADDERS = {720: (1, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40), 360: (8, 16, 24, 32, 40, 48, 56, 64, 72, 80)}
TODAY = LiveOptions(2.0, 1.0, None, 10.0, 5.0)  # every frame deblocked, converted in two steps, classified
LEVERS = {"today": TODAY, "deblocking skip": dataclasses.replace(TODAY, skip_loop_filter=True),
          "motion gate": dataclasses.replace(TODAY, motion_gate=DEFAULT_THRESHOLD),
          "one-step conversion": dataclasses.replace(TODAY, one_step_convert=True),
          "all three (the defaults)": dataclasses.replace(TODAY, skip_loop_filter=True, motion_gate=DEFAULT_THRESHOLD,
                                                          one_step_convert=True)}
# `picojepa-bench --lever` -> LEVERS
LEVER_NAMES = dict(zip(("today", "deblock", "gate", "convert", "defaults"), LEVERS))
SECONDS = 15.0  # how long each rung of a ladder runs (`picojepa-bench --stream-seconds`)


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


def _start_servers(camera: Path, n: int, timeout_s: float = 30.0, restarts: int = 3) -> tuple[list, list[int]]:
    """N FFmpeg servers of `camera`, each listening on its own port, waited for until each listens
    on its own socket (read from /proc: a listen=1 server takes one client, so it is not probed by
    connecting; N processes starting on two cores take seconds, and an early reader is refused).
    A server that exits before it listens (its port taken meanwhile) starts again on another port,
    `restarts` times at most; then BenchError, as when they are not all up within `timeout_s`."""
    servers: list = []
    try:
        ports = free_ports(n)
        for port in ports:
            servers.append(_serve(camera, port))
        left, end = restarts, time.monotonic() + timeout_s
        while time.monotonic() < end:
            dead = [i for i, srv in enumerate(servers) if srv.poll() is not None]
            if dead and left <= 0:
                raise BenchError(f"the FFmpeg server on 127.0.0.1:{ports[dead[0]]} exited before listening")
            if dead:
                left -= 1
                for i, port in zip(dead, free_ports(len(dead), set(ports))):
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
            if not w.gated:
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
            "cores_servers": _cores(served0, served, wall), "cores_reader": round((ours - ours0) / wall, 3),
            "no_motion": sum(s.no_motion for s in stats), "gated_share": sum(s.no_motion for s in stats) / max(
                1, sum(s.windows + s.no_motion for s in stats)),
            "cpu_ms_per_stream_s": _breakdown(stats, sum(inference), ours - ours0, wall)}


def _breakdown(stats: list, inference_ms: float, process_s: float, wall: float) -> dict:
    """Each stream's CPU ms per second of wall time by step: the reading threads' own CPU time
    decoding, converting clip frames and scoring motion, and the rest of the process (inference,
    onnxruntime's threads, Python and the loop); beside it inference's wall time per second, which
    on a busy machine includes waiting for a core."""
    n = max(1, len(stats))
    parts = {k: sum(getattr(s, f"{k}_cpu_ms") for s in stats) / wall / n for k in ("decode", "convert", "gate")}
    parts["inference_and_rest"] = process_s * 1e3 / wall / n - sum(parts.values())
    parts["inference_wall"] = inference_ms / wall / n
    return {k: round(v, 2) for k, v in parts.items()}


def _ladder(ens: Ensemble, camera: Path, counts: tuple[int, ...], seconds: float, opts: LiveOptions) -> list:
    """The rungs `counts` up to the first that falls behind, then halving the gap between the
    last that kept up and that one, so that the top is found to one stream (a lever's gain
    smaller than a rung's step would otherwise not show). Runs in order of streams."""
    runs = []
    for n in counts:
        runs.append(concurrent(ens, camera, n, seconds, opts))
        if not runs[-1]["real_time"]:
            break  # more streams cannot keep up either
    kept = [r["streams"] for r in runs if r["real_time"]]
    if runs[-1]["real_time"] or not kept:  # the whole ladder kept up, or not even its first rung
        return runs
    lo, hi = max(kept), runs[-1]["streams"]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        runs.append(concurrent(ens, camera, mid, seconds, opts))
        lo, hi = (mid, hi) if runs[-1]["real_time"] else (lo, mid)
    return sorted(runs, key=lambda r: r["streams"])


def _most(runs: list) -> int:
    return max([r["streams"] for r in runs if r["real_time"]], default=0)


def _size_report(ens: Ensemble, camera: Path, size: tuple[int, int], ladder: tuple[int, ...], seconds: float,
                 levers: tuple[str, ...], cores: int) -> dict:
    """One size: the limit lines, a ladder per lever, and at the last lever's first count that
    fell behind decoder threads 0/2 and skipping non-reference frames."""
    decode = decode_costs(camera, ens.bundle.clip.size)
    runs = {name: _ladder(ens, camera, ladder, seconds, LEVERS[name]) for name in levers}
    last = runs[levers[-1]]
    probe = next((r["streams"] for r in last if not r["real_time"]), last[-1]["streams"])
    base = LEVERS[levers[-1]]
    variants = {f"{levers[-1]}, decoder threads 1": [r for r in last if r["streams"] == probe][0]}
    for name, opts in (("decoder threads 2", dataclasses.replace(base, decoder_threads=2)),
                       ("decoder threads 0 (FFmpeg's choice)", dataclasses.replace(base, decoder_threads=0)),
                       ("skip non-reference frames", dataclasses.replace(base, skip_frame="nonref"))):
        variants[name] = concurrent(ens, camera, probe, seconds, opts)
    most = {name: _most(r) for name, r in runs.items()}
    return {"size": f"{size[0]}x{size[1]}", "levers": runs, "runs": last, "max_real_time_streams": most[levers[-1]],
            "most_by_lever": most, "limit_streams": cores * 1000.0 / (decode["default"]["decode_ms_per_frame_out"] * FPS),
            "limit_streams_loop_filter_skipped": cores * 1000.0 / (
                decode["loop_filter_skipped"]["decode_ms_per_frame_out"] * FPS),
            "decode": decode, "variants_at": probe, "variants": variants}


def streams_report(bundle: Path, source: str, seconds: float = SECONDS, threads: int = 0,
                   ladders: dict | None = None, labelled: list[Path] = (), levers: tuple[str, ...] = tuple(LEVERS)) -> dict:
    """Per size: a ladder of concurrent streams per lever (`LEVERS`: today's reader, each lever
    alone, all three), this machine's limit lines, and at the last lever's ladder top (the most streams
    in real time + one step) decoder threads 0/2 and skipping non-reference frames."""
    ladders = ladders or LADDERS
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="picojepa-streams-") as tmp:  # the camera files go with them
        ens = Ensemble.load(bundle, provider="cpu", threads=threads)
        sizes = [_size_report(ens, camera_file(source, Path(tmp), size), size, ladders[size[1]], seconds, levers, cores)
                 for size in SIZES]
        labelled = [Path(v) for v in labelled if Path(v).parent.name in ens.classes]
        skip = skip_accuracy(ens, labelled) if labelled else None
        return {"skip_accuracy": skip, "source": str(source), "camera": f"{FPS} fps H.264 (B-frames, GOP 2 s) over TCP",
                "cores": cores, "bundle": str(bundle), "clip": load_bundle(bundle).clip.to_dict(), "window_s": 2.0,
                "stride_s": 1.0, "levers": list(levers), "gate_threshold": DEFAULT_THRESHOLD, "sizes": sizes}
