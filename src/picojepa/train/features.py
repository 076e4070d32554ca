"""The frozen encoder's features of every video, computed once and shared by all heads."""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from picojepa.core.clips import ClipSpec
from picojepa.core.console import progress

from .dataset import MultiClipDataset, collate
from .heads import pool_tokens, time_steps
from .motion import MotionEncoder
from .vit import VideoViT


@dataclass
class Features:
    """Pooled features of each readable video, feats (N, clips, D) (for the attentive head its
    tokens, (N, clips, tokens, D)), with labels (N,), paths, and the videos that failed."""

    feats: torch.Tensor
    labels: torch.Tensor
    paths: list[str]
    errors: list[str]


BATCH = 8  # videos per encoder call


@torch.no_grad()
def extract(encoder: VideoViT | MotionEncoder, items: list[tuple[Path, int]], clips: int, num_workers: int = 0,
            desc: str = "features", show_progress: bool = True, pool: str = "mean",
            spec: ClipSpec | None = None) -> Features:
    """The pooled features of `clips` clips of each video, sampled by `spec` (default: the clip the
    encoder was made for; a recipe may read a pre-trained encoder's clips differently, e.g. spread
    over the video instead of as a window, as long as frames and size stay its own)."""
    encoder.eval()
    loader = DataLoader(MultiClipDataset(items, spec or encoder.clip, clips), BATCH,
                        num_workers=num_workers, collate_fn=collate)
    feats, labels, paths, errors = [], [], [], []
    for batch in progress(loader, desc=desc, disable=not show_progress):
        errors += batch["errors"]
        if batch["clip"] is None:
            continue
        x = batch["clip"]  # (B, clips, 3, T, H, W)
        b = x.shape[0]
        f = pool_tokens(encoder(x.flatten(0, 1)), pool, time_steps(encoder))
        f = f.view(b, clips, *f.shape[1:])  # (B, clips, D) or, for 'tokens', (B, clips, N, D)
        feats.append(f)
        labels.append(batch["label"])
        paths += [str(items[i][0]) for i in batch["index"].tolist()]
    if not feats:
        one = pool_tokens(torch.zeros(1, encoder.num_tokens, encoder.dim), pool, time_steps(encoder))
        shape = (0, clips, *one.shape[1:])  # (0, clips, D) or, for 'tokens', (0, clips, N, D)
        return Features(torch.zeros(shape), torch.zeros(0, dtype=torch.long), [], errors)
    return Features(torch.cat(feats), torch.cat(labels), paths, errors)


@dataclass
class FeatureSets:
    """What a run's classifiers and its evaluation read: the labelled (`train`) and held-out
    (`infer`) videos' features through the pre-trained encoder, a randomly initialised one of the
    same shape (the yardstick), and the motion-energy numbers (the motion member); the classes.
    `start_*`: through the encoder the run's pre-training started from (`pretrain.init`, e.g. the
    foundation), frozen, where it did not start from scratch."""

    classes: list[str]
    train: Features
    infer: Features
    random_train: Features
    random_infer: Features
    motion_train: Features
    motion_infer: Features
    start_train: Features | None = None
    start_infer: Features | None = None

    def to_cache(self) -> dict:
        """The sets as plain tensors and lists (the feature cache's `sets`; classes not included)."""
        return {f.name: vars(getattr(self, f.name)) for f in fields(self)
                if f.name != "classes" and getattr(self, f.name) is not None}

    @classmethod
    def from_cache(cls, sets: dict, classes: list[str]) -> "FeatureSets":
        return cls(classes, **{k: Features(v["feats"], v["labels"], list(v["paths"]), list(v["errors"]))
                               for k, v in sets.items()})


def subset(f: Features, paths: list[str]) -> Features:
    pos = {p: i for i, p in enumerate(f.paths)}
    idx = [pos[p] for p in paths if p in pos]
    return Features(f.feats[idx], f.labels[idx], [f.paths[i] for i in idx], [])
