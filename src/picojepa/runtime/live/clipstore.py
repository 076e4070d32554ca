"""The event clips folder, kept under its bounds without ever touching a file the service did not write.

Every clip and snapshot the recorders write is entered in a journal, `JOURNAL` in the folder
(JSON, rewritten atomically: a temporary file, then a rename), with its size and modification
time. Retention (`max_bytes`, `max_age_s`) deletes only files of the journal, oldest first, and
only while they are still what was written: a file that is not in the journal, or whose size or
modification time changed since, or that is no longer a regular file, belongs to the user and is
never deleted, whatever its name. A later run reads the journal, so the clips of earlier runs
age out too. A journal that cannot be read is started afresh (its files stay: nothing is deleted
on a guess); one that cannot be written is a one-line error and the clip stays on disk.
"""
from __future__ import annotations

import json
import logging
import os
import re
import stat
import threading
import time
from pathlib import Path

from picojepa.core.console import error, warn

log = logging.getLogger(__name__)
JOURNAL = ".picojepa-clips.json"
# camera_YYYYmmdd-HHMMSS-mmm_label.mp4|jpg, each part letters, digits and '-' (see `names`)
OURS = re.compile(r"[A-Za-z0-9-]+_\d{8}-\d{6}-\d{3}_[A-Za-z0-9-]+\.(?:mp4|jpg)")


def _part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-") or "x"


class ClipStore:
    """The clips folder, bounded in bytes and, optionally, in age: the oldest of the service's own
    clips (and snapshots) go first; nothing else in the folder is ever deleted."""

    def __init__(self, folder: str | Path, max_bytes: float, max_age_s: float | None = None):
        self.folder, self.max_bytes, self.max_age_s = Path(folder), max_bytes, max_age_s
        self.journal = self.folder / JOURNAL
        self.errors = 0  # the journal could not be saved, or a clip past the bounds not deleted
        self._files: dict[str, tuple[int, int]] | None = None  # name -> (size, mtime_ns); read on first use
        self._lock = threading.Lock()

    def names(self, camera: str, label: str, wall: float) -> tuple[Path, Path]:
        """A new clip's and snapshot's paths: camera, time and label; a name already taken in the
        folder (by anyone) gets a number after the label, so no file is ever written over."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(wall)) + f"-{int(wall * 1000) % 1000:03d}"
        base = f"{_part(camera)}_{stamp}_{_part(label)}"
        for n in range(1, 1000):
            name = base if n == 1 else f"{base}-{n}"
            clip, snap = self.folder / f"{name}.mp4", self.folder / f"{name}.jpg"
            if not (clip.exists() or snap.exists()):
                break
        return clip, snap

    def add(self, path: Path) -> None:
        """`path`, just written by the service, enters the journal; then the bounds are enforced.
        Never raises: a journal that cannot be saved is one error line."""
        with self._lock:
            files = self._load()
            try:
                st = os.lstat(path)
            except OSError as exc:
                log.debug("clips: %s: %s", path, exc)
                return
            files[path.name] = (st.st_size, st.st_mtime_ns)
            self._enforce(files)
            self._save(files)

    def enforce(self) -> None:
        """Delete the service's oldest files past `max_age_s`, then past `max_bytes`."""
        with self._lock:
            files = self._load()
            self._enforce(files)
            self._save(files)

    def _enforce(self, files: dict[str, tuple[int, int]]) -> None:
        for name in list(files):
            if not self._still_ours(name, files[name]):
                del files[name]  # gone, or changed by someone else: no longer the service's to delete
        order = sorted(files, key=lambda n: files[n][1])
        if self.max_age_s is not None:
            old = (time.time() - self.max_age_s) * 1e9
            for name in [n for n in order if files[n][1] < old]:
                self._delete(name, files)
        order = [n for n in order if n in files]
        total = sum(files[n][0] for n in order)
        while order and total > self.max_bytes:
            name = order.pop(0)
            total -= files[name][0]
            self._delete(name, files)

    def _still_ours(self, name: str, entry: tuple[int, int]) -> bool:
        try:
            st = os.lstat(self.folder / name)
        except FileNotFoundError:
            return False
        except OSError:
            return True  # cannot tell now: kept in the journal, not deleted
        return stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns) == entry

    def _delete(self, name: str, files: dict) -> None:
        try:
            (self.folder / name).unlink(missing_ok=True)
            del files[name]
        except OSError as exc:
            self.errors += 1
            error(f"clips: cannot delete {self.folder / name} past the folder's bounds ({exc.strerror or exc})")

    def _load(self) -> dict[str, tuple[int, int]]:
        if self._files is not None:
            return self._files
        self._files = {}
        try:
            data = json.loads(self.journal.read_text())
            entries = data["files"].items()
            self._files = {n: (int(size), int(mtime)) for n, (size, mtime) in entries if OURS.fullmatch(n)}
        except FileNotFoundError:
            pass
        except NotADirectoryError:
            pass  # the folder is no folder: every write fails on its own, one error each
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            warn(f"clips: {self.journal} is unreadable ({type(exc).__name__}: {exc}); started afresh, "
                 f"the clips it listed are no longer deleted by retention")
        return self._files

    def _save(self, files: dict[str, tuple[int, int]]) -> None:
        # not fsynced (it is written on the classifier's thread at each event): a journal lost in a
        # crash is read as unreadable and started afresh, which leaves clips behind, never deletes
        tmp = self.journal.with_name(f"{JOURNAL}.partial")
        try:
            with open(tmp, "w") as f:
                json.dump({"version": 1, "files": {n: list(v) for n, v in files.items()}}, f)
            os.replace(tmp, self.journal)
        except OSError as exc:
            self.errors += 1
            error(f"clips: cannot save {self.journal} ({exc.strerror or exc}); "
                  f"the clips written since are not deleted by retention")
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass  # an unwritable folder left nothing behind
