"""Frame differencing as graph operations: the motion-energy numbers of a clip, and the member
that votes with them.

The numbers (for T frames of S x S): the absolute difference of consecutive grey frames averaged
over a 4x4 grid of cells (16), over each of the T-1 frame transitions (T-1), and 7 global
statistics (mean, spread and peak of the motion energy, the fraction of moving pixels, the drift
of the motion's centre of mass along x and y, the mean brightness). `motion_baseline` computes
them on 16 frames spread over a whole video (the yardstick of every report); `MotionEncoder`
computes them on the recipe's clip inside the bundle's graph, so the runtime feeds it the same
decoded clip as every JEPA member and a linear head on them votes beside those members (a member
kind that is not a neural network: the hybrid vote). `classify` trains that head on the
numbers `features_for` caches with the encoder's features.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from picojepa.core.clips import ClipSpec

from .config import Recipe

GRID = 4
MOVING = 0.1  # a pixel "moves" when its grey level changes by more than this (0..1 scale)


def n_features(frames: int) -> int:
    return GRID * GRID + (frames - 1) + 7


def motion_energy(rgb: torch.Tensor) -> torch.Tensor:
    """RGB clips in [0, 1], (B, 3, T, S, S) -> the n_features(T) motion-energy numbers (B, F)."""
    b, _, t, s, _ = rgb.shape
    grey = rgb.mean(1)  # (B, T, S, S)
    d = (grey[:, 1:] - grey[:, :-1]).abs()  # (B, T-1, S, S)
    cells = d.mean(1).reshape(b, GRID, s // GRID, GRID, s // GRID).mean((2, 4)).reshape(b, GRID * GRID)
    per_step = d.mean((2, 3))  # (B, T-1)
    w = d.sum((2, 3)) + 1e-6
    pos = torch.arange(s, dtype=rgb.dtype, device=rgb.device) / (s - 1)
    cx = (d * pos.view(1, 1, 1, s)).sum((2, 3)) / w
    cy = (d * pos.view(1, 1, s, 1)).sum((2, 3)) / w
    steps = torch.arange(t - 1, dtype=rgb.dtype, device=rgb.device) - (t - 2) / 2

    def drift(c: torch.Tensor) -> torch.Tensor:  # least-squares slope over time
        return (steps * (c - c.mean(1, keepdim=True))).sum(1) / (steps * steps).sum().clamp_min(1e-6)

    spread = ((per_step - per_step.mean(1, keepdim=True)) ** 2).mean(1).sqrt()
    glob = torch.stack([d.mean((1, 2, 3)), spread, d.amax((1, 2, 3)), (d > MOVING).to(rgb.dtype).mean((1, 2, 3)),
                        drift(cx), drift(cy), grey.mean((1, 2, 3))], dim=1)
    return torch.cat([cells, per_step, glob], dim=1)


class MotionEncoder(nn.Module):
    """Normalised clips (B, 3, T, S, S), as the shared clip module makes them -> one 'token' of
    motion-energy numbers (B, 1, F): the encoder interface a head and `VideoClassifier` expect.
    No weights: mean and std undo the normalisation."""

    def __init__(self, clip: ClipSpec):
        super().__init__()
        if clip.frames < 2 or clip.size % GRID:
            raise ValueError(f"a motion member needs >= 2 frames and a size divisible by {GRID}, got {clip}")
        self.clip, self.num_tokens, self.dim = clip, 1, n_features(clip.frames)
        self.register_buffer("mean", torch.tensor(clip.mean, dtype=torch.float32).view(1, 3, 1, 1, 1))
        self.register_buffer("std", torch.tensor(clip.std, dtype=torch.float32).view(1, 3, 1, 1, 1))

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        return motion_energy(x * self.std + self.mean).unsqueeze(1)


def member_recipe(recipe: Recipe) -> Recipe:
    """The recipe the motion member's checkpoint carries: the run's clip, a linear head on the
    (single) token, `model.kind` motion so that export and evaluation rebuild the right encoder."""
    return dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, kind="motion"),
                               classify=dataclasses.replace(recipe.classify, head="linear", pool="mean",
                                                            finetune=False))
