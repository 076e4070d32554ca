"""Clips for training: decoded and preprocessed by the shared clip module, never invented.

A video that fails to decode yields `clip=None` with its error; the collate drops it and the loop
lists it at the end. Sampling is seeded by (seed, epoch, index), so results do not depend on the
number of workers or processes, or on a resume.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from picojepa.core.clips import ClipSpec, center_indices, normalize, random_indices, uniform_clips
from picojepa.core.decode import open_video
from picojepa.core.errors import DecodeError

from .augment import Augment


class ClipDataset(Dataset):
    """mode 'random': one random window per item (training); 'center': the evaluation window.

    `cache_mb` > 0: every frame of a video, decoded at clip size, is kept in memory the first time
    the video is read, while the total stays under `cache_mb`; later windows of it are sliced
    from memory instead of decoded again (the same frames: decoding is exact). Videos that would
    not fit are decoded per window as without a cache. The cache lives in this process; DataLoader
    workers would each fill, and lose, their own, so it pays only with `num_workers` 0.
    """

    def __init__(self, items: list[tuple[Path, int]], spec: ClipSpec, seed: int = 0,
                 mode: str = "random", clips_per_video: int = 1, cache_mb: float = 0.0,
                 augment: Augment = Augment()):
        self.items, self.spec, self.seed, self.mode = items, spec, seed, mode
        self.augment = augment if mode == "random" else Augment()  # the evaluation window: as it is
        self.repeats = clips_per_video if mode == "random" else 1
        self.epoch = 0
        self.cache_left = int(cache_mb * 2**20)
        self._frames: dict[Path, tuple[np.ndarray, list[int] | None]] = {}  # frames, keyframes

    @property
    def cached_videos(self) -> int:
        return len(self._frames)

    @property
    def cached_bytes(self) -> int:
        return sum(frames.nbytes for frames, _ in self._frames.values())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items) * self.repeats

    def __getitem__(self, i: int) -> dict:
        """Item i is video i % len(items): `clips_per_video` random windows per video and epoch."""
        path, label = self.items[i % len(self.items)]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if self.mode == "random":
            pick = lambda n, keys: random_indices(n, self.spec, rng)  # noqa: E731
        else:
            pick = lambda n, keys: center_indices(n, self.spec, keys)  # noqa: E731
        try:
            frames = self._load(path, pick)
        except DecodeError as exc:
            return {"index": i, "clip": None, "label": label, "error": str(exc)}
        if self.augment.active:  # after the window's draw, so the frames picked stay the same
            frames = self.augment(frames, rng)
        return {"index": i, "clip": torch.from_numpy(normalize(frames, self.spec)), "label": label, "error": None}

    def _load(self, path: Path, pick) -> np.ndarray:
        """The picked uint8 frames (T, S, S, 3), from the cache, or decoded (and cached)."""
        if path in self._frames:
            frames, keys = self._frames[path]
            return frames[pick(len(frames), keys)]
        video = open_video(path, self.spec.size, self.spec.seek_mode)
        keys = video.placement_keyframes(self.spec)
        size = video.num_frames * self.spec.size * self.spec.size * 3
        if self.cache_left <= 0 or size > self.cache_left:
            return video.read(pick(video.num_frames, keys))
        frames = video.read(range(video.num_frames))[:video.num_frames]  # phantom tail frames dropped
        self._frames[path] = frames, keys
        self.cache_left -= frames.nbytes
        return frames[pick(len(frames), keys)]


def collate(batch: list[dict]) -> dict:
    ok = [b for b in batch if b["clip"] is not None]
    return {
        "index": torch.tensor([b["index"] for b in ok], dtype=torch.long),
        "clip": torch.stack([b["clip"] for b in ok]) if ok else None,
        "label": torch.tensor([b["label"] for b in ok], dtype=torch.long),
        "errors": [b["error"] for b in batch if b["clip"] is None],
    }


def multi_clips(path: Path, spec: ClipSpec, clips: int) -> np.ndarray:
    """`clips` clips covering the video evenly (`uniform_clips`), (clips, 3, T, S, S); one decoder open."""
    video = open_video(path, spec.size, spec.seek_mode)
    frames = video.read_clips(uniform_clips(video.num_frames, spec, clips, video.placement_keyframes(spec)))
    return np.stack([normalize(f, spec) for f in frames])


class MultiClipDataset(Dataset):
    """Every item -> its `clips` uniform windows (for the cached features of a frozen encoder)."""

    def __init__(self, items: list[tuple[Path, int]], spec: ClipSpec, clips: int):
        self.items, self.spec, self.clips = items, spec, clips

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        path, label = self.items[i]
        try:
            clip = torch.from_numpy(multi_clips(path, self.spec, self.clips))
        except DecodeError as exc:
            return {"index": i, "clip": None, "label": label, "error": str(exc)}
        return {"index": i, "clip": clip, "label": label, "error": None}
