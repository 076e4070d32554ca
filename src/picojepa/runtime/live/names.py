"""A stream's name: as one NATS subject token or MQTT topic level (`token`), and the names a
`--streams` file gives its sources (`read_streams_file`)."""
from __future__ import annotations

import re

from picojepa.core.redact import redact
from picojepa.core.textio import read_text

from .source import LiveError


def token(name: str) -> str:
    """A stream's name as one NATS subject token or MQTT topic level (and a Home Assistant object
    id): letters, digits, _ and -."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "stream"


def read_streams_file(path: str) -> list[tuple[str, str]]:
    """`SOURCE [NAME]` per line (# comments, blank lines skipped) -> [(name, source)]; a
    source without a name is named by itself, credentials masked. LiveError for an unreadable
    file or a repeated name."""
    lines = read_text(path, LiveError, "streams file").splitlines()
    out: list[tuple[str, str]] = []
    for n, line in enumerate(lines, 1):
        parts = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].split()  # '#' inside a URL is no comment
        if not parts:
            continue
        if len(parts) > 2:
            raise LiveError(f"{path}:{n}: expected 'SOURCE [NAME]', got {line.strip()!r}")
        name = parts[1] if len(parts) == 2 else redact(parts[0])
        if name in {a for a, _ in out}:
            raise LiveError(f"{path}:{n}: the name {name!r} is used twice")
        out.append((name, parts[0]))
    if not out:
        raise LiveError(f"{path}: lists no stream")
    return out
