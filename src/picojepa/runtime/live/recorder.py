"""Event clips: the seconds before and after an event, remuxed from the camera's packets.

A `Recorder` keeps a camera's recording stream as packets, never decoded, in a ring bounded in
seconds and in bytes. The packets come from a connection of its own (its `record_url`, read in a
thread) or, when the camera records the stream it analyses, from the analysed reader itself
(`fed`: the reader calls `opened`, `packet` and `closed`), so that the source is opened once.
When the classifier reports an event (`trigger`), the clip is cut from the keyframe at or before
`before_s` ahead of it to `after_s` after it and written as an MP4 by FFmpeg's muxer through PyAV
(the packets are copied, not re-encoded), together with a JPEG snapshot of the newest keyframe.
The clips folder is a `ClipStore`.

Failures: a clip or snapshot that cannot be written (a full disk, a folder that is a file or not
writable) is a logged error for that clip, never a stopped camera. A recording stream that fails
is one error line when it fails and one line when it is back; while it is down an event gets no
clip (`clip: null`, with `clip_error` saying why) instead of the name of a clip that never comes.
`state()` says all of it, and `errors` counts it.
"""
from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from picojepa.core.console import error, one_line, warn

from .clipstore import ClipStore
from .options import LiveOptions
from .source import av_module, open_source

__all__ = ["ClipStore", "RecordOptions", "Recorder", "recording_errors"]
log = logging.getLogger(__name__)
MARGIN_S = 10.0  # packets kept beyond before_s, so that a keyframe before the clip's start is there


@dataclass(frozen=True)
class RecordOptions:
    before_s: float = 5.0
    after_s: float = 10.0
    max_ring_mb: float = 64.0  # packets held per camera, at most


def _discard(path: Path) -> None:
    """Remove a half-written file. A folder that cannot be written to (not a folder, no
    permission) holds nothing to remove, and the write's own error has been reported."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.debug("%s: %s", path, exc)


class Recorder:
    """One camera's recording stream, kept as packets; `trigger` writes a clip around an event.
    `fed`: no connection of its own, the camera's analysed reader hands it its packets."""

    def __init__(self, camera: str, url: str, opts: RecordOptions, store: ClipStore, live: LiveOptions,
                 fed: bool = False):
        self.camera, self.url, self.opts, self.store, self.live, self.fed = camera, url, opts, store, live, fed
        self.ring: collections.deque = collections.deque()  # (arrival monotonic, packet, pts, dts, key)
        self.ring_bytes = 0
        self.pending: list[tuple[float, float, Path]] = []  # (start, end) in arrival time, path
        self.written = self.failed = self.snapshots_failed = self.outages = self.packets = 0
        self.up, self.since, self.reason = False, time.time(), None  # reason: why it is down; None: up or opening
        self._missed = 0  # events without a clip in the current outage
        self.stream = None
        self._lock, self.stop = threading.Lock(), threading.Event()
        self._thread = None
        if not fed:
            self._thread = threading.Thread(target=self._read, name=f"recorder-{camera}", daemon=True)
            self._thread.start()

    @property
    def errors(self) -> int:
        """Clips and snapshots not written, and the times the recording stream failed."""
        return self.failed + self.snapshots_failed + self.outages

    def state(self) -> dict:
        """Whether the recording stream is up (since when, why not) and what came of its clips."""
        return {"up": self.up, "since": self.since, "error": self.reason, "shared": self.fed,
                "clips_written": self.written, "clips_failed": self.failed,
                "snapshots_failed": self.snapshots_failed, "outages": self.outages}

    def summary(self) -> str:
        """One line for the run's end: the clips written and failed, the recording's outages."""
        return (f"{self.camera}: {self.written} event clips written, {self.failed} failed"
                + (f", {self.snapshots_failed} snapshots failed" if self.snapshots_failed else "")
                + (f", the recording stream failed {self.outages} time(s)" if self.outages else ""))

    def _read(self) -> None:
        """Its own connection: keep packets until `stop`, reopening with backoff when it drops."""
        av = av_module()
        backoff = 0.5
        while not self.stop.is_set():
            seen = self.packets
            try:
                with open_source(self.url, self.live) as container:
                    self._session(av, container)
            except (av.FFmpegError, OSError) as exc:
                if not self.stop.is_set():  # an open cut short by the run's end is no outage
                    self._went_down(str(exc))
            backoff = 0.5 if self.packets > seen else min(backoff * 2, 5.0)
            self.stop.wait(backoff)
        self._give_up("the recording stream was not open when the run stopped")

    def _session(self, av, container) -> None:
        if not container.streams.video:
            self._went_down("the recording stream has no video")
            return
        self.opened(container.streams.video[0])
        reason = "the stream ended"
        try:
            for packet in container.demux(self.stream):
                if self.stop.is_set():
                    break
                self.packet(packet)
        except (av.FFmpegError, OSError) as exc:
            reason = str(exc)
        finally:
            self.closed(None if self.stop.is_set() else reason)

    def opened(self, stream) -> None:
        """The stream (re)opened: a new timeline, whose parameters are the clips'."""
        with self._lock:
            self.ring.clear()
            self.ring_bytes = 0
        self.stream = stream

    def packet(self, packet) -> None:
        """One demuxed packet of the stream."""
        if packet.dts is None or not packet.size:
            return
        self.packets += 1
        if not self.up:
            self._came_up()
        self._keep(packet)

    def closed(self, reason: str | None) -> None:
        """The stream ended (`reason`) or was stopped (None): the clips still waiting for their
        `after_s` are written with what has arrived, while its parameters are at hand."""
        with self._lock:
            due, self.pending = self.pending, []
            chosen = [(c, self._packets(c[0], c[1])) for c in due]
        for (_, _, path), packets in chosen:
            self._write(path, packets)
        self.stream = None
        if reason is not None:
            self._went_down(reason)

    def _came_up(self) -> None:
        was_down, since = self.reason is not None, self.since
        self.up, self.since, self.reason = True, time.time(), None
        if was_down:
            warn(f"{self.camera}: the recording stream is back after {self.since - since:.0f} s "
                 f"({self._missed} event(s) without a clip meanwhile)")

    def _went_down(self, reason: str) -> None:
        """One error line when an outage starts (or the stream never opens); the lost pending clips
        are failed at once, and the events until it is back get no clip."""
        first = self.reason is None
        self.up, self.reason = False, one_line(reason, 200)
        if first:
            self.since, self.outages, self._missed = time.time(), self.outages + 1, 0
            error(f"{self.camera}: recording stream {self.url}: {self.reason}; events get no clip until it is back")
        else:
            log.info("recorder %s: %s", self.camera, self.reason)
        self._give_up(f"the recording stream is down ({self.reason})")

    def _keep(self, packet) -> None:
        now = time.monotonic()
        with self._lock:
            self.ring.append((now, packet, packet.pts, packet.dts, packet.is_keyframe))
            self.ring_bytes += packet.size
            horizon = now - self.opts.before_s - MARGIN_S
            cap = self.opts.max_ring_mb * 2 ** 20
            while self.ring and (self.ring[0][0] < horizon or self.ring_bytes > cap):
                self.ring_bytes -= self.ring.popleft()[1].size
            due = [c for c in self.pending if now >= c[1]]
            self.pending = [c for c in self.pending if now < c[1]]
            chosen = [(c, self._packets(c[0], c[1])) for c in due]
        for (start, end, path), packets in chosen:
            self._write(path, packets)

    def _packets(self, start: float, end: float) -> list:
        keys = [i for i, item in enumerate(self.ring) if item[4] and item[0] <= start]
        first = keys[-1] if keys else next((i for i, item in enumerate(self.ring) if item[4]), None)
        if first is None:
            return []
        return [item for item in list(self.ring)[first:] if item[0] <= end]

    def trigger(self, label: str, wall: float) -> dict:
        """An event now: the clip's path (written once `after_s` have passed) and the snapshot's;
        while the recording stream is down, no clip and the reason (`clip_error`)."""
        if self.reason is not None:
            self.failed += 1
            self._missed += 1
            return {"clip": None, "snapshot": None, "clip_error": f"the recording stream is down ({self.reason})"}
        clip, snap = self.store.names(self.camera, label, wall)
        now = time.monotonic()
        with self._lock:
            self.pending.append((now - self.opts.before_s, now + self.opts.after_s, clip))
            key = next((item for item in reversed(self.ring) if item[4]), None)
        shot = key is not None and self._snapshot(key[1], snap)
        return {"clip": str(clip), "snapshot": str(snap) if shot else None}

    def _snapshot(self, packet, path: Path) -> bool:
        """The keyframe `packet` as a JPEG at `path`; False (one error line) when it cannot be."""
        av = av_module()
        stream = self.stream
        if stream is None:
            return False
        try:
            codec = av.CodecContext.create(stream.codec_context.name, "r")
            codec.extradata = stream.codec_context.extradata
            frames = codec.decode(packet) + codec.decode(None)
            if not frames:
                return False
            path.parent.mkdir(parents=True, exist_ok=True)
            with av.open(str(path), "w", format="image2") as out:
                s = out.add_stream("mjpeg")
                s.width, s.height, s.pix_fmt = frames[0].width, frames[0].height, "yuvj420p"
                for p in s.encode(frames[0].reformat(format="yuvj420p")):
                    out.mux(p)
                for p in s.encode(None):
                    out.mux(p)
        except (av.FFmpegError, OSError, ValueError) as exc:
            self.snapshots_failed += 1
            error(f"{self.camera}: snapshot {path}: {exc}")
            _discard(path)
            return False
        self.store.add(path)
        return True

    def _write(self, path: Path, packets: list) -> None:
        av = av_module()
        tmp = path.with_name(f".{path.name}.partial")
        try:
            if not packets or self.stream is None:
                raise OSError("no keyframe of the recording stream arrived in time")
            path.parent.mkdir(parents=True, exist_ok=True)
            with av.open(str(tmp), "w", format="mp4") as out:
                ostream = out.add_stream_from_template(self.stream)
                base = packets[0][3]
                for _, packet, pts, dts, key in packets:
                    copy = av.Packet(bytes(packet))  # the muxer takes the packet it is given: keep ours
                    copy.pts = None if pts is None else pts - base
                    copy.dts = dts - base
                    copy.time_base = packet.time_base
                    copy.is_keyframe = key
                    copy.stream = ostream
                    out.mux(copy)
            os.replace(tmp, path)
        except (av.FFmpegError, OSError, ValueError) as exc:
            self.failed += 1
            error(f"{self.camera}: event clip {path}: {exc}")
            _discard(tmp)
            return
        self.written += 1
        self.store.add(path)

    def _give_up(self, why: str) -> None:
        with self._lock:
            lost, self.pending = self.pending, []
        for _, _, path in lost:
            self.failed += 1
            error(f"{self.camera}: event clip {path}: {why}")

    def close(self) -> None:
        """Stop; the clips still waiting for their `after_s` are written with what has arrived
        (fed: the reader did so when it stopped), the others are failed."""
        self.stop.set()
        if self._thread is not None:
            self._thread.join(self.live.connect_timeout_s + self.opts.after_s + 5)
        else:
            self._give_up("the analysed stream was not open when the run stopped")


def recording_errors(recorders) -> int:
    """The errors of these recorders and of their clip folders (each folder counted once)."""
    stores = {id(r.store): r.store for r in recorders}
    return sum(r.errors for r in recorders) + sum(s.errors for s in stores.values())
