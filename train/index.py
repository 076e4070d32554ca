"""Bring your own videos: a folder per class -> the standard layout, every file probed first."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from picojepa.runtime.clips import ClipSpec, center_indices
from picojepa.runtime.decode import open_video
from picojepa.runtime.errors import DataLayoutError, DecodeError

from .layout import VIDEO_EXTENSIONS, holdout_split, write_layout


@dataclass
class IndexResult:
    classes: list[str]
    train: int
    infer: int
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def probe(path: Path, spec: ClipSpec = ClipSpec(frames=8, size=32)) -> None:
    """Raise `DecodeError` unless the centre clip of `path` decodes."""
    video = open_video(path, spec.size, spec.seek_mode)
    video.read(center_indices(video.num_frames, spec))


def _candidates(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in VIDEO_EXTENSIONS or not p.suffix or p.is_symlink())


def index(source: str | Path, out: str | Path, holdout: float = 0.2, seed: int = 0,
          copy: bool = False, progress: Callable[[list], Iterator] = iter) -> IndexResult:
    """Probe `source/<class>/*`, then place good files under `out/{train,infer}/<class>/`
    (symbolic links, or copies with `copy=True`) and write the CSVs. Bad files are listed, not fatal.
    """
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise DataLayoutError(f"{source}: not a directory of class folders")
    classes = sorted(p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataLayoutError(f"{source}: needs at least 2 class folders, found {len(classes)}")
    files = [(p, c) for c, name in enumerate(classes) for p in _candidates(source / name)]
    good, bad = [], []
    for p, c in progress(files):
        try:
            probe(p)
            good.append((p, c))
        except DecodeError as exc:
            bad.append((str(p), exc.reason))
    counts = {c: sum(1 for _, y in good if y == c) for c in range(len(classes))}
    empty = [classes[c] for c, n in counts.items() if n < 2]
    if empty:
        raise DataLayoutError(f"{source}: classes with fewer than 2 readable videos: {empty}")
    train_idx, infer_idx = holdout_split([y for _, y in good], holdout, seed)
    placed: dict[str, list] = {"train": [], "infer": []}
    for split, idx in (("train", train_idx), ("infer", infer_idx)):
        for i in idx:
            src, y = good[i]
            dst = out / split / classes[y] / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists() or dst.is_symlink():
                dst.unlink()
            if copy:
                shutil.copy2(src, dst)
            else:
                os.symlink(src.resolve(), dst)
            placed[split].append((dst, y))
    write_layout(out, classes, placed["train"], placed["infer"], seed)
    return IndexResult(classes, len(placed["train"]), len(placed["infer"]), bad)
