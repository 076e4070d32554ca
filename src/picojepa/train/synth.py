"""The built-in data set: real H.264 files whose classes differ only by motion over time.

Every video shows a textured object over a drifting textured background with moving distractor
blobs and sensor noise. Object shape, colour, size, start position, orientation, frame size,
aspect ratio, frame rate and length are drawn the same way for every class; only how the object
moves differs, so no single frame tells the class and a model has to look across time.
"""
from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from picojepa.core.errors import DataLayoutError, FFmpegMissingError

from .layout import write_layout

# (name, description); `--classes N` takes the first N.
MOTIONS = (
    ("slide_right", "translates left to right at a steady speed"),
    ("slide_left", "translates right to left at a steady speed"),
    ("spin", "rotates in place"),
    ("pulse", "grows and shrinks periodically, in place"),
    ("rise", "translates upwards"),
    ("fall", "translates downwards"),
    ("blink", "stays in place, vanishing and reappearing periodically"),
    ("stop_and_go", "moves in a random direction, alternating halts and dashes"),
)
FRAME_SIZES = ((128, 96), (160, 120), (144, 144), (96, 128), (176, 96), (120, 160), (112, 112))
FPS = (12, 15, 20, 24, 25, 30)
MARKER = ".synth-incomplete.json"  # present while generation is unfinished


@dataclass(frozen=True)
class Pose:
    x: float  # centre, in units of the frame's short side D
    y: float
    angle: float  # radians
    scale: float
    visible: bool


def _trajectory(name: str, n: int, rng: np.random.Generator, w: float, h: float) -> list[Pose]:
    """Per-frame poses of the object; positions in short-side units (frame is w x h units)."""
    t = np.arange(n, dtype=np.float64)
    x0, y0 = rng.uniform(0.3 * w, 0.7 * w), rng.uniform(0.3 * h, 0.7 * h)
    a0 = rng.uniform(0, math.pi)
    x, y = np.full(n, x0), np.full(n, y0)
    ang, sc, vis = np.full(n, a0), np.ones(n), np.ones(n, dtype=bool)
    speed = rng.uniform(0.025, 0.045)  # short sides per frame
    if name in ("slide_right", "slide_left"):
        sign = 1 if name == "slide_right" else -1
        x = w / 2 - sign * speed * (n - 1) / 2 + sign * speed * t + rng.uniform(-0.15, 0.15) * w
    elif name in ("rise", "fall"):
        sign = 1 if name == "fall" else -1
        y = h / 2 - sign * speed * (n - 1) / 2 + sign * speed * t + rng.uniform(-0.15, 0.15) * h
    elif name == "spin":
        ang = a0 + rng.choice([-1, 1]) * rng.uniform(0.18, 0.3) * t
    elif name == "pulse":
        period = rng.uniform(6, 10)
        sc = 1.0 + rng.uniform(0.35, 0.5) * np.sin(2 * math.pi * t / period + rng.uniform(0, 6.3))
    elif name == "blink":
        period = int(rng.integers(4, 7))
        vis = ((t + rng.integers(0, period)) // (period / 2)) % 2 == 0
    elif name == "stop_and_go":
        theta = rng.uniform(0, 2 * math.pi)
        phase = int(rng.integers(3, 5))
        moving = ((t + rng.integers(0, 2 * phase)) // phase) % 2 == 0
        dist = np.cumsum(moving * speed * 1.6)
        dist -= dist[-1] / 2
        x, y = x0 + np.cos(theta) * dist, y0 + np.sin(theta) * dist
    else:
        raise ValueError(f"unknown motion {name!r}")
    return [Pose(float(x[i]), float(y[i]), float(ang[i]), float(sc[i]), bool(vis[i]))
            for i in range(n)]


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random colour texture (h, w, 3) in [0, 255], periodic so it can scroll."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for _ in range(6):
        fx, fy = rng.integers(1, 6), rng.integers(1, 6)
        phase = rng.uniform(0, 2 * math.pi)
        wave = np.sin(2 * math.pi * (fx * xx / w + fy * yy / h) + phase)
        img += wave[..., None] * rng.uniform(4, 12, size=3).astype(np.float32)
    return np.clip(img + rng.uniform(70, 180, size=3).astype(np.float32), 0, 255)


def render(name: str, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Frames (N, H, W, 3) uint8 of one video of class `name`, and its frame rate."""
    width, height = FRAME_SIZES[int(rng.integers(len(FRAME_SIZES)))]
    fps = int(FPS[int(rng.integers(len(FPS)))])
    n = int(rng.integers(24, 49)) if rng.random() > 0.04 else int(rng.integers(5, 8))
    d = float(min(width, height))
    poses = _trajectory(name, n, rng, width / d, height / d)

    bg = _texture(rng, 2 * height, 2 * width)
    pan = rng.uniform(-0.012, 0.012, size=2) * d
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)

    obj_a = rng.uniform(0.24, 0.34) * d  # half-length
    obj_b = obj_a * rng.uniform(0.35, 0.55)  # half-width: elongated, so rotation shows
    ellipse = rng.random() < 0.5
    stripe = rng.uniform(0.25, 0.5) * obj_a
    col1, col2 = rng.uniform(0, 255, size=3), rng.uniform(0, 255, size=3)
    blobs = [(rng.uniform(0, width), rng.uniform(0, height), *rng.uniform(-0.04, 0.04, 2) * d,
              rng.uniform(0.03, 0.06) * d, rng.uniform(0, 255, size=3)) for _ in range(2)]
    noise = rng.uniform(3, 8)

    frames = np.empty((n, height, width, 3), np.uint8)
    for i, p in enumerate(poses):
        oy, ox = int(pan[1] * i) % height, int(pan[0] * i) % width
        img = bg[oy:oy + height, ox:ox + width].copy()
        for bx, by, vx, vy, r, c in blobs:
            cx, cy = (bx + vx * i) % width, (by + vy * i) % height
            img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = c
        if p.visible:
            dx, dy = xx - p.x * d, yy - p.y * d
            u = dx * math.cos(p.angle) + dy * math.sin(p.angle)
            v = -dx * math.sin(p.angle) + dy * math.cos(p.angle)
            a, b = obj_a * p.scale, obj_b * p.scale
            inside = (u / a) ** 2 + (v / b) ** 2 < 1 if ellipse else (abs(u) < a) & (abs(v) < b)
            light = np.sin(u / stripe * math.pi) > 0
            img[inside & light] = col1
            img[inside & ~light] = col2
        img += rng.normal(0, noise, size=img.shape).astype(np.float32)
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
    return frames, fps


ENCODE_TIMEOUT_S = 120.0


def encode(frames: np.ndarray, fps: int, path: Path) -> None:
    """Write frames (N, H, W, 3) uint8 as an H.264 file, the same bytes on every run and machine:
    FFmpeg's libx264 on one thread (its output depends on the thread count) with bit-exact flags,
    the frames piped in raw. torchcodec's encoder, used before, wrote different files from the same
    frames in different processes (so two fresh `make demo`s trained on different data)."""
    _, height, width, _ = frames.shape
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    try:
        done = subprocess.run(
            ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
             "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
             "-c:v", "libx264", "-crf", "20", "-pix_fmt", "yuv420p", "-threads", "1",
             "-fflags", "+bitexact", "-flags:v", "+bitexact", "-f", "mp4", str(tmp)],
            input=np.ascontiguousarray(frames).tobytes(), capture_output=True, timeout=ENCODE_TIMEOUT_S)
    except FileNotFoundError:
        raise FFmpegMissingError("ffmpeg is not on PATH: it writes the built-in videos (make install)") from None
    except subprocess.TimeoutExpired:
        raise DataLayoutError(f"{path}: ffmpeg did not finish encoding within {ENCODE_TIMEOUT_S:g} s") from None
    if done.returncode:
        why = " ".join(done.stderr.decode(errors="replace").split())[-200:]
        raise DataLayoutError(f"{path}: ffmpeg could not encode it ({why or f'exit {done.returncode}'})")
    tmp.replace(path)


def plan(classes: int, videos_per_class: int, holdout: float = 0.2,
         unlabelled_per_class: int = 0) -> Iterator[tuple[str, str, int]]:
    """(split, class name, index) of every video the set holds, in a fixed order; split is
    'infer', 'train' or 'unlabelled' (indices from `videos_per_class` on, class-interleaved)."""
    if not 2 <= classes <= len(MOTIONS):
        raise ValueError(f"classes must be in 2..{len(MOTIONS)}, got {classes}")
    n_infer = max(1, int(round(videos_per_class * holdout)))
    for c in range(classes):
        for i in range(videos_per_class):
            yield ("infer" if i < n_infer else "train"), MOTIONS[c][0], i
    for i in range(videos_per_class, videos_per_class + unlabelled_per_class):
        for c in range(classes):
            yield "unlabelled", MOTIONS[c][0], i


def unlabelled_videos(folder: str | Path, per_class: int, classes: int = 4, seed: int = 0,
                      progress: Callable[[Iterator], Iterator] = iter) -> list[Path]:
    """Write `per_class` built-in videos of each of the first `classes` motions under `folder`
    with opaque names (no label anywhere): extra pre-training material beside a user's footage.
    Deterministic for a seed; videos already written are kept."""
    folder = Path(folder)
    names = [m[0] for m in MOTIONS[:classes]]
    out = []
    for i, c in progress([(i, c) for i in range(per_class) for c in range(classes)]):
        path = folder / f"builtin_{i * classes + c:05d}.mp4"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            frames, fps = render(names[c], np.random.default_rng([seed, c, 10_000 + i]))
            encode(frames, fps, path)
        out.append(path)
    return out


def generate(root: str | Path, classes: int = 4, videos_per_class: int = 60, seed: int = 0,
             progress: Callable[[Iterator], Iterator] = iter, unlabelled_per_class: int = 0) -> list[str]:
    """Write the built-in data set under `root` in the standard layout; returns the class names.

    `unlabelled_per_class` more videos of each class go to train/unlabelled/ under opaque names
    and are listed in train.csv only: material for self-supervised pre-training, never seen by a
    classifier (JEPA features of the 192 demo videos alone were measured weaker; README).

    Deterministic for a seed: video (class c, index i) draws from its own generator. Resumable:
    `MARKER` is present from the start until the layout is written, every video is written
    atomically, and a rerun keeps the finished videos.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(json.dumps({"classes": classes, "videos_per_class": videos_per_class,
                                           "seed": seed, "unlabelled_per_class": unlabelled_per_class}) + "\n")
    names = [m[0] for m in MOTIONS[:classes]]
    train, infer, unlabelled = [], [], []
    for split, name, i in progress(list(plan(classes, videos_per_class, 0.2, unlabelled_per_class))):
        c = names.index(name)
        if split == "unlabelled":
            k = (i - videos_per_class) * classes + c
            path = root / "train" / "unlabelled" / f"video_{k:05d}.mp4"
        else:
            path = root / split / name / f"{name}_{i:04d}.mp4"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            frames, fps = render(name, np.random.default_rng([seed, c, i]))
            encode(frames, fps, path)
        {"infer": infer, "train": train, "unlabelled": unlabelled}[split].append((path, c))
    write_layout(root, names, train, infer, seed, unlabelled=[p for p, _ in unlabelled])
    (root / MARKER).unlink()
    return names
