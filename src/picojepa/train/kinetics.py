"""Kinetics-700 (2020): the original download (train and validation archives) and its preparation.

Download: the archive lists, then each `.tar.gz`, resumable (HTTP Range onto a `.part` file).
Preparation: extract only the first N classes (alphabetical, as the paper's "first 10 classes"),
train archives -> ROOT/train/<class>/, validation -> ROOT/infer/<class>/, then the CSVs.
"""
from __future__ import annotations

import os
import tarfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Callable

from picojepa.core.decode import VIDEO_SUFFIXES
from picojepa.core.errors import DataLayoutError, PicoJepaError

from .layout import list_videos, write_layout

BASE_URL = "https://s3.amazonaws.com/kinetics/700_2020"
LISTS = {"train": f"{BASE_URL}/train/k700_2020_train_path.txt",
         "val": f"{BASE_URL}/val/k700_2020_val_path.txt"}


class DownloadError(PicoJepaError, OSError):
    """A download could not proceed (offline, refused, or interrupted)."""


def fetch(url: str, dest: Path, timeout: float = 30.0) -> Path:
    """Download `url` to `dest`, resuming a previous `.part` file. Idempotent when complete."""
    if dest.exists():
        return dest
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            mode = "ab" if have and resp.status == 206 else "wb"
            with part.open(mode) as f:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the part file is complete
            part.replace(dest)
            return dest
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: cannot download ({reason}); no network? "
                            f"re-run the same command later to resume") from None
    part.replace(dest)
    return dest


def download(raw: Path, splits=("train", "val"), progress: Callable = iter) -> dict[str, list[Path]]:
    """Fetch the archive lists and every archive of each split into raw/<split>/."""
    out: dict[str, list[Path]] = {}
    for split in splits:
        listing = fetch(LISTS[split], raw / split / Path(LISTS[split]).name)
        urls = [u.strip() for u in listing.read_text().splitlines() if u.strip()]
        out[split] = [fetch(u, raw / split / Path(u).name) for u in progress(urls)]
    return out


def _class_and_name(member: str) -> tuple[str, str] | None:
    """('class', 'file') for an archive member `.../<class>/<file>.mp4`, else None."""
    p = PurePosixPath(member)
    if p.is_absolute() or ".." in p.parts or len(p.parts) < 2:
        return None
    if p.suffix.lower() not in VIDEO_SUFFIXES:
        return None
    return p.parts[-2], p.name


def archive_classes(archives: list[Path]) -> list[str]:
    names: set[str] = set()
    for a in archives:
        with tarfile.open(a) as tar:
            for m in tar:
                if m.isfile() and (cn := _class_and_name(m.name)):
                    names.add(cn[0])
    return sorted(names)


def unpack(archives: list[Path], dest: Path, classes: set[str]) -> int:
    """Extract the videos of `classes` to dest/<class>/<file>; returns how many were written."""
    n = 0
    for a in archives:
        try:
            tar = tarfile.open(a)
        except (tarfile.TarError, OSError) as exc:
            raise DataLayoutError(f"{a}: not a readable tar archive ({exc})") from None
        with tar:
            for m in tar:
                cn = _class_and_name(m.name)
                if not m.isfile() or cn is None or cn[0] not in classes:
                    continue
                target = dest / cn[0] / cn[1]
                if target.exists():
                    n += 1
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                tmp = target.with_name(target.name + ".part")
                with tmp.open("wb") as f:
                    while chunk := src.read(1 << 20):
                        f.write(chunk)
                os.replace(tmp, target)
                n += 1
    return n


def prepare(raw: Path, root: Path, classes: int = 10, seed: int = 0) -> list[str]:
    """Turn downloaded archives under raw/{train,val}/ into the standard layout under root."""
    train_arch = sorted((raw / "train").glob("*.tar.gz"))
    val_arch = sorted((raw / "val").glob("*.tar.gz"))
    if not train_arch or not val_arch:
        raise DataLayoutError(f"{raw}: expected train/*.tar.gz and val/*.tar.gz archives")
    names = archive_classes(train_arch)[:classes]
    if len(names) < 2:
        raise DataLayoutError(f"{raw}: found {len(names)} classes in the train archives")
    unpack(train_arch, root / "train", set(names))
    unpack(val_arch, root / "infer", set(names))
    train = [(p, c) for c, n in enumerate(names) for p in list_videos(root / "train" / n)]
    infer = [(p, c) for c, n in enumerate(names)
             if (root / "infer" / n).is_dir() for p in list_videos(root / "infer" / n)]
    write_layout(root, names, train, infer, seed)
    return names
