"""One video's answer: what the members answered (`Answers`) -> the `Prediction` the commands
print, with its windows and timeline (`assemble`, the one place a Prediction is built), or the
error of a video that could not be classified (`failed`)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .decoding import Decoded


@dataclass
class MemberResult:
    label: str
    index: int
    probability: float
    latency_ms: float | None = None  # over the network: request sent -> this member's answer


@dataclass
class Prediction:
    """One video's answer. JSON schema (one object per line with --format json):
    file, label, index, confidence, vote, members {name: {label, index, probability, latency_ms}},
    timings_ms {decode, preprocess, inference, vote, total}, error (null or message),
    windows (null, or [{start_s, end_s, label, confidence}]), timeline (null, or smoothed labels),
    missing (voting members that did not answer in time: always [] in process, over the network
    the nodes that were down or late; `members` then holds only those that answered)."""

    file: str
    label: str | None = None
    index: int | None = None
    confidence: float | None = None
    vote: str = ""
    members: dict[str, MemberResult] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    windows: list[dict] | None = None
    timeline: list[dict] | None = None
    missing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def failed(d: Decoded, method: str, error: str | None = None,
           missing: list[str] | None = None) -> Prediction:
    """The answer for a video that could not be classified: its error, no label."""
    return Prediction(d.path, vote=method, error=error or d.error,
                      timings_ms={"decode": d.decode_ms, "total": d.decode_ms},
                      missing=list(missing or []))


@dataclass
class Answers:
    """What the members answered for one video: probabilities (M, K clips or windows, C) in
    `members` order; over the network, each member's round trip and the voting members missing."""

    members: list[str]
    probs: np.ndarray
    latency_ms: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def assemble(d: Decoded, a: Answers, classes: list[str], method: str, inference_ms: float,
             combine) -> Prediction:
    """One video's Prediction from its members' answers. `combine(p)` votes over p (M, N, C) ->
    (labels, confidence). Clips are averaged for the video's answer; several windows also get
    their own votes and a smoothed timeline."""
    t1 = time.perf_counter()
    probs, members, latency_ms, missing = a.probs, a.members, a.latency_ms, a.missing
    mean = probs.mean(axis=1, keepdims=True)  # clips averaged: one answer per video
    labels, conf = combine(mean)
    windows = timeline = None
    if d.windowed or len(d.spans) > 1:
        wl, wc = combine(probs)
        windows = _spans(d.spans, wl, wc, classes)
        k = probs.shape[1]  # each window's probabilities averaged with its neighbours' (box of 3)
        smoothed = np.stack([probs[:, max(0, i - 1):i + 2].mean(axis=1) for i in range(k)], axis=1)
        timeline = _spans(d.spans, *combine(smoothed), classes)
    results = {m: MemberResult(classes[int(mean[i, 0].argmax())], int(mean[i, 0].argmax()),
                               float(mean[i, 0].max()), latency_ms.get(m))
               for i, m in enumerate(members)}
    timings = {"decode": d.decode_ms, "preprocess": d.preprocess_ms, "inference": inference_ms,
               "vote": (time.perf_counter() - t1) * 1e3}
    timings["total"] = sum(timings.values())
    k = int(labels[0])
    return Prediction(d.path, classes[k], k, float(conf[0]), method, results,
                      {k: round(v, 3) for k, v in timings.items()}, None, windows, timeline,
                      list(missing))


def _spans(spans, labels, conf, classes) -> list[dict]:
    return [{"start_s": round(a, 3), "end_s": round(b, 3), "label": classes[int(k)],
             "confidence": float(c)} for (a, b), k, c in zip(spans, labels, conf)]
