"""Event clips: the seconds before and after an event, remuxed from the camera's packets.

A `Recorder` reads a camera's recording stream (its main stream, or the analysed one) in a thread
of its own and keeps its packets, never decoded, in a ring bounded in seconds and in bytes. When
the classifier reports an event (`trigger`), the clip is cut from the keyframe at or before
`before_s` ahead of it to `after_s` after it and written as an MP4 by FFmpeg's muxer through PyAV
(the packets are copied, not re-encoded), together with a JPEG snapshot of the newest keyframe.
Names carry the camera, the time and the label. A `ClipStore` keeps the folder under its bounds,
deleting the oldest of the clips it wrote first (never another file); a clip that cannot be written (a full disk) is a logged
error for that clip, never a stopped camera.
"""
from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from picojepa.core.console import error

from .clipstore import ClipStore
from .reader import LiveOptions, _av, _open

__all__ = ["ClipStore", "RecordOptions", "Recorder"]

log = logging.getLogger(__name__)
MARGIN_S = 10.0  # packets kept beyond before_s, so that a keyframe before the clip's start is there


@dataclass(frozen=True)
class RecordOptions:
    before_s: float = 5.0
    after_s: float = 10.0
    max_ring_mb: float = 64.0  # packets held per camera, at most


class Recorder:
    """One camera's recording stream, kept as packets; `trigger` writes a clip around an event."""

    def __init__(self, camera: str, url: str, opts: RecordOptions, store: ClipStore, live: LiveOptions):
        self.camera, self.url, self.opts, self.store, self.live = camera, url, opts, store, live
        self.ring: collections.deque = collections.deque()  # (arrival monotonic, packet, pts, dts, key)
        self.ring_bytes = 0
        self.pending: list[tuple[float, float, Path]] = []  # (start, end) in arrival time, path
        self.written: list[Path] = []
        self.failed = 0
        self.stream = None
        self._lock, self.stop = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._read, name=f"recorder-{camera}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        """Keep packets until `stop`; the clips still pending are written here, while the stream
        they are cut from is open (its parameters are the clip's)."""
        av = _av()
        while not self.stop.is_set():
            try:
                with _open(self.url, self.live) as container:
                    with self._lock:
                        self.ring.clear()  # a reopened stream starts a new timeline
                        self.ring_bytes = 0
                    self.stream = container.streams.video[0]
                    for packet in container.demux(self.stream):
                        if self.stop.is_set():
                            break
                        if packet.dts is not None and packet.size:
                            self._keep(packet)
                    self._flush()
                    self.stream = None
            except (av.FFmpegError, OSError, IndexError) as exc:
                log.info("recorder %s: %s", self.camera, exc)
            self.stream = None
            self.stop.wait(1.0)  # the stream dropped: reopen, as the analysed stream does
        self._give_up()

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
        """An event now: the clip (written once `after_s` have passed) and the snapshot's paths."""
        clip, snap = self.store.names(self.camera, label, wall)
        now = time.monotonic()
        with self._lock:
            self.pending.append((now - self.opts.before_s, now + self.opts.after_s, clip))
            key = next((item for item in reversed(self.ring) if item[4]), None)
        if key is not None:
            self._snapshot(key[1], snap)
        return {"clip": str(clip), "snapshot": str(snap) if snap.exists() else None}

    def _snapshot(self, packet, path: Path) -> None:
        av = _av()
        stream = self.stream
        if stream is None:
            return
        try:
            codec = av.CodecContext.create(stream.codec_context.name, "r")
            codec.extradata = stream.codec_context.extradata
            frames = codec.decode(packet) + codec.decode(None)
            if not frames:
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            with av.open(str(path), "w", format="image2") as out:
                s = out.add_stream("mjpeg")
                s.width, s.height, s.pix_fmt = frames[0].width, frames[0].height, "yuvj420p"
                for p in s.encode(frames[0].reformat(format="yuvj420p")):
                    out.mux(p)
                for p in s.encode(None):
                    out.mux(p)
        except (av.FFmpegError, OSError, ValueError) as exc:
            error(f"{self.camera}: snapshot {path}: {' '.join(str(exc).split())}")
            Path(path).unlink(missing_ok=True)
            return
        self.store.add(path)

    def _write(self, path: Path, packets: list) -> None:
        av = _av()
        tmp = path.with_name(f".{path.name}.partial")
        try:
            if not packets:
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
            self.written.append(path)
            self.store.add(path)
        except (av.FFmpegError, OSError, ValueError) as exc:
            self.failed += 1
            error(f"{self.camera}: event clip {path}: {' '.join(str(exc).split())}")
            tmp.unlink(missing_ok=True)

    def _flush(self) -> None:
        """At the end (stop, or the stream over): the clips still waiting for their `after_s`,
        written with what has arrived."""
        if not self.stop.is_set():
            return
        with self._lock:
            due, self.pending = self.pending, []
            chosen = [(c, self._packets(c[0], c[1])) for c in due]
        for (start, end, path), packets in chosen:
            self._write(path, packets)

    def _give_up(self) -> None:
        with self._lock:
            lost, self.pending = self.pending, []
        for _, _, path in lost:
            self.failed += 1
            error(f"{self.camera}: event clip {path}: the recording stream was not open when the run stopped")

    def close(self) -> None:
        """Stop; the clips still waiting for their `after_s` are written with what has arrived."""
        self.stop.set()
        self._thread.join(self.live.connect_timeout_s + self.opts.after_s + 5)
