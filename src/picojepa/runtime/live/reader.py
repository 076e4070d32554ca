"""The live reader: a source's frames (`source`) cut into windows (`windows`) in a thread of its
own, one result per window, never falling behind.

Threads: a reader decodes frames into the current window; a finished window goes into a
one-slot queue, replacing a window the classifier has not taken yet (counted as dropped), so a
slow classifier never makes the reader queue frames without bound.

The names a live run uses are importable from here as well as from the modules that hold them.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Iterator

import numpy as np

from picojepa.core.clips import ClipSpec, normalize

from .classify import classify_streams
from .motion import region_grey
from .names import read_streams_file, token
from .options import LiveOptions, LiveStats
from .source import LiveError, clip_rgb, frames, is_live
from .windows import Window, cut_windows

__all__ = ["LiveError", "LiveOptions", "LiveRunner", "LiveStats", "Window", "classify_streams", "clip_rgb",
           "frames", "is_live", "read_streams_file", "token", "windows"]


def windows(source: str, spec: ClipSpec, opts: LiveOptions, stats: LiveStats,
            stop: threading.Event, tap=None) -> Iterator[Window]:
    """The source's windows (`windows.cut_windows` over `source.frames`). Every frame is decoded
    (H.264 needs its references), but only those a window's clip takes are converted to RGB and
    resized (`clip_rgb`), and with the motion gate only in windows that moved (in the region,
    if one is set)."""
    items = frames(source, opts, stats, stop, tap=tap)
    grey = None if opts.motion_gate is None else (lambda frame: region_grey(frame, opts.region))
    def convert(frame):
        return clip_rgb(frame, spec.size, opts.region, opts.one_step_convert)

    return cut_windows(items, spec, opts, stats, convert, grey)


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
