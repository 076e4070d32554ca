"""Bundle + video -> prediction: decode once, run every member, vote. `Ensemble.load(b).predict(p)`."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from . import vote as votes
from .bundle import Bundle, load_bundle
from .clips import ClipSpec, normalize, sliding_starts, uniform_starts, window_indices
from .decode import open_video
from .errors import BundleError, DecodeError
from .session import ProviderError, make_session


@dataclass
class MemberResult:
    label: str
    index: int
    probability: float


@dataclass
class Prediction:
    """One video's answer. JSON schema (one object per line with --format json):
    file, label, index, confidence, vote, members {name: {label, index, probability}},
    timings_ms {decode, preprocess, inference, vote, total}, error (null or message),
    windows (null, or [{start_s, end_s, label, confidence}]), timeline (null, or smoothed labels)."""

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

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Decoded:
    path: str
    clips: np.ndarray | None  # (K, 3, T, S, S)
    spans: list[tuple[float, float]]
    decode_ms: float
    preprocess_ms: float
    error: str | None = None


def decode_clips(path: str | Path, spec: ClipSpec, clips: int = 1, window_s: float | None = None,
                 stride_s: float | None = None, device: str = "cpu") -> Decoded:
    """Decode and preprocess `clips` uniform clips of one video, or the centre clip of each
    window of `window_s` seconds every `stride_s`; never raises on a bad video (see `error`).
    `device` 'cuda' decodes on the GPU (NVDEC, through torchcodec); frames come back to the CPU
    for the shared preprocessing."""
    t0 = time.perf_counter()
    try:
        video = open_video(path, spec.size, spec.seek_mode, device=device)
        n, fps = video.num_frames, video.fps or 1.0
        if window_s is not None:  # each window of window_s seconds -> its centre clip
            win = max(spec.span, int(round(window_s * fps)))
            wins = [(w, min(n, w + win)) for w in
                    sliding_starts(n, fps, ClipSpec(frames=1, size=spec.size), stride_s or window_s)
                    if w == 0 or w + win <= n]
            starts = [a + max(0, (b - a - spec.span) // 2) for a, b in wins]
        else:
            starts = uniform_starts(n, spec, clips)
            wins = [(s, min(n, s + spec.span)) for s in starts]
        raw = [video.read(window_indices(n, spec, s)) for s in starts]
    except DecodeError as exc:
        return Decoded(str(path), None, [], (time.perf_counter() - t0) * 1e3, 0.0, str(exc))
    t1 = time.perf_counter()
    batch = np.stack([normalize(f, spec) for f in raw])
    t2 = time.perf_counter()
    spans = [(a / fps, b / fps) for a, b in wins]
    return Decoded(str(path), batch, spans, (t1 - t0) * 1e3, (t2 - t1) * 1e3)


def check_decode_device(device: str) -> str:
    """'cpu', or 'cuda' where torch sees a GPU (torchcodec decodes with NVDEC there); a
    ProviderError otherwise, never a silent CPU decode."""
    if device == "cpu":
        return device
    if device != "cuda":
        raise ProviderError(f"unknown decode device {device!r}; choose cpu or cuda")
    import sys

    from .decode import check_ffmpeg

    check_ffmpeg()  # loads torchcodec, which loads torch: the runtime itself never imports torch
    if not sys.modules["torch"].cuda.is_available():
        raise ProviderError("--decode-device cuda: torch sees no CUDA device (a CPU-only torch "
                            "build, or no GPU); decode on the CPU instead")
    return device


class Ensemble:
    def __init__(self, bundle: Bundle, provider: str = "auto", variant: str = "fp32",
                 threads: int = 0, decode_device: str = "cpu"):
        self.bundle = bundle
        self.decode_device = check_decode_device(decode_device)
        graphs = bundle.graphs_of(variant)
        if not graphs:
            raise BundleError(f"{bundle.root}: has no {variant!r} graphs "
                              f"(has: {sorted({g.variant for g in bundle.graphs})})")
        self.sessions, self.notes, used = [], [], set()
        for g in graphs:
            sess, dev, note = make_session(g.path, provider, threads)
            self._check_io(sess, g.path)
            self.sessions.append((sess, [bundle.members.index(m) for m in g.members]))
            used.add(dev)
            if note and note not in self.notes:
                self.notes.append(note)
        self.provider = "cuda" if "cuda" in used else "cpu"
        self.variant = variant
        self.classes = list(bundle.classes)
        self.vote_index = [bundle.members.index(m) for m in bundle.vote_members]
        self.weights = [float(bundle.manifest["vote_weights"].get(m, 1.0)) for m in bundle.vote_members]
        self.stacker = bundle.manifest.get("stacking")

    def check_vote(self, method: str | None) -> str:
        """The vote `method` resolves to; BundleError where this bundle cannot do it."""
        method = method or self.bundle.manifest["default_vote"]
        if method not in votes.VOTES:
            raise BundleError(f"unknown vote {method!r}; known: {', '.join(votes.VOTES)}")
        if method == "stacked" and not self.stacker:
            raise BundleError(f"{self.bundle.root}: carries no stacking meta-model, so "
                              "`--vote stacked` is unavailable (export it from a run whose "
                              "classify stage fitted one)")
        return method

    def _check_io(self, sess, path: Path) -> None:
        shape = sess.get_inputs()[0].shape
        want = list(self.bundle.clip.input_shape)
        if len(shape) != 5 or [s if isinstance(s, int) else None for s in shape[1:]] != want:
            raise BundleError(f"{path}: model input {shape} does not match the clip spec "
                              f"(batch, {', '.join(map(str, want))})")
        out = sess.get_outputs()[1].shape
        if out[-1] != len(self.bundle.classes):
            raise BundleError(f"{path}: model has {out[-1]} classes, manifest "
                              f"{len(self.bundle.classes)}")

    @classmethod
    def load(cls, root: str | Path, provider: str = "auto", variant: str = "fp32",
             threads: int = 0, decode_device: str = "cpu") -> "Ensemble":
        return cls(load_bundle(root), provider, variant, threads, decode_device)

    # -- stages ---------------------------------------------------------------------------------
    def decode(self, path: str | Path, clips: int = 1, window_s: float | None = None,
               stride_s: float | None = None) -> Decoded:
        """Decode and preprocess the clips of one video (never raises on a bad video)."""
        return decode_clips(path, self.bundle.clip, clips, window_s, stride_s, self.decode_device)

    def member_probs(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities of every member, (M, B, C), in manifest member order."""
        out = np.zeros((len(self.bundle.members), batch.shape[0], len(self.classes)), np.float32)
        for sess, idx in self.sessions:
            probs = sess.run(["probs"], {"clip": batch})[0]  # (B, m, C)
            out[idx] = probs.transpose(1, 0, 2)
        return out

    def _combine(self, probs: np.ndarray, method: str):
        return votes.combine(probs[self.vote_index], method, self.weights, self.stacker)

    def finish(self, d: Decoded, method: str | None = None) -> Prediction:
        method = self.check_vote(method)
        if d.error:
            return Prediction(d.path, vote=method, error=d.error,
                              timings_ms={"decode": d.decode_ms, "total": d.decode_ms})
        t0 = time.perf_counter()
        probs = self.member_probs(d.clips)  # (M, K, C)
        t1 = time.perf_counter()
        mean = probs.mean(axis=1, keepdims=True)  # clips averaged: one answer per video
        labels, conf = self._combine(mean, method)
        windows = timeline = None
        if len(d.spans) > 1:
            wl, wc = self._combine(probs, method)
            windows = [{"start_s": round(a, 3), "end_s": round(b, 3), "label": self.classes[int(k)],
                        "confidence": float(c)} for (a, b), k, c in zip(d.spans, wl, wc)]
            timeline = self._smooth(probs, d.spans, method)
        t2 = time.perf_counter()
        members = {m: MemberResult(self.classes[int(mean[i, 0].argmax())], int(mean[i, 0].argmax()),
                                   float(mean[i, 0].max()))
                   for i, m in enumerate(self.bundle.members)}
        timings = {"decode": d.decode_ms, "preprocess": d.preprocess_ms,
                   "inference": (t1 - t0) * 1e3, "vote": (t2 - t1) * 1e3}
        timings["total"] = sum(timings.values())
        k = int(labels[0])
        return Prediction(d.path, self.classes[k], k, float(conf[0]), method, members,
                          {a: round(b, 3) for a, b in timings.items()}, None, windows, timeline)

    def _smooth(self, probs: np.ndarray, spans, method: str) -> list[dict]:
        """Each window's vote probabilities averaged with its neighbours (a 3-window box filter)."""
        k = probs.shape[1]
        smoothed = np.stack([probs[:, max(0, i - 1):i + 2].mean(axis=1) for i in range(k)], axis=1)
        labels, conf = self._combine(smoothed, method)
        return [{"start_s": round(a, 3), "end_s": round(b, 3), "label": self.classes[int(j)],
                 "confidence": float(c)} for (a, b), j, c in zip(spans, labels, conf)]

    # -- public API -----------------------------------------------------------------------------
    def predict(self, path: str | Path, vote: str | None = None, clips: int = 1,
                window_s: float | None = None, stride_s: float | None = None) -> Prediction:
        """Classify one video; a video that cannot be decoded raises `DecodeError`."""
        vote = self.check_vote(vote)
        d = self.decode(path, clips, window_s, stride_s)
        if d.error:
            raise DecodeError(path, d.error.split(": ", 1)[-1])
        return self.finish(d, vote)

    def predict_many(self, paths: Iterable[str | Path], vote: str | None = None, clips: int = 1,
                     window_s: float | None = None, stride_s: float | None = None,
                     prefetch: bool = False) -> Iterator[Prediction]:
        """Classify videos in order; a bad video yields a Prediction with `error` set and the
        batch goes on. `prefetch` decodes the next video in a thread while the current one runs.
        It pays when the decoding thread has a core of its own: on 2 cores with onnxruntime on
        1 thread, 1.7x on the 48 short demo videos and 1.08x on the real bench clips; with
        onnxruntime on every core it was 0.95-0.99x (`picojepa-bench`, prefetch section). So
        `picojepa-run` prefetches for a batch and leaves a core free unless told otherwise."""
        paths = list(paths)
        if not paths:
            return
        vote = self.check_vote(vote)
        if not prefetch:
            for p in paths:
                yield self.finish(self.decode(p, clips, window_s, stride_s), vote)
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self.decode, paths[0], clips, window_s, stride_s)
            for i in range(len(paths)):
                d = pending.result()
                if i + 1 < len(paths):
                    pending = pool.submit(self.decode, paths[i + 1], clips, window_s, stride_s)
                yield self.finish(d, vote)
