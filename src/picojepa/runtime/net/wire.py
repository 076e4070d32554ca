"""What crosses the network between a coordinator and its member nodes, and how it is checked.

The one owner of the edge network's contract (no NATS import here, so it is testable alone):

    subject   picojepa.<bundle id>.clip   the bundle id is the first 16 hex digits of the sha256 of
              manifest.json, so a node serving another version of a bundle never hears the request
    request   headers  Picojepa-Bundle (full sha256), Picojepa-Shape "K,T,S,S,3",
                       Picojepa-Dtype "uint8"
              payload  the raw uint8 frames, C order: K clips of T frames of SxS RGB. Frames travel
                       before normalisation (4x smaller than float32); each node normalises them
                       with the shared clip module, as the in-process runtime does
    reply     JSON     {bundle, member, node, probs: K x C, inference_ms, error}

Member nodes answer through a queue group named after their member, so copies of one member share
the load and distinct members all answer (scatter-gather). Nothing in a message is ever executed:
the payload is read as uint8 pixels of a checked shape, the reply as JSON of checked types.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from picojepa.core.clips import ClipSpec
from picojepa.core.errors import PicoJepaError
from picojepa.core.shown import cut, shown

PREFIX = "picojepa"
H_BUNDLE, H_SHAPE, H_DTYPE = "Picojepa-Bundle", "Picojepa-Shape", "Picojepa-Dtype"
MAX_CLIPS = 64
SUM_TOLERANCE = 1e-3  # a member's probabilities over the classes sum to 1 within this


class WireError(PicoJepaError, ValueError):
    """A message that does not follow the contract (wrong bundle, shape, type or size)."""


def subject(bid: str) -> str:
    return f"{PREFIX}.{bid[:16]}.clip"


def queue_group(member: str) -> str:
    return f"member-{member}"


def encode_request(bid: str, frames: np.ndarray) -> tuple[dict[str, str], bytes]:
    """uint8 frames (K, T, S, S, 3) -> (headers, payload)."""
    if frames.dtype != np.uint8 or frames.ndim != 5 or frames.shape[-1] != 3:
        raise WireError(f"frames must be uint8 (K, T, S, S, 3), got {frames.dtype} {frames.shape = }")
    headers = {H_BUNDLE: bid, H_SHAPE: ",".join(map(str, frames.shape)), H_DTYPE: "uint8"}
    return headers, np.ascontiguousarray(frames).tobytes()


def decode_request(headers: dict | None, payload: bytes, bid: str, spec: ClipSpec) -> np.ndarray:
    """Check a request against this node's bundle and clip spec -> uint8 frames (K, T, S, S, 3)."""
    headers = headers or {}
    if headers.get(H_BUNDLE) != bid:
        raise WireError(f"request for bundle {str(headers.get(H_BUNDLE))[:16]}, this node serves {bid[:16]}")
    if headers.get(H_DTYPE) != "uint8":
        raise WireError(f"dtype {shown(headers.get(H_DTYPE))}, expected 'uint8'")
    want = (spec.frames, spec.size, spec.size, 3)
    text = str(headers.get(H_SHAPE, ""))
    try:  # five ASCII integers of a few digits each, or refused unread (no quadratic int() of a huge one)
        shape = tuple(int(x) for x in text.split(",")) if len(text) <= 64 and text.isascii() else None
    except ValueError:
        shape = None
    if shape is None:
        raise WireError(f"unreadable shape header {shown(headers.get(H_SHAPE))}")
    if len(shape) != 5 or shape[1:] != want or not 1 <= shape[0] <= MAX_CLIPS:
        raise WireError(f"shape {shown(shape)}, expected (1..{MAX_CLIPS}, {', '.join(map(str, want))})")
    if len(payload) != int(np.prod(shape)):
        raise WireError(f"payload of {len(payload)} bytes, shape {shape} needs {int(np.prod(shape))}")
    return np.frombuffer(payload, dtype=np.uint8).reshape(shape)


@dataclass(frozen=True)
class Reply:
    """One member's answer to one request."""

    bundle: str
    member: str
    node: str
    probs: np.ndarray | None  # (K, C)
    inference_ms: float
    error: str | None = None

    def encode(self) -> bytes:
        return json.dumps({"bundle": self.bundle, "member": self.member, "node": self.node,
                           "probs": None if self.probs is None else self.probs.tolist(),
                           "inference_ms": round(self.inference_ms, 3), "error": self.error}).encode()


def decode_reply(data: bytes, bid: str, clips: int, classes: int) -> Reply:
    """Parse and check a member's reply; WireError for one that does not fit this request: not
    JSON (or nested too deep to parse), another bundle's, or probabilities that are not K x C
    finite numbers in [0, 1] summing to 1 per clip. Every text in it is cut short for messages."""
    try:
        d = json.loads(data)
        member, node, error = cut(str(d["member"])), cut(str(d.get("node", ""))), d.get("error")
        other = d["bundle"]
        probs = None if error is not None else np.asarray(d["probs"])
        ms = 0.0 if error is not None else float(d["inference_ms"])
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise WireError(cut(f"unreadable reply ({type(exc).__name__}: {exc})", 200)) from None
    if other != bid:
        raise WireError(f"reply from member {member} for bundle {shown(other)[:18]}")
    if error is not None:
        return Reply(bid, member, node, None, 0.0, cut(str(error), 200))
    if probs.dtype.kind not in "fiu" or probs.shape != (clips, classes) or not math.isfinite(ms) or ms < 0:
        raise WireError(f"reply from member {member}: probabilities {probs.dtype} {shown(probs.shape)}, "
                        f"inference_ms {ms:g}; expected ({clips}, {classes}) numbers and a time >= 0")
    probs = probs.astype(np.float32)
    if not (np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all()
            and (np.abs(probs.sum(axis=1) - 1) <= SUM_TOLERANCE).all()):
        raise WireError(f"reply from member {member}: probabilities that are not finite numbers in [0, 1] "
                        "summing to 1 per clip")
    return Reply(bid, member, node, probs, ms)
