"""What every camera of a live run is doing, over HTTP: `picojepa-run SOURCE --http 127.0.0.1:8080`.

- `/metrics`: Prometheus' text format, through the official client library (prometheus-client):
  per camera the frames decoded and converted, windows classified, answered `no motion` by the
  motion gate and dropped, reconnects, gaps
  and windows off the frame grid (counters read from the readers' own statistics at scrape time,
  so they are the numbers the run prints), whether the stream is up, and histograms of the latency
  from a window's last frame to its result and of the inference per window.
- `/api/status`: the same as JSON, with each camera's latest result and its recent label changes
  (with their event clips, where the camera records).
- `/snapshot/<camera>.jpg`: the last frame of the camera's latest window, as the model saw it
  (region and resize applied), as a JPEG.
- `/clips/<file>`: an event clip or snapshot of the clips folder (nothing outside it).
- `/`: a small page that shows them, refreshed every two seconds from `/api/status`.

The server is the standard library's threading HTTP server in a thread of its own: a scrape never
waits for the classifier, nor the classifier for a scrape. It is bounded: each read and write of a
connection, and the whole request (line and headers), have a deadline (`TIMEOUT_S`); at most
`MAX_CONNECTIONS` are served at once, a new one beyond that taking the place of the oldest that has
not sent its request yet (else it is answered 503), so idle or half-sent connections cannot hold
the threads; a client that goes away is a debug log record, not a traceback.
"""
from __future__ import annotations

import collections
import io
import json
import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote

from picojepa.core.errors import PicoJepaError, UsageError

from .httpserver import BoundedHTTPServer

EVENTS_KEPT = 20
TIMEOUT_S = 5.0  # each read and write of a connection, and the whole request (line and headers)
MAX_CONNECTIONS = 32  # served at once
COUNTERS = (  # metric name (without _total), LiveStats attribute, help
    ("picojepa_frames_decoded", "frames", "Frames decoded from the stream."),
    ("picojepa_frames_converted", "converted", "Frames converted to RGB clip frames (those a clip takes)."),
    ("picojepa_windows_classified", "windows", "Windows classified."),
    ("picojepa_windows_no_motion", "no_motion", "Windows the motion gate answered 'no motion' (not classified)."),
    ("picojepa_windows_dropped", "dropped", "Windows dropped because the classifier was behind."),
    ("picojepa_reconnects", "reconnects", "Times the stream dropped and was reopened."),
    ("picojepa_windows_repicked", "repicked", "Windows whose frames were off the stream's frame grid."),
)


class StatusError(PicoJepaError, RuntimeError):
    """The status server could not listen where it was asked to."""


def _name(path: str | None) -> str | None:
    return None if not path else path.rsplit("/", 1)[-1]


def _jpeg(rgb) -> bytes:
    """uint8 (H, W, 3) RGB -> JPEG bytes, through FFmpeg's MJPEG encoder (PyAV)."""
    import av  # optional extra `live`

    buf = io.BytesIO()
    with av.open(buf, "w", format="mjpeg") as out:
        s = out.add_stream("mjpeg")
        s.width, s.height, s.pix_fmt = rgb.shape[1], rgb.shape[0], "yuvj420p"
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")
        for p in [*s.encode(frame), *s.encode(None)]:
            out.mux(p)
    return buf.getvalue()


def parse_listen(value: str) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port); a usage error otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--http {value}: give HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def _prometheus():
    try:
        import prometheus_client  # optional extra `metrics`
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # optional extra `metrics`
    except ImportError:
        raise StatusError("--http needs prometheus-client: pip install 'picojepa[metrics]' (or make install)") from None
    return prometheus_client, CounterMetricFamily, GaugeMetricFamily


class Status:
    """The run's cameras (name -> LiveRunner), their recorders (name -> recorder.Recorder, for the
    cameras that record; the dict may change as the run goes) and what came of their windows."""

    def __init__(self, runners: dict, clips_dir: str | None = None, recorders: dict | None = None,
                 publisher=None):
        prom, self._counter, self._gauge = _prometheus()
        self.runners, self.started, self.clips_dir = runners, time.time(), clips_dir
        self.recorders = recorders if recorders is not None else {}
        self.publisher = publisher  # publish.Publishers: each target's connection and message counts
        self.latest: dict[str, dict] = {}
        self.frames: dict[str, object] = {}  # camera -> uint8 (S, S, 3): its latest window's last frame
        self.events = collections.defaultdict(lambda: collections.deque(maxlen=EVENTS_KEPT))  # cameras may come
        self._lock = threading.Lock()
        self.registry = prom.CollectorRegistry()
        self.latency = prom.Histogram("picojepa_window_latency_seconds", "From a window's last frame to its result.",
                                      ["camera"], registry=self.registry,
                                      buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10))
        self.inference = prom.Histogram("picojepa_inference_seconds", "Inference per window.", ["camera"],
                                        registry=self.registry,
                                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
        self.registry.register(self)  # collect(): the readers' counters at scrape time
        self._text = prom.generate_latest

    def collect(self):
        families = {name: self._counter(name, help_, labels=["camera"]) for name, _, help_ in COUNTERS}
        gaps = self._counter("picojepa_gaps", "Gaps in the stream (drops and timestamp jumps).", labels=["camera"])
        up = self._gauge("picojepa_stream_up", "1 while the stream is being read, 0 once it ended or failed.",
                         labels=["camera"])
        for n, r in list(self.runners.items()):
            for name, attr, _ in COUNTERS:
                families[name].add_metric([n], getattr(r.stats, attr))
            gaps.add_metric([n], len(r.stats.gaps))
            up.add_metric([n], 0 if r.finished or r.error else 1)
        yield from families.values()
        yield gaps
        yield up
        yield from self._recording()
        yield from self._publishing()

    def _publishing(self):
        """Per publishing target (its URL, credentials masked): connected or not, messages lost."""
        if self.publisher is None:
            return
        up = self._gauge("picojepa_publish_connected", "1 while connected to the broker or NATS server.",
                         labels=["target"])
        lost = self._counter("picojepa_publish_lost", "Messages that did not reach the broker.", labels=["target"])
        for target, s in self.publisher.state().items():
            up.add_metric([target], 1 if s.get("connected") else 0)
            lost.add_metric([target], s.get("lost", 0))
        yield from (up, lost)

    def _recording(self):
        """Per recording camera: whether its recording stream is up, the clips written and failed."""
        up = self._gauge("picojepa_recording_up", "1 while the recording stream delivers packets, 0 otherwise.",
                         labels=["camera"])
        written = self._counter("picojepa_clips_written", "Event clips written.", labels=["camera"])
        failed = self._counter("picojepa_clips_failed", "Event clips not written (recording stream down, "
                               "folder not writable, disk full).", labels=["camera"])
        outages = self._counter("picojepa_recording_outages", "Times the recording stream failed.",
                                labels=["camera"])
        for n, rec in list(self.recorders.items()):
            s = rec.state()
            up.add_metric([n], 1 if s["up"] else 0)
            written.add_metric([n], s["clips_written"])
            failed.add_metric([n], s["clips_failed"])
            outages.add_metric([n], s["outages"])
        yield from (up, written, failed, outages)

    def record(self, name: str, w, pred, row: dict) -> None:
        """One classified window of camera `name` (its Window, Prediction and printed row)."""
        self.latency.labels(name).observe(max(0.0, time.time() - w.wall_time))
        if not getattr(w, "gated", False):  # a 'no motion' window ran no inference
            self.inference.labels(name).observe(pred.timings_ms.get("inference", 0.0) / 1e3)
        with self._lock:
            before = self.latest.get(name)
            if before is None or before.get("label") != row.get("label"):
                event = row.get("event") or {}
                self.events[name].append({"label": row.get("label"), "previous": before and before.get("label"),
                                          "at_s": row.get("start_s"), "wall_time": row.get("wall_time"),
                                          "clip": _name(event.get("clip")), "snapshot": _name(event.get("snapshot")),
                                          "clip_error": event.get("clip_error")})
            self.latest[name] = row
            if getattr(w, "frames", None) is not None and len(w.frames):
                self.frames[name] = w.frames[-1]

    def snapshot(self, name: str) -> bytes | None:
        with self._lock:
            frame = self.frames.get(name)
        return None if frame is None else _jpeg(frame)

    def clip_file(self, name: str):
        """The clips folder's file `name` (a plain name, nothing outside the folder), or None."""
        if not self.clips_dir or not name or "/" in name or name.startswith("."):
            return None
        path = Path(self.clips_dir) / name
        return path if path.suffix in (".mp4", ".jpg") and path.is_file() else None

    def metrics_text(self) -> bytes:
        return self._text(self.registry)

    def as_json(self) -> dict:
        now = time.time()
        with self._lock:
            cams = []
            for n, r in list(self.runners.items()):
                s, last, rec = r.stats, self.latest.get(n) or {}, self.recorders.get(n)
                cams.append({"name": n, "up": not (r.finished or r.error), "error": str(r.error) if r.error else None,
                             "label": last.get("label"), "confidence": last.get("confidence"),
                             "start_s": last.get("start_s"), "end_s": last.get("end_s"),
                             "fps": round(s.frames / max(1e-6, now - self.started), 2),
                             "frames": s.frames, "windows": s.windows, "no_motion": s.no_motion, "dropped": s.dropped,
                             "reconnects": s.reconnects, "gaps": len(s.gaps), "events": list(self.events[n]),
                             "recording": None if rec is None else rec.state()})
        return {"started": self.started, "uptime_s": round(now - self.started, 3), "cameras": cams,
                "publishing": self.publisher.state() if self.publisher is not None else {}}


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>pico-JEPA cameras</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left}
.down{color:#a00}</style></head><body><h1>pico-JEPA cameras</h1>
<table id="cams"><thead><tr><th>camera</th><th>snapshot</th><th>label</th><th>confidence</th><th>fps</th><th>windows</th><th>no motion</th>
<th>dropped</th><th>recent events</th></tr></thead><tbody></tbody></table>
<script>
function esc(s){return String(s==null?"":s).replace(/[&<>"]/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]))}
async function refresh(){
  try{const r=await fetch("/api/status");const s=await r.json();
    document.querySelector("#cams tbody").innerHTML=s.cameras.map(c=>
      `<tr class="${c.up?"":"down"}" data-camera="${esc(c.name)}"><td>${esc(c.name)}</td>`+
      `<td><img class="snap" width="64" height="64" alt="" src="/snapshot/${encodeURIComponent(c.name)}.jpg?t=${Date.now()}"></td>`+
      `<td class="label">${esc(c.label)}</td><td>${c.confidence==null?"":c.confidence.toFixed(2)}</td>`+
      `<td>${c.fps}</td><td class="windows">${c.windows}</td><td>${c.no_motion}</td><td>${c.dropped}</td>`+
      `<td>${c.events.slice(-3).map(e=>esc(e.previous)+" &rarr; "+esc(e.label)+
        (e.clip?` <a class="clip" href="/clips/${encodeURIComponent(e.clip)}">clip</a>`:"")).join("<br>")}</td></tr>`).join("");
  }catch(e){}
}
refresh();setInterval(refresh,2000);
</script></body></html>
"""


class StatusServer:
    """/metrics, /api/status and / for `status`, on host:port, in a daemon thread; each connection
    within `timeout_s`, at most `max_connections` at once."""

    def __init__(self, status: Status, host: str, port: int, timeout_s: float = TIMEOUT_S,
                 max_connections: int = MAX_CONNECTIONS):
        handler = _handler(status, timeout_s)
        try:
            self._server = BoundedHTTPServer((host, port), handler, timeout_s, max_connections)
        except OSError as exc:
            raise StatusError(f"--http {host}:{port}: cannot listen ({exc.strerror or exc})") from None
        self.address = self._server.server_address
        self._thread = threading.Thread(target=self._server.serve_forever, name="status-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.hang_up_all()
        self._server.server_close()
        self._thread.join(5)


def _handler(status: Status, timeout_s: float):
    class Handler(BaseHTTPRequestHandler):
        timeout = timeout_s  # each read and write of the connection (StreamRequestHandler.setup)

        def parse_request(self) -> bool:
            ok = super().parse_request()  # reads the headers
            self.server.received(self.connection)
            return ok

        def do_GET(self):  # noqa: N802 - the standard library's name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, "text/plain; version=0.0.4; charset=utf-8", status.metrics_text())
            elif path == "/api/status":
                self._send(200, "application/json", json.dumps(status.as_json()).encode())
            elif path.startswith("/snapshot/") and path.endswith(".jpg"):
                jpeg = status.snapshot(unquote(path[len("/snapshot/"):-len(".jpg")]))
                if jpeg is None:
                    self._send(404, "text/plain", b"no snapshot yet\n")
                else:
                    self._send(200, "image/jpeg", jpeg)
            elif path.startswith("/clips/"):
                found = status.clip_file(unquote(path[len("/clips/"):]))
                if found is None:
                    self._send(404, "text/plain", b"no such clip\n")
                else:
                    self._send_file(found, "video/mp4" if found.suffix == ".mp4" else "image/jpeg")
            elif path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", PAGE.encode())
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, code: int, kind: str, body: bytes) -> None:
            self._head(code, kind, len(body))
            self.wfile.write(body)

        def _send_file(self, path: Path, kind: str) -> None:
            """A clip sent in pieces: a connection holds one piece, not the whole clip, in memory."""
            try:
                f = open(path, "rb")
            except OSError:  # deleted by retention meanwhile
                self._send(404, "text/plain", b"no such clip\n")
                return
            with f:
                self._head(200, kind, os.fstat(f.fileno()).st_size)
                shutil.copyfileobj(f, self.wfile, 1 << 16)

        def _head(self, code: int, kind: str, length: int) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(length))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()

        def log_message(self, *args):  # scrapes are not the run's output
            pass

    return Handler
