"""Occlusion maps: which regions and which moments of a clip moved the answer.

A clip is cut into blocks of frames x cells of the picture (tubelets, coarser than the
encoder's); each block in turn is replaced by the clip's mean colour (0 after normalisation)
and the clip answered again. How much the probability of the class answered on the whole clip
drops without a block is how much that block carried the answer. Written once for the training
report (PyTorch members) and `picojepa-run --explain` (the bundle on onnxruntime): the caller
hands in `scores`, the answer's probabilities of a batch of clips. numpy only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

TIME_BLOCKS = 4  # blocks along time (fewer for a clip of fewer frames)
CELLS = 4  # cells per side of the picture
BATCH = 16  # occluded clips per call of `scores`
TINT = np.array([230, 30, 30], np.float32)  # the colour a block that carried the answer is drawn in
ALPHA = 0.65  # how strongly the block that carried the answer most is tinted
FLOOR = 0.1  # drops below this share of the answer's probability are never drawn at full strength

# clips (B, 3, T, S, S) normalised -> the answer's probabilities (B, C)
Scores = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class OcclusionMap:
    """drop (time blocks, cells, cells): the answered class's probability on the whole clip minus
    its probability with that block occluded (positive: the block supported the answer)."""

    drop: np.ndarray
    target: int  # the class whose probability is measured (the answer on the whole clip)
    base: float  # its probability on the whole clip
    frames: int  # the clip's frames, which the time blocks divide

    def to_json(self) -> dict:
        return {"target": self.target, "base": self.base, "frames": self.frames,
                "time_blocks": [list(e) for e in edges(self.frames, self.drop.shape[0])],
                "drop": np.round(self.drop, 5).tolist()}


def edges(n: int, parts: int) -> list[tuple[int, int]]:
    """`parts` contiguous ranges covering 0..n, as equal as integers allow."""
    cuts = np.linspace(0, n, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]


def occlusion_map(clip: np.ndarray, scores: Scores, target: int | None = None, time_blocks: int = TIME_BLOCKS,
                  cells: int = CELLS) -> OcclusionMap:
    """The occlusion map of one normalised clip (3, T, S, S) under `scores`; `target`: the class
    to follow (default: the one answered on the whole clip)."""
    if clip.ndim != 4 or clip.shape[0] != 3:
        raise ValueError(f"clip must be (3, T, S, S), got {clip.shape = }")
    _, t, h, w = clip.shape
    tb, cy, cx = edges(t, min(time_blocks, t)), edges(h, min(cells, h)), edges(w, min(cells, w))
    base = np.asarray(scores(clip[None]))[0]
    target = int(base.argmax()) if target is None else int(target)
    blocks = [(a, y, x) for a in tb for y in cy for x in cx]
    got = []
    for i in range(0, len(blocks), BATCH):
        batch = np.repeat(clip[None], len(blocks[i:i + BATCH]), axis=0)
        for k, ((t0, t1), (y0, y1), (x0, x1)) in enumerate(blocks[i:i + BATCH]):
            batch[k, :, t0:t1, y0:y1, x0:x1] = 0.0  # the mean colour, after normalisation
        got.append(np.asarray(scores(batch))[:, target])
    drop = float(base[target]) - np.concatenate(got)
    return OcclusionMap(drop.reshape(len(tb), len(cy), len(cx)).astype(np.float32), target, float(base[target]), t)


def heat(m: OcclusionMap, frames: int, height: int, width: int) -> np.ndarray:
    """The map at a picture's size, (frames, height, width) in 0..1: each block's drop over the
    largest, or over FLOOR x the answer's probability where that is larger, so that a map of
    drops all near zero stays faint (blocks that did not support the answer: 0). `frames` may
    differ from the clip's (a thumbnail's subset): frame i shows the block of its share of the clip."""
    top = max(float(m.drop.max()), FLOOR * m.base)
    d = np.clip(m.drop, 0.0, None) / top if top > 0 else np.zeros_like(m.drop)
    tb, cy, cx = d.shape
    ti = np.minimum((np.arange(frames) + 0.5) * tb / frames, tb - 1).astype(int)
    yi = np.minimum(np.arange(height) * cy // height, cy - 1)
    xi = np.minimum(np.arange(width) * cx // width, cx - 1)
    return d[ti][:, yi][:, :, xi]


def overlay(frames: np.ndarray, m: OcclusionMap) -> np.ndarray:
    """uint8 frames (T, H, W, 3), their colours halved towards grey (so that red stands out on any
    picture), with the blocks that carried the answer tinted red, the more the more they carried it."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape = }")
    f = frames.astype(np.float32)
    f = 0.5 * f + 0.5 * f.mean(-1, keepdims=True)
    a = ALPHA * heat(m, *frames.shape[:3])[..., None]
    return (f * (1 - a) + TINT * a).round().clip(0, 255).astype(np.uint8)
