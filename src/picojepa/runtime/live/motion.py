"""The motion gate: a window in which nothing moves is answered `no motion` without converting
its frames or running the model, as a camera service's motion detection gates its detector.

Each frame a window's clip takes is also kept as a small grey picture (its luma plane, every
k-th pixel, about 90 rows: no colour conversion, no scaler). The window's motion is the largest
share, over its consecutive picked frames, of pixels whose grey level changed by more than
`PIXEL_DELTA` (sensor noise and compression flicker stay under it): a percentage of the
picture. A window under the threshold is gated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from picojepa.core.clips import Region

NO_MOTION = "no motion"  # the label of a gated window
DEFAULT_THRESHOLD = 0.05  # % of the picture; chosen on real footage (docs/cameras.md)
PIXEL_DELTA = 20  # grey levels a pixel must change by to count as moved
ROWS = 90  # the small grey picture's rows, about
PLANAR = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p",
          "nv12", "nv21", "gray"}  # 8-bit formats whose first plane is the luma, row by row


@dataclass(frozen=True)
class MotionGate:
    threshold: float = DEFAULT_THRESHOLD  # % of the picture that must change between two picks

    def open(self, score: float) -> bool:
        return score >= self.threshold


def small_grey(frame) -> np.ndarray:
    """A decoded frame (PyAV VideoFrame, or a (H, W) or (H, W, 3) uint8 array) as a small grey
    picture, uint8 (about ROWS, W x ROWS / H): every k-th pixel of the luma plane (of the mean
    of the channels for an array or a frame in another format)."""
    if isinstance(frame, np.ndarray):
        grey = frame if frame.ndim == 2 else frame.mean(axis=2)
        step = max(1, grey.shape[0] // ROWS)
        return np.ascontiguousarray(grey[::step, ::step], dtype=np.uint8)
    step = max(1, frame.height // ROWS)
    if frame.format.name in PLANAR:
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        return np.ascontiguousarray(rows[:frame.height:step, :frame.width:step])
    return frame.to_ndarray(format="gray", width=max(1, frame.width // step), height=max(1, frame.height // step))


def region_grey(frame, region: Region | None) -> np.ndarray:
    """The frame's small grey picture, cut to `region` (what is classified) when one is set."""
    grey = small_grey(frame)
    if region is None:
        return grey
    x0, y0, w, h = region.pixels(grey.shape[1], grey.shape[0])
    return grey[y0:y0 + h, x0:x0 + w]


def motion_score(greys: list[np.ndarray]) -> float:
    """The largest % of pixels changed by more than PIXEL_DELTA between consecutive pictures
    (0 for fewer than two)."""
    best = 0.0
    for a, b in zip(greys, greys[1:]):
        if a.shape != b.shape:
            return 100.0  # the picture changed size: not a still scene
        moved = np.abs(a.astype(np.int16) - b.astype(np.int16)) > PIXEL_DELTA
        best = max(best, 100.0 * float(moved.mean()))
    return best
