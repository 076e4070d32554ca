"""The on-disk data layout every stage reads (the original's):

    ROOT/classInd.txt                 "1 name" per line, 1-based, in class order
    ROOT/train/<class>/*              training videos
    ROOT/train/unlabelled/*           optional: more videos, for pre-training only
    ROOT/train/train.csv              video_name               (no labels: every video pre-trained on)
    ROOT/train/class.csv              video_name,label         (labelled, the general model)
    ROOT/train/model-1.csv .. -4.csv  disjoint stratified quarters of class.csv
    ROOT/infer/<class>/*              held-out evaluation videos
    ROOT/infer/class.csv              video_name,label

Paths in a CSV are relative to the CSV's folder; absolute paths or paths escaping the root are
rejected. Labels are class names.
"""
from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from picojepa.core.decode import VIDEO_SUFFIXES
from picojepa.core.errors import DataLayoutError
from picojepa.core.roster import GENERAL, MEMBERS, PARTS
from picojepa.core.textio import read_text

from .files import write_text


def write_csv(path: Path, header: list[str], rows: list[tuple]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    write_text(path, buf.getvalue())


def write_classes(root: Path, classes: list[str]) -> None:
    write_text(root / "classInd.txt", "".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))


def read_classes(root: str | Path) -> list[str]:
    path = Path(root) / "classInd.txt"
    lines = read_text(path, DataLayoutError, "class list").splitlines()
    classes = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = [x.strip() for x in line.split(None, 1)]  # a class name may hold spaces
        if len(parts) != 2 or not parts[0].isascii() or not parts[0].isdigit() or \
                int(parts[0]) != len(classes) + 1:
            raise DataLayoutError(f"{path}:{n}: expected '{len(classes) + 1} <name>', got {line!r}")
        if parts[1] in classes:
            raise DataLayoutError(f"{path}:{n}: class {parts[1]!r} is listed twice")
        classes.append(parts[1])
    if len(classes) < 2:
        raise DataLayoutError(f"{path}: needs at least 2 classes, found {len(classes)}")
    return classes


def confined(base: Path, rel: str, where: str) -> Path:
    """`base/rel`, refusing absolute paths and paths that leave `base`."""
    if not rel or os.path.isabs(rel) or rel.startswith("~"):
        raise DataLayoutError(f"{where}: path {rel!r} must be relative to {base}")
    # Lexical check: `..` may not climb out. Symbolic links inside the root are the user's own
    # choice (`picojepa-data index` makes them) and are followed.
    if os.path.normpath(rel).split(os.sep)[0] == "..":
        raise DataLayoutError(f"{where}: path {rel!r} escapes {base}")
    return base / rel


def read_items(csv_path: str | Path, classes: list[str] | None = None) -> list[tuple[Path, int]]:
    """Rows of a layout CSV as (path, label index); label -1 where the CSV has no label column."""
    csv_path = Path(csv_path)
    text = read_text(csv_path, DataLayoutError, "CSV file")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise DataLayoutError(f"{csv_path}: not a CSV file ({exc})") from None
    reader = iter(rows)
    header = next(reader, None)
    if not header or header[0] != "video_name":
        raise DataLayoutError(f"{csv_path}: first column must be 'video_name', got {header}")
    labelled = classes is not None
    if labelled and (len(header) < 2 or header[1] != "label"):
        raise DataLayoutError(f"{csv_path}: missing column 'label' (header {header})")
    items = []
    for n, row in enumerate(reader, 2):
        if not row:
            continue
        where = f"{csv_path}:{n}"
        path = confined(csv_path.parent, row[0], where)
        if not path.exists():
            raise DataLayoutError(f"{where}: file not found: {row[0]}")
        label = -1
        if labelled:
            if len(row) < 2 or row[1] not in classes:
                raise DataLayoutError(f"{where}: unknown label {row[1:2]} (classes: {classes})")
            label = classes.index(row[1])
        items.append((path, label))
    return items


def stratified_parts(labels: list[int], parts: int, seed: int) -> list[list[int]]:
    """Split indices into `parts` disjoint groups, each keeping the class balance of the whole."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        by_class[y].append(i)
    out: list[list[int]] = [[] for _ in range(parts)]
    offset = 0
    for y in sorted(by_class):
        idx = list(rng.permutation(by_class[y]))
        for k, i in enumerate(idx):
            out[(k + offset) % parts].append(int(i))
        offset += len(idx)  # rotate so remainders do not all land in part 1
    return [sorted(p) for p in out]


def holdout_split(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified (train, held-out) index lists; every class keeps at least one of each when it can."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        by_class[y].append(i)
    train, held = [], []
    for y in sorted(by_class):
        idx = [int(i) for i in rng.permutation(by_class[y])]
        k = int(round(len(idx) * fraction))
        k = min(max(k, 1 if len(idx) > 1 else 0), len(idx) - 1)
        held += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(held)


def write_layout(root: Path, classes: list[str], train: list[tuple[Path, int]],
                 infer: list[tuple[Path, int]], seed: int = 0, unlabelled: list[Path] = ()) -> None:
    """Write classInd.txt and every CSV for videos already placed under ROOT/train and ROOT/infer.
    `unlabelled` videos (under ROOT/train) join train.csv, the pre-training list, only."""
    root = Path(root)
    tdir, idir = root / "train", root / "infer"
    trel = [(p.relative_to(tdir).as_posix(), y) for p, y in train]
    irel = [(p.relative_to(idir).as_posix(), y) for p, y in infer]
    write_classes(root, classes)
    write_csv(tdir / "train.csv", ["video_name"],
              [(p,) for p, _ in trel] + [(Path(p).relative_to(tdir).as_posix(),) for p in unlabelled])
    write_csv(tdir / "class.csv", ["video_name", "label"], [(p, classes[y]) for p, y in trel])
    for k, part in enumerate(stratified_parts([y for _, y in trel], PARTS, seed), 1):
        write_csv(tdir / f"model-{k}.csv", ["video_name", "label"],
                  [(trel[i][0], classes[trel[i][1]]) for i in part])
    write_csv(idir / "class.csv", ["video_name", "label"], [(p, classes[y]) for p, y in irel])


def list_videos(folder: Path) -> list[Path]:
    """The entries of a class folder worth trying as videos: a video suffix, no suffix at all, a
    link (its target decides) or a folder (reported as not a video, never silently passed over)."""
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in VIDEO_SUFFIXES or not p.suffix or p.is_symlink() or p.is_dir())


def member_csv(root: str | Path, member: str) -> Path:
    """The CSV a classifier member trains on: the general one -> class.csv, partial k -> model-k.csv."""
    tdir = Path(root) / "train"
    return tdir / "class.csv" if member == GENERAL else tdir / f"model-{member}.csv"


def check_layout(root: str | Path, labelled: bool = True) -> list[str]:
    """Read every CSV of a data root before any work starts, so that a bad layout fails in a
    second with the file and line named, not after an hour of training. `labelled=False`
    (pre-training alone) needs only train/train.csv. Returns the classes."""
    root = Path(root)
    if not root.is_dir():
        raise DataLayoutError(f"{root}: no such data root")
    if not labelled:
        read_items(root / "train" / "train.csv")
        return []
    if not (root / "classInd.txt").is_file():
        raise DataLayoutError(f"{root}: no classInd.txt: not a data root in the standard layout "
                              "(make one with `picojepa-data index` or `picojepa-data synth`)")
    classes = read_classes(root)
    read_items(root / "train" / "train.csv")
    for member in MEMBERS:
        read_items(member_csv(root, member), classes)
    read_items(root / "infer" / "class.csv", classes)
    return classes
