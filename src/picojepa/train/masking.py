"""Masks for JEPA pre-training, built outside the model (by the loop, from a seeded generator).

Token order is (t, h, w) flattened, as the Conv3d tubelet embedding produces it.
"""
from __future__ import annotations

import numpy as np
import torch


def _split(masked_spatial: np.ndarray, grid: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Spatial mask (H*W,) bool -> (context, target) token indices over all time steps (tubes)."""
    t, h, w = grid
    hw = h * w
    offs = (np.arange(t) * hw)[:, None]
    ctx = (offs + np.flatnonzero(~masked_spatial)[None]).ravel()
    tgt = (offs + np.flatnonzero(masked_spatial)[None]).ravel()
    return ctx, tgt


def tube_mask(grid, ratio: float, rng: np.random.Generator):
    """The paper's tubes: the same random `ratio` of spatial positions masked at every time step."""
    hw = grid[1] * grid[2]
    k = int(round(hw * ratio))
    m = np.zeros(hw, bool)
    m[rng.choice(hw, size=k, replace=False)] = True
    return _split(m, grid)


def multiblock_mask(grid, ratio: float, rng: np.random.Generator, block_scale=(0.1, 0.2),
                    aspect=(0.75, 1.5)):
    """V-JEPA style: a union of random rectangles (tubes through time), trimmed to `ratio`."""
    _, h, w = grid
    hw = h * w
    k = int(round(hw * ratio))
    m = np.zeros((h, w), bool)
    while m.sum() < k:
        area = rng.uniform(*block_scale) * hw
        ar = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1])))
        bh = int(np.clip(round(np.sqrt(area * ar)), 1, h))
        bw = int(np.clip(round(np.sqrt(area / ar)), 1, w))
        y, x = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
        m[y:y + bh, x:x + bw] = True
    flat = m.ravel()
    extra = int(flat.sum()) - k
    if extra > 0:  # trim at random so every sample masks exactly k positions
        flat[rng.choice(np.flatnonzero(flat), size=extra, replace=False)] = False
    return _split(flat, grid)


def future_mask(grid, ratio: float, rng: np.random.Generator):
    """The last `ratio` of the time steps (at least one, at most all but one) are the targets,
    every earlier token the context: the predictor must carry the motion forward. `rng` is
    unused (the mask is the same for every clip); it keeps the signature of the others."""
    t, h, w = grid
    if t < 2:
        raise ValueError(f"a future mask needs at least 2 time steps of tokens, got {t}")
    k = min(t - 1, max(1, int(round(t * ratio))))
    cut = (t - k) * h * w
    return np.arange(cut), np.arange(cut, t * h * w)


MASKS = {"tube": tube_mask, "multiblock": multiblock_mask, "future": future_mask}


def batch_masks(kind: str, grid, ratio: float, seeds: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(context, target) index tensors (B, Kc), (B, Kt); sample i draws from seed seeds[i]."""
    pairs = [MASKS[kind](grid, ratio, np.random.default_rng(s)) for s in seeds]
    ctx = torch.from_numpy(np.stack([p[0] for p in pairs])).long()
    tgt = torch.from_numpy(np.stack([p[1] for p in pairs])).long()
    return ctx, tgt
