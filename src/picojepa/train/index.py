"""Bring your own videos: a folder per class -> the standard layout, every file probed first."""
from __future__ import annotations

import hashlib
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from picojepa.core import outdir
from picojepa.core.clips import ClipSpec, center_indices
from picojepa.core.decode import VIDEO_SUFFIXES, open_video
from picojepa.core.errors import DataLayoutError, DecodeError
from picojepa.core.shown import shown

from .layout import holdout_split, list_videos, write_layout
from .synth import unlabelled_videos


@dataclass
class IndexResult:
    classes: list[str]
    train: int
    infer: int
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    unlabelled: int = 0  # unlabelled recordings linked for pre-training
    pieces: int = 0  # the pre-training samples they make (train.csv lines)
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # byte-identical labelled videos


def probe(path: Path, spec: ClipSpec = ClipSpec(frames=8, size=32)) -> float:
    """Raise `DecodeError` unless the centre clip of `path` decodes; returns its duration in s."""
    video = open_video(path, spec.size, spec.seek_mode)
    video.read(center_indices(video.num_frames, spec))
    return video.duration_s


def place(src: Path, dst: Path, copy: bool) -> Path:
    """`src` at `dst`: a copy, or a symbolic link to its resolved path (what a data root holds)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    if copy:
        shutil.copy2(src, dst)
    else:
        os.symlink(src.resolve(), dst)
    return dst


def add_unlabelled(folders: list[Path], out: Path, piece_s: float, copy: bool,
                   progress: Callable[[list], Iterator] = iter) -> tuple[list[Path], int, list]:
    """Probe every video under `folders` (recursively) and place it under out/train/unlabelled/.
    A recording of D seconds becomes max(1, D // piece_s) pre-training samples: it is listed that
    many times, and each listing draws its own random clip every epoch, so hours of footage weigh
    as many clip-sized pieces, not as one video. -> (train.csv entries, recordings, bad files)."""
    entries, recordings, bad = [], 0, []
    files = [(k, p) for k, f in enumerate(map(Path, folders)) for p in sorted(Path(f).rglob("*"))
             if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    for k, p in progress(files):
        try:
            seconds = probe(p)
        except DecodeError as exc:
            bad.append((str(p), exc.reason))
            continue
        rel = p.relative_to(folders[k]).as_posix().replace("/", "__")
        dst = place(p, out / "train" / "unlabelled" / f"{k}__{rel}", copy)
        entries += [dst] * max(1, int(seconds // piece_s))
        recordings += 1
    return entries, recordings, bad


MADE_BY_INDEX = ".picojepa-index"  # in a data root this command wrote (what --force may replace)


def _made_by_index(root: Path) -> str | None:
    if not (root / MADE_BY_INDEX).is_file():
        return "was not written by `picojepa-data index` (its videos may be the only copies)"
    other = sorted(p.name for p in root.iterdir() if p.name not in (MADE_BY_INDEX, "classInd.txt", "train", "infer"))
    return f"holds files index did not write ({', '.join(other[:3])})" if other else None


DATA_ROOT = outdir.Kind("data root", _made_by_index)


@dataclass(frozen=True)
class IndexOptions:
    """How `index` splits and places the videos (the `picojepa-data index` options)."""

    holdout: float = 0.2  # fraction of each class held out, unless `held_out_prefixes` decide
    seed: int = 0
    copy: bool = False  # copies instead of symbolic links
    unlabelled: tuple = ()  # folders of unlabelled recordings, pre-training only
    piece_s: float = 10.0  # a recording of D seconds counts as D / piece_s samples
    held_out_prefixes: tuple[str, ...] = ()  # e.g. ("test__", "val__"): the data set's own split
    builtin_per_class: int = 0  # built-in synthetic videos per motion class added to pre-training
    force: bool = False  # replace a root that `index` wrote before


def _unwritable_name(name: str) -> str | None:
    """Why classInd.txt ('<n> <name>' lines, read back with surrounding white space stripped)
    would not give the class name `name` back; None where it would."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a folder named in another encoding: the text files are UTF-8
        return "not valid UTF-8"
    if name.splitlines() != [name]:
        return "it holds a line break"
    if name != name.strip():
        return "it begins or ends with white space"
    return None


def _probed(source: Path, progress: Callable[[list], Iterator]) -> tuple[list[str], list, list]:
    """The class names, the readable (path, class) pairs and the (path, reason) of the others."""
    classes = sorted(p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
    for name in classes:
        why = _unwritable_name(name)
        if why:
            raise DataLayoutError(f"{source}: class folder {shown(name)}: {why}, which classInd.txt cannot "
                                  "hold; rename the folder")
    if len(classes) < 2:
        raise DataLayoutError(f"{source}: needs at least 2 class folders, found {len(classes)}")
    files = [(p, c) for c, name in enumerate(classes) for p in list_videos(source / name)]
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
    return classes, good, bad


def identical_videos(paths: list[Path]) -> list[tuple[Path, Path]]:
    """Pairs of byte-identical files among `paths`, each copy paired with the first of its kind
    (in the given order). Only files that share a size with another are read."""
    by_size: dict[int, list[Path]] = defaultdict(list)
    for p in paths:
        by_size[p.stat().st_size].append(p)
    pairs = []
    for same_size in (group for group in by_size.values() if len(group) > 1):
        by_digest: dict[bytes, list[Path]] = defaultdict(list)
        for p in same_size:
            with p.open("rb") as f:
                by_digest[hashlib.file_digest(f, "sha256").digest()].append(p)
        pairs += [(group[0], copy) for group in by_digest.values() for copy in group[1:]]
    return pairs


def _split(source: Path, good: list, opts: IndexOptions) -> tuple[list[int], list[int]]:
    """(training, held-out) positions in `good`: by file-name prefix, or a stratified draw."""
    if not opts.held_out_prefixes:
        return holdout_split([y for _, y in good], opts.holdout, opts.seed)
    infer_idx = [i for i, (p, _) in enumerate(good) if p.name.startswith(tuple(opts.held_out_prefixes))]
    train_idx = [i for i in range(len(good)) if i not in set(infer_idx)]
    if not infer_idx or not train_idx:
        raise DataLayoutError(f"{source}: the prefixes {', '.join(opts.held_out_prefixes)} leave "
                              f"{len(train_idx)} training and {len(infer_idx)} held-out videos")
    return train_idx, infer_idx


def index(source: str | Path, out: str | Path, opts: IndexOptions = IndexOptions(),
          progress: Callable[[list], Iterator] = iter) -> IndexResult:
    """Probe `source/<class>/*`, then place good files under `out/{train,infer}/<class>/`
    (symbolic links, or copies with `copy`) and write the CSVs. Bad files are listed, not fatal.
    Videos under the `unlabelled` folders join the pre-training list (train.csv) only, cut into
    pieces of `piece_s` seconds (`add_unlabelled`); the classifiers never see them.
    `builtin_per_class` > 0 adds that many built-in synthetic videos per motion class to the
    pre-training list too (train/unlabelled/builtin/), to pre-train on both.
    `held_out_prefixes` (e.g. ("test__", "val__")): a data set's own split, written into its file
    names, decides instead of a random `holdout` draw: those files are held out, the rest train.
    The root is written aside and swapped in whole (`core.outdir`): a root that `index` wrote
    before is replaced only with `force`, leaving nothing of the old one; any other existing
    folder, and a root inside SOURCE or holding it, is refused."""
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise DataLayoutError(f"{source}: not a directory of class folders")
    folders = [Path(f) for f in opts.unlabelled]
    outdir.check_target(out, DATA_ROOT, opts.force, [source, *folders])
    classes, good, bad = _probed(source, progress)
    duplicates = identical_videos([p for p, _ in good])
    train_idx, infer_idx = _split(source, good, opts)
    for f in folders:
        if not f.is_dir():
            raise DataLayoutError(f"{f}: not a directory of unlabelled videos")
    placed: dict[str, list] = {"train": [], "infer": []}
    with outdir.draft(out) as root:
        for split, idx in (("train", train_idx), ("infer", infer_idx)):
            for i in idx:
                src, y = good[i]
                placed[split].append((place(src, root / split / classes[y] / src.name, opts.copy), y))
        pieces, recordings, bad_u = add_unlabelled(folders, root, opts.piece_s, opts.copy, progress)
        if opts.builtin_per_class:
            pieces += unlabelled_videos(root / "train" / "unlabelled" / "builtin", opts.builtin_per_class,
                                        progress=progress)
        write_layout(root, classes, placed["train"], placed["infer"], opts.seed, unlabelled=pieces)
        (root / MADE_BY_INDEX).write_text(f"source: {source.resolve()}\n")
        outdir.commit(root, out)
    return IndexResult(classes, len(placed["train"]), len(placed["infer"]), bad + bad_u, recordings, len(pieces),
                       duplicates)
