"""Checkpoints: written atomically (temporary file, fsync, rename), read with weights_only=True."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from picojepa.runtime.errors import PicoJepaError

FORMAT = 1


class CheckpointError(PicoJepaError, ValueError):
    """A checkpoint is missing, unreadable, or not a picojepa checkpoint of the expected kind."""


def save(obj: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        torch.save({"format": FORMAT, **obj}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load(path: str | Path, kind: str | None = None) -> dict:
    """Load a checkpoint written by `save`; `kind` checks its "kind" field."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:120]})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a picojepa checkpoint (format {FORMAT} expected)")
    if kind and obj.get("kind") != kind:
        raise CheckpointError(f"{path}: expected a {kind!r} checkpoint, found {obj.get('kind')!r}")
    return obj


def state_hash(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names and bytes: equal hashes mean identical weights."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()
