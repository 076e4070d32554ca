"""Text files written atomically (temporary file, then rename): a kill leaves the old file or
the new one, never half of one. CSVs, reports, logs and summaries all go through here."""
from __future__ import annotations

import os
from pathlib import Path


def write_text(path: str | Path, text: str) -> Path:
    """Write atomically; a failed write (a full disk) removes its temporary file and raises an
    OSError naming the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, f"cannot write {path} ({exc.strerror or exc})") from None
    return path
