"""A stream's frames cut into windows: `window_s` seconds of stream time every `stride`, each
window's clip picked by the file path's rule (`core.clips.window_picks`) from the frames it holds.

The frames come as (stream time, frame, decode ms), None marking a gap (the source reopened);
they may be anything `convert` turns into a clip's uint8 (S, S, 3) image, so the cutting is
tested on made-up frames and timestamps. A window's frame count is predicted from its first
frame's time and the stream's frame interval, so that only the frames its clip takes are
converted and kept. With the motion gate (`grey` given, `opts.motion_gate` its threshold), the
frames a clip takes are kept unconverted with a small grey picture each, and converted when the
window is complete only if it moved (`motion.MotionGate`); a still window has no frames.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from picojepa.core.clips import ClipSpec, window_picks

from .motion import MotionGate, motion_score
from .options import LiveOptions, LiveStats

JUMP_S = 5.0  # a timestamp this far from the previous one (or backwards) starts a new window series


@dataclass
class Window:
    start_s: float  # stream time of the window's first frame
    end_s: float
    frames: np.ndarray | None  # (T, S, S, 3) uint8: the window's clip; None: gated (nothing moved)
    wall_time: float  # when the window's last frame arrived (time.time())
    decode_ms: float = 0.0  # decoding and scaling the frames that arrived since the previous window
    motion: float | None = None  # the motion gate's score (% of the picture moved); None: no gate

    @property
    def gated(self) -> bool:
        """The motion gate answered it: nothing moved, nothing converted."""
        return self.frames is None


@dataclass
class Held:
    """A frame a clip takes, kept unconverted (the motion gate): its small grey picture, and its
    clip image once a window that moved converted it (shared by overlapping windows)."""

    frame: object
    grey: np.ndarray
    img: np.ndarray | None = None


class Interval:
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
class Pending:
    """A window still receiving frames. Its frame count is predicted from its first frame's time
    and the stream's frame interval, so the frames its clip takes are known as they arrive and
    only those are converted and kept."""

    start: float
    end: float
    count: int = 0  # frames received
    picks: set | None = None  # indices its clip takes under the predicted count; None: unknown, keep all
    kept: dict = field(default_factory=dict)  # index -> uint8 (S, S, 3), or a Held with the gate

    def wants(self, t: float, interval: Interval, spec: ClipSpec) -> bool:
        """Count the frame at `t` in; whether the clip takes it. The window's frame count is
        predicted again at every frame (the frames so far and those the interval leaves until its
        end), so a hole in the stream moves the picks to the frames that still come."""
        ahead = interval.frames_before(t, self.end)
        self.picks = set(window_picks(self.count + ahead, spec)) if ahead else None
        self.count += 1
        return self.picks is None or self.count - 1 in self.picks

    def picked(self, spec: ClipSpec, stats: LiveStats) -> list:
        """What was kept of the frames the window's clip takes, in order. When frames did not
        arrive on the predicted grid (a frame lost, a changing rate), a frame its clip needs may
        not have been kept; the nearest kept one stands in and the window is counted in
        `stats.repicked`."""
        need = window_picks(self.count, spec)
        if any(i not in self.kept for i in need):
            stats.repicked += 1
            have = sorted(self.kept)
            need = [min(have, key=lambda k: (abs(k - i), k)) for i in need]
        return [self.kept[i] for i in need]

    def window(self, spec: ClipSpec, stats: LiveStats, convert, gate: MotionGate | None) -> Window:
        """The complete window; with the gate, its motion scored and its frames converted only
        if it moved (the time it takes returned in the window's decode_ms)."""
        picked = self.picked(spec, stats)
        if gate is None:
            return Window(self.start, self.end, np.stack(picked), time.time())
        t0, c0 = time.perf_counter(), time.thread_time()
        score, frames = motion_score([h.grey for h in picked]), None
        stats.gate_cpu_ms += (time.thread_time() - c0) * 1e3
        if gate.open(score):
            c0 = time.thread_time()
            for h in picked:
                if h.img is None:
                    h.img, h.frame = convert(h.frame), None  # the decoded frame is no longer needed
                    stats.converted += 1
            frames = np.stack([h.img for h in picked])
            stats.convert_cpu_ms += (time.thread_time() - c0) * 1e3
        return Window(self.start, self.end, frames, time.time(), (time.perf_counter() - t0) * 1e3, score)


def cut_windows(items: Iterable, spec: ClipSpec, opts: LiveOptions, stats: LiveStats,
                convert: Callable[[object], np.ndarray], grey: Callable | None = None) -> Iterator[Window]:
    """Windows of `window_s` seconds of stream time every `stride` seconds from `items`
    ((t, frame, decode ms) or None for a gap); a gap or a jump in the timestamps starts a new
    series (the frames before it never mix with those after). Only the frames a window's clip
    takes go through `convert`, its time counted as decoding. `grey` (a frame -> small grey
    picture) turns the motion gate on, at `opts.motion_gate`."""
    gate = MotionGate(opts.motion_gate) if grey is not None and opts.motion_gate is not None else None
    pending: list[Pending] = []
    origin, opened, last, interval, decode_ms = None, 0, None, Interval(), 0.0
    for item in items:
        if item is not None and last is not None and not 0 <= item[0] - last <= JUMP_S:
            stats.gaps.append({"after_s": last, "wall_time": time.time(),
                               "reason": f"timestamps jumped from {last:.2f} to {item[0]:.2f} s"})
            pending, origin, last, interval = [], None, None, Interval()
        if item is None:
            stats.gaps.append({"after_s": last, "wall_time": time.time(),
                               "reason": "the stream dropped; reconnected"})
            pending, origin, last, interval = [], None, None, Interval()
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
                w = done.window(spec, stats, convert, gate)
                w.decode_ms += decode_ms
                yield w
                decode_ms = 0.0
            elif done.count:
                stats.gaps.append({"after_s": done.start, "wall_time": time.time(),
                                   "reason": "a hole in the stream took every frame of the window's clip"})
        while origin + opened * opts.stride <= t:
            start = origin + opened * opts.stride
            opened += 1
            if t < start + opts.window_s:  # a window that a gap in the frames skipped entirely is none
                pending.append(Pending(start, start + opts.window_s))
        img = None
        for w in pending:
            if w.start <= t < w.end and w.wants(t, interval, spec):
                if img is None:
                    t0, c0 = time.perf_counter(), time.thread_time()
                    img = convert(frame) if gate is None else Held(frame, grey(frame))
                    decode_ms += (time.perf_counter() - t0) * 1e3
                    spent = (time.thread_time() - c0) * 1e3
                    if gate is None:
                        stats.converted, stats.convert_cpu_ms = stats.converted + 1, stats.convert_cpu_ms + spent
                    else:
                        stats.gate_cpu_ms += spent
                w.kept[w.count - 1] = img
