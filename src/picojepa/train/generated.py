"""Video generated on the fly for pre-training the foundation encoder: no files, no natural video.

Each clip is drawn at the model's own size from a seed: a textured background seen through a
camera that may pan and zoom, and one to four textured objects (ellipses, boxes, triangles,
stars) that move along many kinds of path (steady, accelerating, bouncing, circling, wandering,
halting), turn, grow or shrink, blink and pass in front of one another, with flicker and sensor
noise. Every object carries its own texture, so the only way to predict where a textured patch
goes next is to follow the motion: the generator is made so that appearance alone does not
explain a clip (after Yu, Chen and Gandelsman, "Learning Video Representations without Natural
Videos": moving, accelerating and textured shapes close most of the gap to natural video).

The dataset has the training `ClipDataset`'s interface (items of index, normalised clip, label,
error), so the pre-training loop runs on it unchanged; its clips differ in every epoch.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset

from picojepa.core.clips import ClipSpec, normalize

SHAPES = ("ellipse", "box", "triangle", "star")
PATHS = ("steady", "accelerating", "bouncing", "circling", "wandering", "halting", "still")


def texture(rng: np.random.Generator, cells: int = 16) -> np.ndarray:
    """A random (cells, cells, 3) float texture in [0, 1]: smooth noise, stripes, a checker or
    blobs of colour, so that surfaces differ in grain as well as colour."""
    kind = rng.integers(4)
    y, x = np.mgrid[0:cells, 0:cells] / cells
    base, other = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    if kind == 0:
        return rng.uniform(0, 1, (cells, cells, 3)) * 0.6 + base * 0.4
    if kind == 1:
        angle, freq = rng.uniform(0, math.pi), rng.integers(1, 5)
        s = 0.5 + 0.5 * np.sin(2 * math.pi * freq * (x * math.cos(angle) + y * math.sin(angle)))
        return base * s[..., None] + other * (1 - s[..., None])
    if kind == 2:
        n = rng.integers(2, 6)
        s = ((np.floor(x * n) + np.floor(y * n)) % 2)[..., None]
        return base * s + other * (1 - s)
    coarse = rng.uniform(0, 1, (4, 4, 3))
    return np.kron(coarse, np.ones((cells // 4, cells // 4, 1)))


def sample(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The texture at fractional coordinates (u, v) in texture cells, wrapping, bilinear."""
    n = tex.shape[0]
    flat = tex.reshape(n * n, 3).astype(np.float32)
    u0, v0 = np.floor(u), np.floor(v)
    fu, fv = (u - u0).astype(np.float32)[..., None], (v - v0).astype(np.float32)[..., None]
    i0, j0 = u0.astype(np.int64) % n, (v0.astype(np.int64) % n) * n
    i1, j1 = (i0 + 1) % n, (j0 + n) % (n * n)
    top = np.take(flat, j0 + i0, 0) * (1 - fu) + np.take(flat, j0 + i1, 0) * fu
    bottom = np.take(flat, j1 + i0, 0) * (1 - fu) + np.take(flat, j1 + i1, 0) * fu
    return top * (1 - fv) + bottom * fv


def path(kind: str, frames: int, rng: np.random.Generator) -> np.ndarray:
    """Centre positions (frames, 2) in frame units (0..1 across the frame) for a path kind."""
    t = np.arange(frames, dtype=np.float64)[:, None]
    start = rng.uniform(0.15, 0.85, 2)
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction) + 1e-9
    speed = rng.uniform(0.01, 0.05)
    if kind == "steady":
        return start + direction * speed * t
    if kind == "accelerating":
        return start + direction * (0.2 * speed * t + 0.5 * rng.uniform(0.002, 0.006) * t ** 2)
    if kind == "bouncing":
        raw = start + direction * 2 * speed * t
        return 1 - np.abs(1 - np.mod(raw, 2))  # reflected at the frame's edges
    if kind == "circling":
        radius, omega = rng.uniform(0.08, 0.3), rng.choice([-1, 1]) * rng.uniform(0.1, 0.5)
        phase = rng.uniform(0, 2 * math.pi)
        ang = phase + omega * t[:, 0]
        return start + radius * np.stack([np.cos(ang), np.sin(ang)], 1) - radius * np.array(
            [math.cos(phase), math.sin(phase)])
    if kind == "wandering":
        return start + np.cumsum(rng.normal(0, speed, (frames, 2)), 0)
    if kind == "halting":
        moving = (np.floor(t[:, 0] / rng.integers(2, 6)) % 2 == 0).astype(np.float64)[:, None]
        return start + direction * 2 * speed * np.cumsum(moving, 0)
    return np.repeat(start[None], frames, 0)


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray, points: int) -> np.ndarray:
    """Soft coverage of a unit shape at object coordinates (u, v) (the shape spans -1..1)."""
    if shape == "ellipse":
        d = np.sqrt(u ** 2 + v ** 2)
    elif shape == "box":
        d = np.maximum(np.abs(u), np.abs(v))
    elif shape == "triangle":
        d = np.maximum(np.maximum(-v, 0.866 * u + 0.5 * v), -0.866 * u + 0.5 * v) * 2
    else:
        r, a = np.sqrt(u ** 2 + v ** 2), np.arctan2(v, u)
        d = r / (0.65 + 0.35 * np.cos(points * a))
    return np.clip((1.0 - d) * 8.0, 0.0, 1.0)


class _Object:
    """One moving object: shape, texture, path, turning, growing and blinking, drawn per frame."""

    def __init__(self, rng: np.random.Generator, frames: int):
        self.shape = SHAPES[rng.integers(len(SHAPES))]
        self.points = int(rng.integers(3, 7))
        self.tex = texture(rng)
        self.centre = path(PATHS[rng.integers(len(PATHS))], frames, rng)
        t = np.arange(frames)
        self.angle = rng.uniform(0, math.pi) + rng.choice([0.0, rng.uniform(-0.3, 0.3)]) * t
        growth = rng.choice([0.0, rng.uniform(-0.04, 0.04)])
        pulse = rng.choice([0.0, rng.uniform(0.1, 0.3)]) * np.sin(rng.uniform(0.3, 1.2) * t)
        self.scale = rng.uniform(0.08, 0.25) * np.clip(1 + growth * t + pulse, 0.3, 3.0)
        self.aspect = rng.uniform(0.5, 1.5)
        period = rng.integers(3, 8)
        self.visible = (t // period) % 2 == 0 if rng.uniform() < 0.1 else np.ones(frames, bool)

    def draw(self, frames: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        """Composite the object over `frames` (T, S, S, 3) at world coordinates x, y (T, S, S)."""
        cx, cy = (self.centre[:, i, None, None].astype(np.float32) for i in (0, 1))
        c, s = (f(self.angle)[:, None, None].astype(np.float32) for f in (np.cos, np.sin))
        scale = self.scale[:, None, None].astype(np.float32)
        u = (c * (x - cx) + s * (y - cy)) / (scale * self.aspect)
        v = (-s * (x - cx) + c * (y - cy)) / (scale / self.aspect)
        alpha = (_shape_mask(self.shape, u, v, self.points) * self.visible[:, None, None])[..., None]
        frames *= 1 - alpha
        frames += alpha * sample(self.tex, (u + 1) * 4, (v + 1) * 4)


def generate_clip(rng: np.random.Generator, spec: ClipSpec) -> np.ndarray:
    """One generated clip, uint8 (frames, size, size, 3)."""
    n, size = spec.frames, spec.size
    y, x = ((np.mgrid[0:size, 0:size] + 0.5) / size).astype(np.float32)
    t = np.arange(n, dtype=np.float32)[:, None, None]
    pan = rng.normal(0, 0.02, 2).astype(np.float32) if rng.uniform() < 0.5 else np.zeros(2, np.float32)
    zoom = np.float32(1 + (rng.uniform(-0.02, 0.02) if rng.uniform() < 0.3 else 0.0)) ** t
    wx, wy = (x - 0.5) / zoom + 0.5 + pan[0] * t, (y - 0.5) / zoom + 0.5 + pan[1] * t  # the camera's view
    cells = np.float32(rng.uniform(2, 6))  # how many texture cells the frame spans: coarse or fine grain
    frames = sample(texture(rng), wx * cells, wy * cells)
    for obj in [_Object(rng, n) for _ in range(rng.integers(1, 5))]:
        obj.draw(frames, wx, wy)
    flicker = 1 + rng.uniform(0, 0.05) * rng.normal(size=(n, 1, 1, 1))
    frames = frames * flicker + rng.normal(0, rng.uniform(0, 0.04), frames.shape)
    return np.clip(frames * 255 + 0.5, 0, 255).astype(np.uint8)


class GeneratedDataset(Dataset):
    """`videos` generated clips per epoch, each drawn from (seed, epoch, index): a new set every
    epoch, the same for the same seed (a resumed run sees the clips it would have seen)."""

    def __init__(self, spec: ClipSpec, videos: int, seed: int = 0):
        self.spec, self.videos, self.seed, self.epoch = spec, videos, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.videos

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, i, 0x6E6])
        clip = torch.from_numpy(normalize(generate_clip(rng, self.spec), self.spec))
        return {"index": i, "clip": clip, "label": 0, "error": None}
