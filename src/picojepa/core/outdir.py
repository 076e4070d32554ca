"""Output directories: the one way any command writes a folder it may replace.

A command builds its output in a hidden draft beside the target (`.NAME.partial-PID-XXXX`, with
an `INCOMPLETE` marker inside, so no reader takes a draft for the real thing), then swaps it in:
the old folder is renamed aside, the draft renamed to the target, the old one deleted. A kill at
any moment leaves the old folder or the new one, plus at most a draft that the next run of any
command writing there removes (its process is gone).

Before any work, `check_target` decides whether the target may be replaced at all: without
`force` never; with `force` only when it is a folder of the expected kind (`Kind.owns`: a bundle,
a data root made by `picojepa-data index`), never the current directory or a folder above it,
never a folder that is, or holds, one of the `protect` paths (the run being exported, the
source videos being indexed), and never the file system's root or the home directory.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import PicoJepaError

INCOMPLETE = "INCOMPLETE"  # inside a draft: this folder was never finished (nor verified)
PARTIAL = ".partial-"


class OutputDirError(PicoJepaError, ValueError):
    """An output folder may not be written or replaced; the message says which and why."""


@dataclass(frozen=True)
class Kind:
    """What sort of folder a command writes: its name in messages, and the test of whether an
    existing folder is one it may replace (returns the reason it is not, or None)."""

    name: str
    owns: Callable[[Path], str | None]


def _inside(a: Path, b: Path) -> bool:
    """a is b or lies inside b (both resolved)."""
    return a == b or a.is_relative_to(b)


def check_target(out: Path, kind: Kind, force: bool, protect: Iterable[Path] = (),
                 flag: str = "--force") -> None:
    """Refuse, before any work, an `out` that may not be (re)written; see the module docstring."""
    out = Path(out)
    real = out.resolve()
    for p in protect:
        rp = Path(p).resolve()
        if _inside(rp, real) or _inside(real, rp):
            raise OutputDirError(f"{out}: is, holds or lies inside {p}; write the {kind.name} elsewhere")
    if not out.exists() and not out.is_symlink():
        return
    if not force:
        raise OutputDirError(f"{out}: already exists (use {flag} to replace the {kind.name} there)")
    if not out.is_dir() or out.is_symlink():
        raise OutputDirError(f"{out}: not a {kind.name} folder; {flag} replaces only a {kind.name}")
    if _inside(Path.cwd().resolve(), real):
        raise OutputDirError(f"{out}: is the current directory or holds it; {flag} never replaces that")
    if real == Path(real.anchor) or real == Path.home().resolve():
        raise OutputDirError(f"{out}: {flag} never replaces the root or the home directory")
    why = kind.owns(out)
    if why:
        raise OutputDirError(f"{out}: {why}; {flag} replaces only a {kind.name}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_drafts(out: Path) -> list[Path]:
    """Delete drafts (and old folders set aside) of `out` whose process has ended."""
    out = Path(out)
    removed = []
    if not out.parent.is_dir():
        return removed
    for p in out.parent.glob(f".{out.name}.*-*"):
        tag = p.name[len(out.name) + 1:]
        if not tag.startswith((PARTIAL, ".old-")):
            continue
        try:
            pid = int(tag.split("-")[1])
        except (IndexError, ValueError):
            continue
        if not _pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextmanager
def draft(out: Path) -> Iterator[Path]:
    """A fresh draft folder for `out` (stale ones removed first); removed again unless
    `commit` swapped it in. OS errors name the target."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_drafts(out)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{PARTIAL}{os.getpid()}-", dir=out.parent))
        tmp.chmod(0o755)
        (tmp / INCOMPLETE).write_text("written by a picojepa command that has not finished\n")
    except OSError as exc:
        raise OutputDirError(f"{out}: cannot write there ({exc.strerror or exc})") from None
    try:
        yield tmp
    except OSError as exc:
        raise OutputDirError(f"{out}: writing failed, nothing replaced ({exc.strerror or exc})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def commit(tmp: Path, out: Path) -> None:
    """Swap the finished draft `tmp` in as `out`; the old `out`, if any, is deleted last."""
    out = Path(out)
    (tmp / INCOMPLETE).unlink()
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}-{os.urandom(3).hex()}")
        out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        if old is not None:  # put the old folder back: never neither of the two
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def only_entries(allowed: Callable[[str], bool], required: str, what: str) -> Callable[[Path], str | None]:
    """A `Kind.owns` test: the folder holds `required` and nothing whose name `allowed` refuses."""

    def owns(folder: Path) -> str | None:
        if not (folder / required).exists():
            return f"holds no {required}: not a {what}"
        other = sorted(p.name for p in folder.iterdir() if not allowed(p.name))
        if other:
            return f"holds files that are not part of a {what} ({', '.join(other[:3])})"
        return None

    return owns
