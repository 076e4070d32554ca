"""Clip sampling and preprocessing: the one contract shared by training and the runtime.

Written once here; `picojepa.train` imports it, and a test checks that the two sides produce the
same tensors on real decoded videos. No torch here: indices are plain ints, pixels are numpy.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal, Sequence

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

MAX_FRAMES, MAX_SIZE, MAX_STEP = 512, 2048, 1000  # past these a clip is a mistake, not a recipe
SeekMode = Literal["exact", "approximate"]
Placement = Literal["exact", "keyframe"]
Sampling = Literal["window", "spread"]


@dataclass(frozen=True)
class Region:
    """A region of interest: a rectangle x, y, w, h in fractions of the frame, cropped from the
    RGB frame before it is resized to the clip's size, in the file path and the live path alike
    (a camera's region classifies the same in its recording and live)."""

    x: float
    y: float
    w: float
    h: float

    def __post_init__(self):
        v = (self.x, self.y, self.w, self.h)
        if not all(isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in v):
            raise ValueError(f"region: expected 4 numbers x, y, w, h, got {v!r}")
        if not (0 <= self.x < 1 and 0 <= self.y < 1 and 0 < self.w <= 1 and 0 < self.h <= 1
                and self.x + self.w <= 1 + 1e-9 and self.y + self.h <= 1 + 1e-9):
            raise ValueError(f"region: x, y, w, h must be fractions of the frame with x + w <= 1 and "
                             f"y + h <= 1, got {', '.join(f'{a:g}' for a in v)}")

    @classmethod
    def parse(cls, text: str) -> "Region":
        try:
            parts = [float(a) for a in text.split(",")]
        except ValueError:
            parts = []
        if len(parts) != 4:
            raise ValueError(f"region: expected x,y,w,h (fractions of the frame), got {text!r}")
        return cls(*parts)

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, w, h) in pixels of a width x height frame, on even numbers (so that a crop
        before or after the decoder's chroma conversion takes the same pixels), at least 2 x 2."""
        def even(v: float) -> int:
            return int(round(v / 2)) * 2

        x0, y0 = min(even(self.x * width), width - 2), min(even(self.y * height), height - 2)
        w = max(2, min(even(self.w * width), (width - x0) // 2 * 2))
        h = max(2, min(even(self.h * height), (height - y0) // 2 * 2))
        return x0, y0, w, h


@dataclass(frozen=True)
class ClipSpec:
    """What one model input is: `frames` RGB frames of `size`x`size`, normalised with mean/std.

    `frame_step` is the gap between sampled frames (1 = contiguous, as the paper).
    `seek_mode` 'exact' scans the file once at open and so reads the true frame count, where
    'approximate' trusts the container's header, which some files get wrong (README, Versions).
    `placement` 'keyframe' moves each evaluation and feature clip to start at the keyframe
    nearest to where it would start ('exact'), so decoding begins at the clip's own first frame
    instead of up to a whole GOP before it; it needs the keyframe index that 'exact' seeking
    scans. Training's random pre-training windows are not moved.
    `sampling` 'window' takes `frames` frames `frame_step` apart (a window of `span` frames, in
    the middle of a video for its one clip); 'spread' takes one frame in each of `frames` equal
    segments of the whole video (of a whole window for sliding windows and live sources), so
    that an action of any length is in view (TSN's segment sampling; `frame_step` and
    `placement` do not apply: a spread clip has no start to move).
    """

    frames: int = 8
    size: int = 224
    frame_step: int = 1
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    seek_mode: SeekMode = "exact"
    placement: Placement = "exact"
    sampling: Sampling = "window"

    def __post_init__(self):
        for k, lo, hi in (("frames", 1, MAX_FRAMES), ("size", 8, MAX_SIZE), ("frame_step", 1, MAX_STEP)):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{k} must be an integer in [{lo}, {hi}], got {v!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"mean and std need 3 values, got {self.mean = } {self.std = }")
        if not all(math.isfinite(v) and abs(v) <= 1e3 for v in (*self.mean, *self.std)):
            raise ValueError(f"mean and std must be finite and within +-1000, got {self.mean = } {self.std = }")
        if any(s < 1e-3 for s in self.std):
            raise ValueError(f"std must be at least 1e-3, got {self.std = }")
        if self.seek_mode not in ("exact", "approximate"):
            raise ValueError(f"seek_mode must be 'exact' or 'approximate', got {self.seek_mode!r}")
        if self.placement not in ("exact", "keyframe"):
            raise ValueError(f"placement must be 'exact' or 'keyframe', got {self.placement!r}")
        if self.sampling not in ("window", "spread"):
            raise ValueError(f"sampling must be 'window' or 'spread', got {self.sampling!r}")
        if self.sampling == "spread" and self.placement != "exact":
            raise ValueError("placement 'keyframe' moves a window's start; a 'spread' clip has none")
        if self.placement == "keyframe" and self.seek_mode != "exact":
            raise ValueError("placement 'keyframe' needs seek_mode 'exact' (the scan that finds "
                             "the keyframes)")

    @property
    def span(self) -> int:
        """Number of source frames one clip covers."""
        return (self.frames - 1) * self.frame_step + 1

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(channels, frames, height, width) of one preprocessed clip."""
        return (3, self.frames, self.size, self.size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ClipSpec":
        """From a manifest or metadata: ValueError (never another type) for anything malformed."""
        try:
            d = dict(d)
            d["mean"] = tuple(float(x) for x in d["mean"])
            d["std"] = tuple(float(x) for x in d["std"])
            return cls(**d)
        except (TypeError, KeyError) as exc:
            raise ValueError(str(exc)) from None


def window_indices(num_frames: int, spec: ClipSpec, start: int) -> list[int]:
    """Frame indices of the clip starting at `start`; past the end the last frame repeats."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames = }")
    last = num_frames - 1
    return [min(start + i * spec.frame_step, last) for i in range(spec.frames)]


def max_start(num_frames: int, spec: ClipSpec) -> int:
    return max(0, num_frames - spec.span)


def place(start: int, num_frames: int, spec: ClipSpec, keyframes: Sequence[int] | None) -> int:
    """Where a clip meant to start at `start` starts under `spec.placement`: itself ('exact'), or
    the nearest keyframe that is a valid start (the earlier one on a tie; `start` itself when no
    keyframe is). `keyframes` (frame indices) is needed only for 'keyframe'."""
    if spec.placement == "exact":
        return start
    if keyframes is None:
        raise ValueError("keyframe placement needs the video's keyframe indices")
    hi = max_start(num_frames, spec)
    valid = [int(k) for k in keyframes if 0 <= k <= hi]
    return min(valid, key=lambda k: (abs(k - start), k)) if valid else start


def spread_indices(num_frames: int, spec: ClipSpec, offsets) -> list[int]:
    """`spec.frames` indices over frames 0..num_frames-1, one in each of as many equal segments,
    `offsets` (in [0, 1): one for every segment, or one each) of the way into it."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames = }")
    offs = np.broadcast_to(np.asarray(offsets, dtype=np.float64), (spec.frames,))
    return [min(num_frames - 1, int((j + float(o)) * num_frames / spec.frames)) for j, o in enumerate(offs)]


def center_indices(num_frames: int, spec: ClipSpec, keyframes: Sequence[int] | None = None) -> list[int]:
    """The evaluation and inference clip: the window in the middle of the video (placed), or
    the frames spread over the whole video (each segment's middle)."""
    if spec.sampling == "spread":
        return spread_indices(num_frames, spec, 0.5)
    return window_indices(num_frames, spec, place(max_start(num_frames, spec) // 2, num_frames, spec, keyframes))


def window_picks(num_frames: int, spec: ClipSpec) -> list[int]:
    """The clip of a sliding window (a file's `--window`, a live source's) of `num_frames`
    frames, as indices into the window: its centre clip, or its frames spread; never moved to a
    keyframe, as sliding windows are not."""
    if spec.sampling == "spread":
        return spread_indices(num_frames, spec, 0.5)
    return window_indices(num_frames, spec, max_start(num_frames, spec) // 2)


def random_indices(num_frames: int, spec: ClipSpec, rng: np.random.Generator) -> list[int]:
    """The training clip: a random contiguous window (uniform over valid starts), or a random
    frame of each segment of the whole video."""
    if spec.sampling == "spread":
        return spread_indices(num_frames, spec, rng.random(spec.frames))
    return window_indices(num_frames, spec, int(rng.integers(0, max_start(num_frames, spec) + 1)))


def uniform_starts(num_frames: int, spec: ClipSpec, clips: int,
                   keyframes: Sequence[int] | None = None) -> list[int]:
    """Starts of `clips` windows spread evenly from the first to the last valid start (placed:
    under keyframe placement two clips may land on the same keyframe)."""
    if clips < 1:
        raise ValueError(f"clips must be >= 1, got {clips = }")
    hi = max_start(num_frames, spec)
    starts = [hi // 2] if clips == 1 else [int(round(i * hi / (clips - 1))) for i in range(clips)]
    return [place(s, num_frames, spec, keyframes) for s in starts]


def uniform_clips(num_frames: int, spec: ClipSpec, clips: int,
                  keyframes: Sequence[int] | None = None) -> list[list[int]]:
    """The frame indices of `clips` clips covering the video evenly: windows at `uniform_starts`,
    or spread clips each at its own offset into the segments ((k + 0.5) / clips for clip k)."""
    if spec.sampling != "spread":
        return [window_indices(num_frames, spec, s) for s in uniform_starts(num_frames, spec, clips, keyframes)]
    if clips < 1:
        raise ValueError(f"clips must be >= 1, got {clips = }")
    return [spread_indices(num_frames, spec, (k + 0.5) / clips) for k in range(clips)]


def sliding_starts(num_frames: int, fps: float, spec: ClipSpec, stride_s: float) -> list[int]:
    """Starts of windows every `stride_s` seconds over the whole video (at least one window)."""
    if stride_s <= 0:
        raise ValueError(f"stride must be positive, got {stride_s = }")
    step = max(1, int(round(stride_s * fps)))
    return list(range(0, max_start(num_frames, spec) + 1, step))


def normalize(frames: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """uint8 frames (T, H, W, 3) -> float32 clip (3, T, H, W), scaled to [0, 1], mean/std applied."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape = }")
    x = frames.astype(np.float32) * np.float32(1.0 / 255.0)
    x -= np.asarray(spec.mean, dtype=np.float32)
    x *= np.asarray([1.0 / s for s in spec.std], dtype=np.float32)
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2))

