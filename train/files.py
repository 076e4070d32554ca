"""Text files written atomically (temporary file, then rename): a kill leaves the old file or
the new one, never half of one. CSVs, reports, logs and summaries all go through here."""
from __future__ import annotations

import os
from pathlib import Path


def write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
