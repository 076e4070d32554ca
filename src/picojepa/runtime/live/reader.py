"""Live sources (RTSP, RTMP, HTTP/HLS, TCP, UDP, SRT, a camera device): frames as they arrive,
cut into windows, one result per window, never falling behind.

torchcodec 0.13 cannot open a stream whose length is unknown, so the live path decodes with
PyAV (FFmpeg's libraries, bundled in its wheel): it opens network sources with a connect and a
read deadline, yields frames with their stream timestamps, and converts and resizes them in
FFmpeg's scaler in the file path's two steps, so that the same frames give the same pixels.
Preprocessing after decoding is the shared clip module's.

Threads: a reader decodes frames into the current window; a finished window goes into a
one-slot queue, replacing a window the classifier has not taken yet (counted as dropped), so a
slow classifier never makes the reader queue frames without bound. The stream dropping is met by
reconnecting with backoff until `reconnect_s` pass without a frame (RTSP, RTMP, TCP, UDP, SRT and
cameras; an HTTP stream or HLS playlist that ends cleanly is over).
"""
from __future__ import annotations

import logging
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from picojepa.core.clips import ClipSpec, Region, normalize, window_picks
from picojepa.core.errors import PicoJepaError
from picojepa.core.redact import redact
from picojepa.core.textio import read_text

from ..ensemble import Answers, Decoded, assemble

log = logging.getLogger(__name__)
SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "tcp://", "udp://", "srt://")
JUMP_S = 5.0  # a timestamp this far from the previous one (or backwards) starts a new window series


class LiveError(PicoJepaError, RuntimeError):
    """A live source could not be opened or stopped delivering frames for good."""


def is_live(source: str) -> bool:
    """A URL of a streaming protocol, or a camera device (/dev/videoN)."""
    return source.lower().startswith(SCHEMES) or source.startswith("/dev/video")


@dataclass(frozen=True)
class LiveOptions:
    window_s: float = 2.0
    stride_s: float | None = None  # None: windows back to back
    duration_s: float | None = None  # stop after this long (wall clock); None: until the stream ends
    connect_timeout_s: float = 10.0  # to open the source, and to wait for each read
    reconnect_s: float = 30.0  # give up after this long without a frame, reconnecting meanwhile
    # RTSP over TCP by default (no loss, one connection through NAT); 'udp' for servers and
    # cameras that only send RTP over UDP
    rtsp_transport: str = "tcp"
    # FFmpeg decoder threads per stream (0: FFmpeg's choice); with many streams on few cores one
    # each is measured best (frame threads add a frame of delay per thread and contend)
    decoder_threads: int = 1
    # 'nonref': FFmpeg skips decoding non-reference frames (B-frames that nothing refers to):
    # cheaper, but the window then holds fewer frames and its clip spans more time
    skip_frame: str = "none"
    region: Region | None = None  # only this part of each frame is classified (core.clips.Region)

    @property
    def stride(self) -> float:
        return self.stride_s or self.window_s


@dataclass
class Window:
    start_s: float  # stream time of the window's first frame
    end_s: float
    frames: np.ndarray  # (T, S, S, 3) uint8: the clip taken from the window's centre
    wall_time: float  # when the window's last frame arrived (time.time())
    decode_ms: float = 0.0  # decoding and scaling the frames that arrived since the previous window


@dataclass
class LiveStats:
    windows: int = 0
    dropped: int = 0
    reconnects: int = 0
    gaps: list = field(default_factory=list)  # [{"after_s", "wall_time", "reason"}]
    frames: int = 0  # decoded
    converted: int = 0  # converted to RGB and resized: only the frames a window's clip takes
    repicked: int = 0  # windows whose frames were not on the stream's frame grid (see _Pending.clip)


def _av():
    try:
        import av  # optional extra `live`
    except ImportError:
        raise LiveError("live sources need PyAV: pip install 'picojepa[live]' (or make install)") from None
    return av


def _open(source: str, opts: LiveOptions):
    av = _av()

    kwargs: dict = {"timeout": (opts.connect_timeout_s, opts.connect_timeout_s)}
    if source.startswith("/dev/video"):
        kwargs["format"] = "v4l2"
    if source.lower().startswith(("rtsp://", "rtsps://")):
        kwargs["options"] = {"rtsp_transport": opts.rtsp_transport}
    container = av.open(source, **kwargs)
    if container.streams.video:
        codec = container.streams.video[0].codec_context
        codec.thread_count = opts.decoder_threads
        if opts.decoder_threads != 1:
            codec.thread_type = "AUTO"  # frame and slice threads; camera streams carry one slice
        if opts.skip_frame == "nonref":
            codec.skip_frame = "NONREF"
    return container


def _hint(source: str, reason: str, opts: LiveOptions) -> str:
    """What to try when an RTSP server refuses the transport asked for."""
    refused = any(code in reason for code in ("400", "461"))
    if source.lower().startswith("rtsp") and opts.rtsp_transport == "tcp" and refused:
        return "; the server may not carry RTSP over TCP: try --rtsp-transport udp"
    return ""


def clip_rgb(frame, size: int, region: Region | None = None) -> np.ndarray:
    """The frame as uint8 (size, size, 3) exactly as torchcodec gives it on the file path: colour
    conversion to RGB at full resolution, the region (if any) cut out of it, then a bilinear resize
    in RGB (one combined swscale step differs by ~2 grey levels on average)."""
    if region is None:  # frame to frame in FFmpeg: no full-size array made or copied (measured)
        rgb = frame.reformat(format="rgb24")
        return rgb.reformat(width=size, height=size, format="rgb24", interpolation="BILINEAR").to_ndarray()
    full = frame.to_ndarray(format="rgb24")
    x0, y0, w, h = region.pixels(full.shape[1], full.shape[0])
    rgb = _av().VideoFrame.from_ndarray(np.ascontiguousarray(full[y0:y0 + h, x0:x0 + w]), format="rgb24")
    return rgb.to_ndarray(width=size, height=size, format="rgb24", interpolation="BILINEAR")


def _decoded(container, stop: threading.Event, tap=None):
    """(stream time, frame, ms spent decoding its packet) per decoded frame; the time spent
    waiting for packets from the network is not counted. Frames stay in the decoder's format:
    converting is left to the windows that take them. `tap` (a recorder fed by this reader) is
    told the stream and given every packet, as it is, before it is decoded."""
    if tap is not None:
        tap.opened(container.streams.video[0])
    for packet in container.demux(video=0):
        if stop.is_set():
            return
        if tap is not None:
            tap.packet(packet)
        t0 = time.perf_counter()
        got = packet.decode()
        spent = (time.perf_counter() - t0) * 1e3 / max(1, len(got))
        for frame in got:
            if frame.time is not None:
                yield float(frame.time), frame, spent


def frames(source: str, opts: LiveOptions, stats: LiveStats, stop: threading.Event, tap=None
           ) -> Iterator[tuple[float, object, float] | None]:
    """(stream time in s, decoded frame (PyAV), decode ms) per decoded frame; None marks a gap (the
    source dropped and was reopened). Corrupt packets are skipped by the decoder. Raises
    LiveError when the source cannot be opened or delivers nothing for `reconnect_s`. `tap`, when
    given, gets the packets too (`_decoded`) and is told when each opening ends: why, or None
    when stopped."""
    av = _av()

    last_frame, backoff, opened_once = time.monotonic(), 0.5, False
    while not stop.is_set():
        try:
            container = _open(source, opts)
        except (av.FFmpegError, OSError) as exc:
            reason = " ".join(str(exc).split())[:160]
            if not opened_once and time.monotonic() - last_frame >= opts.connect_timeout_s:
                raise LiveError(f"{source}: could not open the stream within "
                                f"{opts.connect_timeout_s:g} s ({reason}){_hint(source, reason, opts)}") from None
            if opened_once and time.monotonic() - last_frame >= opts.reconnect_s:
                raise LiveError(f"{source}: no frames for {opts.reconnect_s:g} s, reconnecting failed "
                                f"({reason})") from None
            stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)
            continue
        opened_once, backoff, ended = True, 0.5, "the stream ended"
        try:
            for item in _decoded(container, stop, tap):
                stats.frames += 1
                last_frame = time.monotonic()
                yield item
        except (av.FFmpegError, OSError) as exc:
            log.info("%s: %s", source, exc)
            ended = str(exc)
        finally:
            if tap is not None:
                tap.closed(None if stop.is_set() else ended)  # while the stream's parameters are at hand
            container.close()
        if stop.is_set() or not is_live(source) or source.lower().startswith(("http://", "https://")):
            return  # a file, or a playlist or HTTP stream that ended cleanly, is over
        if time.monotonic() - last_frame >= opts.reconnect_s:
            raise LiveError(f"{source}: the stream ended and sent nothing for {opts.reconnect_s:g} s")
        stats.reconnects += 1
        yield None


class _Interval:
    """The stream's frame interval, from the timestamps seen: the median of the last gaps."""

    def __init__(self):
        self.last: float | None = None
        self.gaps: list[float] = []
        self.dt: float | None = None

    def add(self, t: float) -> None:
        if self.last is not None and t > self.last:
            self.gaps = (self.gaps + [t - self.last])[-15:]
            self.dt = sorted(self.gaps)[len(self.gaps) // 2]
        self.last = t

    def frames_before(self, t: float, end: float) -> int | None:
        """How many frames a stream at this interval has in [t, end), the first one at t;
        None while there is no interval yet."""
        return None if self.dt is None else int((end - t) / self.dt - 1e-3) + 1


@dataclass
class _Pending:
    """A window still receiving frames. Its frame count is predicted from its first frame's time
    and the stream's frame interval, so the frames its clip takes are known as they arrive and
    only those are converted and kept."""

    start: float
    end: float
    count: int = 0  # frames received
    picks: set | None = None  # indices its clip takes under the predicted count; None: unknown, keep all
    kept: dict = field(default_factory=dict)  # index -> uint8 (S, S, 3)

    def wants(self, t: float, interval: _Interval, spec: ClipSpec) -> bool:
        """Count the frame at `t` in; whether the clip takes it. The window's frame count is
        predicted again at every frame (the frames so far and those the interval leaves until its
        end), so a hole in the stream moves the picks to the frames that still come."""
        ahead = interval.frames_before(t, self.end)
        self.picks = set(window_picks(self.count + ahead, spec)) if ahead else None
        self.count += 1
        return self.picks is None or self.count - 1 in self.picks

    def clip(self, spec: ClipSpec, stats: LiveStats) -> np.ndarray:
        """The window's clip. When frames did not arrive on the predicted grid (a frame lost,
        a changing rate), a frame its clip needs may not have been kept; the nearest kept one
        stands in and the window is counted in `stats.repicked`."""
        need = window_picks(self.count, spec)
        if any(i not in self.kept for i in need):
            stats.repicked += 1
            have = sorted(self.kept)
            need = [min(have, key=lambda k: (abs(k - i), k)) for i in need]
        return np.stack([self.kept[i] for i in need])


def windows(source: str, spec: ClipSpec, opts: LiveOptions, stats: LiveStats,
            stop: threading.Event, tap=None) -> Iterator[Window]:
    """Windows of `window_s` seconds of stream time every `stride` seconds; a gap or a jump in
    the timestamps starts a new series (the frames before it never mix with those after). Every
    frame is decoded (H.264 needs its references), but only those a window's clip takes are
    converted to RGB and resized."""
    pending: list[_Pending] = []
    origin, opened, last, interval, decode_ms = None, 0, None, _Interval(), 0.0
    for item in frames(source, opts, stats, stop, tap=tap):
        if item is not None and last is not None and not 0 <= item[0] - last <= JUMP_S:
            stats.gaps.append({"after_s": last, "wall_time": time.time(),
                               "reason": f"timestamps jumped from {last:.2f} to {item[0]:.2f} s"})
            pending, origin, last, interval = [], None, None, _Interval()
        if item is None:
            stats.gaps.append({"after_s": last, "wall_time": time.time(),
                               "reason": "the stream dropped; reconnected"})
            pending, origin, last, interval = [], None, None, _Interval()
            continue
        t, frame, cost = item
        decode_ms += cost
        interval.add(t)
        last = t
        if origin is None:
            origin, opened = t, 0
        while pending and t >= pending[0].end:
            done = pending.pop(0)
            if done.kept:
                yield Window(done.start, done.end, done.clip(spec, stats), time.time(), decode_ms)
                decode_ms = 0.0
            elif done.count:
                stats.gaps.append({"after_s": done.start, "wall_time": time.time(),
                                   "reason": "a hole in the stream took every frame of the window's clip"})
        while origin + opened * opts.stride <= t:
            start = origin + opened * opts.stride
            opened += 1
            if t < start + opts.window_s:  # a window that a gap in the frames skipped entirely is none
                pending.append(_Pending(start, start + opts.window_s))
        img = None
        for w in pending:
            if w.start <= t < w.end and w.wants(t, interval, spec):
                if img is None:
                    t0 = time.perf_counter()
                    img = clip_rgb(frame, spec.size, opts.region)
                    decode_ms += (time.perf_counter() - t0) * 1e3
                    stats.converted += 1
                w.kept[w.count - 1] = img


class LiveRunner:
    """Reads a live source in a thread and hands its windows to the caller, newest first
    served: `next_window(deadline)` (blocking) or `take()` returns a Window; None at the end.
    `tap`: a recorder (recorder.Recorder with `fed`) given the source's packets, so that a camera
    that records the stream it analyses opens it once."""

    def __init__(self, source: str, spec: ClipSpec, opts: LiveOptions, tap=None):
        self.source, self.spec, self.opts, self.tap = source, spec, opts, tap
        self.stats = LiveStats()
        self.stop = threading.Event()
        self.error: LiveError | None = None
        self._slot: queue.Queue = queue.Queue(maxsize=1)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, name="live-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for w in windows(self.source, self.spec, self.opts, self.stats, self.stop, self.tap):
                try:
                    self._slot.put_nowait(w)
                except queue.Full:  # the classifier is behind: replace its pending window
                    try:
                        self._slot.get_nowait()
                        self.stats.dropped += 1
                    except queue.Empty:
                        pass
                    self._slot.put_nowait(w)
        except LiveError as exc:
            self.error = exc
        except Exception as exc:  # noqa: BLE001 - reported as the run's error, never a hang
            self.error = LiveError(f"{self.source}: {type(exc).__name__}: {exc}")
        finally:
            self._done.set()

    def next_window(self, deadline: float | None = None) -> Window | None:
        """The next window; None when the stream has ended or failed (see `error`), or when
        `deadline` (time.monotonic()) passes first."""
        while deadline is None or time.monotonic() < deadline:
            try:
                return self._slot.get(timeout=0.2)
            except queue.Empty:
                if self._done.is_set() and self._slot.empty():
                    return None
        return None

    def take(self) -> Window | None:
        """The window waiting, if any, without blocking."""
        try:
            return self._slot.get_nowait()
        except queue.Empty:
            return None

    @property
    def finished(self) -> bool:
        """The reader has stopped (stream over or failed) and its last window was taken."""
        return self._done.is_set() and self._slot.empty()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(self.opts.connect_timeout_s + 2)

    def clip(self, w: Window) -> np.ndarray:
        """The window's clip preprocessed by the shared clip module, (1, 3, T, S, S)."""
        return normalize(w.frames, self.spec)[None]


def token(name: str) -> str:
    """A stream's name as one NATS subject token or MQTT topic level (and a Home Assistant object
    id): letters, digits, _ and -."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "stream"


def read_streams_file(path: str) -> list[tuple[str, str]]:
    """`SOURCE [NAME]` per line (# comments, blank lines skipped) -> [(name, source)]; a
    source without a name is named by itself, credentials masked. LiveError for an unreadable
    file or a repeated name."""
    lines = read_text(path, LiveError, "streams file").splitlines()
    out: list[tuple[str, str]] = []
    for n, line in enumerate(lines, 1):
        parts = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].split()  # '#' inside a URL is no comment
        if not parts:
            continue
        if len(parts) > 2:
            raise LiveError(f"{path}:{n}: expected 'SOURCE [NAME]', got {line.strip()!r}")
        name = parts[1] if len(parts) == 2 else redact(parts[0])
        if name in {a for a, _ in out}:
            raise LiveError(f"{path}:{n}: the name {name!r} is used twice")
        out.append((name, parts[0]))
    if not out:
        raise LiveError(f"{path}: lists no stream")
    return out


def classify_streams(ens, runners: dict[str, "LiveRunner"], method: str, stop: threading.Event,
                     between=None) -> Iterator[tuple[str, Window, object]]:
    """Classify the windows of every running stream as they come: the windows ready at the same
    moment, from any streams, go through the graphs as one batch (over the network, one request
    each). Yields (name, window, Prediction) until every stream has ended, or `stop` is set.
    `between(runners)`, when given, runs before each batch: it may add or remove streams."""
    batched = ens.batches
    while not stop.is_set() and not all(r.finished for r in list(runners.values())):
        if between is not None:
            between(runners)
        ready = [(n, w) for n, r in list(runners.items()) if (w := r.take()) is not None]
        if not ready:
            stop.wait(0.02)
            continue
        t0 = time.perf_counter()
        clips = np.concatenate([runners[n].clip(w) for n, w in ready])
        preprocess_ms = (time.perf_counter() - t0) * 1e3 / len(ready)
        t0 = time.perf_counter()
        probs = ens.member_probs(clips) if batched else None
        per_window_ms = (time.perf_counter() - t0) * 1e3 / len(ready)
        for i, (n, w) in enumerate(ready):
            d = Decoded(n, clips[i:i + 1], [(w.start_s, w.end_s)], w.decode_ms, preprocess_ms,
                        frames=w.frames[None])
            pred = (assemble(d, Answers(ens.bundle.members, probs[:, i:i + 1]), ens.classes, method,
                             per_window_ms, lambda p: ens.combine(p, method)) if batched else ens.answer(d, method))
            if n in runners:
                runners[n].stats.windows += 1
            yield n, w, pred
