"""Augmentation of pre-training clips that keeps their motion: the same mirror and the same random
resized crop for every frame of a clip (V-JEPA's random resized crop, VideoMAE's multi-scale
crop), so objects move across the frames as they did. Training only: the runtime and the
evaluation see the whole, unmirrored frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

ASPECT = (3 / 4, 4 / 3)  # the crop's width / height, log-uniform in this range


@dataclass(frozen=True)
class Augment:
    """`flip`: probability of mirroring a clip left-right; `crop_scale`: the smallest fraction of
    the frame's area a random crop keeps before it is resized back (1.0: no crop)."""

    flip: float = 0.0
    crop_scale: float = 1.0  # the recipe checks both (config.PretrainConfig)

    @property
    def active(self) -> bool:
        return self.flip > 0 or self.crop_scale < 1.0

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """uint8 frames (T, H, W, 3) -> the same clip mirrored and/or cropped, same shape."""
        if self.crop_scale < 1.0:
            frames = self._crop(frames, rng)
        if self.flip and rng.random() < self.flip:
            frames = frames[:, :, ::-1]
        return np.ascontiguousarray(frames)

    def _crop(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        t, h, w, _ = frames.shape
        area = rng.uniform(self.crop_scale, 1.0) * h * w
        ratio = math.exp(rng.uniform(*np.log(ASPECT)))
        cw = min(w, max(1, int(round(math.sqrt(area * ratio)))))
        ch = min(h, max(1, int(round(math.sqrt(area / ratio)))))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        part = torch.from_numpy(np.ascontiguousarray(frames[:, y:y + ch, x:x + cw])).permute(0, 3, 1, 2).float()
        out = F.interpolate(part, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        return out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
