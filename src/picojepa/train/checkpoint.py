"""Checkpoints: written atomically (temporary file, fsync, rename), read with weights_only=True."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from picojepa.core.console import one_line
from picojepa.core.errors import PicoJepaError

from .recipe_file import with_defaults

FORMAT = 1


class CheckpointError(PicoJepaError, ValueError):
    """A checkpoint is missing, unreadable, or not a picojepa checkpoint of the expected kind."""


def save(obj: dict, path: str | Path) -> Path:
    """Write atomically; a failed write (a full disk) removes its temporary file, keeps the old
    checkpoint, and raises CheckpointError naming the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            torch.save({"format": FORMAT, **obj}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch reports a failed write as RuntimeError
        tmp.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc, 120)
        raise CheckpointError(f"{path}: cannot write the checkpoint ({reason}); the previous one, "
                              "if any, is kept") from None
    return path


# Recipe keys a resumed pre-training may change: they do not touch what pre-training computes
# (the classifiers, where data lives or how the built-in set is made, the loader's workers and
# frame cache, where a new run's weights start: a checkpoint has its own). Everything else must
# equal what the checkpoint was trained with.
RESUME_FREE = ("name", "classify", "data", "pretrain.num_workers", "pretrain.cache_mb", "pretrain.init")
EVALUATE_FREE = ("name", "data", "pretrain.num_workers", "pretrain.cache_mb", "pretrain.init")  # the classifiers must match too


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def recipe_drift(saved: dict, now: dict, free: tuple[str, ...] = RESUME_FREE) -> list[str]:
    """'key: saved -> now' for every recipe key (outside `free`) that differs."""
    a, b = _flat(saved), _flat(now)
    keys = sorted(k for k in set(a) | set(b)
                  if not any(k == f or k.startswith(f + ".") for f in free) and a.get(k) != b.get(k))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys]


def check_resume(state: dict, recipe: dict, path: Path, free: tuple[str, ...] = RESUME_FREE,
                 doing: str = "--resume would mix the two") -> None:
    """Refuse to continue (or classify, or evaluate) a checkpoint under a recipe other than the
    one it was trained with; `free` are the keys that may differ."""
    drift = recipe_drift(with_defaults(state.get("recipe") or {}), recipe, free)
    if drift:
        more = f" and {len(drift) - 4} more" if len(drift) > 4 else ""
        raise CheckpointError(f"{path}: trained with another recipe, {doing} ({'; '.join(drift[:4])}"
                              f"{more}); use the recipe it was trained with, or start over with --force")


def load(path: str | Path, kind: str | None = None) -> dict:
    """Load a checkpoint written by `save`; `kind` checks its "kind" field."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: "
                              f"{one_line(exc, 120)})") from None
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
