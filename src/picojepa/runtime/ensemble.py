"""Bundle + video -> prediction: decode once, run every member, vote. `Ensemble.load(b).predict(p)`."""
from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from picojepa.core import vote as votes
from picojepa.core.bundle import GRAPH_INPUT, LOGITS, PROBS, Bundle, answers, load_bundle
from picojepa.core.clips import ClipSpec, Region, normalize, sliding_starts, uniform_clips, window_picks
from picojepa.core.decode import check_ffmpeg, open_video
from picojepa.core.errors import BundleError, DecodeError
from picojepa.core.roster import ANSWERS
from picojepa.core.shown import shown

from .session import ProviderError, make_session


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


@dataclass
class Decoded:
    path: str
    clips: np.ndarray | None  # (K, 3, T, S, S) float32, normalised (None when not asked for)
    spans: list[tuple[float, float]]
    decode_ms: float
    preprocess_ms: float
    exc: DecodeError | None = None  # why the video could not be decoded
    frames: np.ndarray | None = None  # (K, T, S, S, 3) uint8, before normalisation
    windowed: bool = False  # clips are sliding windows: the answer lists them, even just one

    @property
    def error(self) -> str | None:
        return None if self.exc is None else str(self.exc)


def decode_clips(path: str | Path, spec: ClipSpec, clips: int = 1, window_s: float | None = None,
                 stride_s: float | None = None, device: str = "cpu", normalise: bool = True,
                 region: Region | None = None) -> Decoded:
    """Decode and preprocess `clips` uniform clips of one video, or the clip of each window of
    `window_s` seconds every `stride_s` (its centre clip, or its frames spread); never raises on a bad video (see `error`).
    `device` 'cuda' decodes on the GPU (NVDEC, through torchcodec); frames come back to the CPU
    for the shared preprocessing. `normalise` False keeps only the uint8 frames (what the
    network coordinator sends: its member nodes normalise). `region`: only that part of each
    frame (see `core.clips.Region`)."""
    t0 = time.perf_counter()
    try:
        video = open_video(path, spec.size, spec.seek_mode, device=device, region=region)
        n, fps = video.num_frames, video.fps or 1.0
        if window_s is not None:  # each window of window_s seconds -> its centre clip
            if window_s * fps > n + 0.5:  # in floats: an absurd --window is refused, not overflowed
                raise DecodeError(path, f"{n / fps:.2f} s long, shorter than the {window_s:g} s window "
                                        "(give a shorter --window, or none for one label per video)")
            win = max(spec.span if spec.sampling == "window" else spec.frames, int(round(window_s * fps)))
            wins = [(w, min(n, w + win)) for w in
                    sliding_starts(n, fps, ClipSpec(frames=1, size=spec.size), stride_s or window_s)
                    if w == 0 or w + win <= n]
            picks = [[a + i for i in window_picks(b - a, spec)] for a, b in wins]
        else:
            picks = uniform_clips(n, spec, clips, video.placement_keyframes(spec))
            wins = [(c[0], min(n, c[-1] + 1)) for c in picks]
        raw = video.read_clips(picks)
    except DecodeError as exc:
        return Decoded(str(path), None, [], (time.perf_counter() - t0) * 1e3, 0.0, exc)
    t1 = time.perf_counter()
    batch = np.stack([normalize(f, spec) for f in raw]) if normalise else None
    t2 = time.perf_counter()
    spans = [(a / fps, b / fps) for a, b in wins]
    return Decoded(str(path), batch, spans, (t1 - t0) * 1e3, (t2 - t1) * 1e3, frames=np.stack(raw),
                   windowed=window_s is not None)


def check_decode_device(device: str) -> str:
    """'cpu', or 'cuda' where torch sees a GPU (torchcodec decodes with NVDEC there); a
    ProviderError otherwise, never a silent CPU decode."""
    if device == "cpu":
        return device
    if device != "cuda":
        raise ProviderError(f"unknown decode device {device!r}; choose cpu or cuda")
    check_ffmpeg()  # loads torchcodec, which loads torch: the runtime itself never imports torch
    if not sys.modules["torch"].cuda.is_available():
        raise ProviderError("--decode-device cuda: torch sees no CUDA device (a CPU-only torch "
                            "build, or no GPU); decode on the CPU instead")
    return device


def resolve_vote(bundle: Bundle, method: str | None, alone: bool = True) -> str:
    """The vote `method` resolves to (None: the bundle's default answer, or with `alone` False,
    where the members answer from nodes of their own, its default vote); BundleError where this
    bundle cannot do it (the one place that decides whether a bundle has a stacker)."""
    method = method or (bundle.default_answer if alone else bundle.default_vote)
    if method not in answers(bundle.members):
        known = (*votes.VOTES, *ANSWERS)
        raise BundleError(f"{bundle.root}: holds no {', '.join(ANSWERS[method])} member, so `--vote {method}` is "
                          "unavailable" if method in ANSWERS else f"unknown vote {method!r}; known: {', '.join(known)}")
    if method == "stacked" and not bundle.stacking:
        raise BundleError(f"{bundle.root}: carries no stacking meta-model, so "
                          "`--vote stacked` is unavailable (export it from a run whose "
                          "classify stage fitted one)")
    return method


def check_graph_io(sess, path: Path, bundle: Bundle, members: int) -> None:
    """A BundleError unless the graph takes the bundle's clips alone, as float32, and returns its
    `members` members' probabilities over the bundle's classes, (batch, members, classes)."""
    inputs = {i.name: i for i in sess.get_inputs()}
    outputs = {o.name: o for o in sess.get_outputs()}
    if set(inputs) != {GRAPH_INPUT} or not {LOGITS, PROBS} <= set(outputs):
        raise BundleError(f"{path}: a bundle graph takes {GRAPH_INPUT!r} alone and gives {LOGITS!r} and "
                          f"{PROBS!r}; this one takes {shown(sorted(inputs))} and gives {shown(sorted(outputs))}")
    shape, want = inputs[GRAPH_INPUT].shape, list(bundle.clip.input_shape)
    if len(shape) != 5 or [s if isinstance(s, int) else None for s in shape[1:]] != want:
        raise BundleError(f"{path}: model input {shape} does not match the clip spec "
                          f"(batch, {', '.join(map(str, want))})")
    kinds = {n: x.type for n, x in [(GRAPH_INPUT, inputs[GRAPH_INPUT]), *((o, outputs[o]) for o in (LOGITS, PROBS))]}
    if any(t != "tensor(float)" for t in kinds.values()):
        raise BundleError(f"{path}: a bundle graph's {GRAPH_INPUT}, {LOGITS} and {PROBS} are float32 tensors; "
                          f"this one's are {', '.join(f'{n} {t}' for n, t in kinds.items())}")
    for name in (LOGITS, PROBS):
        out = outputs[name].shape
        if len(out) != 3 or out[1] not in (members, None) and not isinstance(out[1], str):
            raise BundleError(f"{path}: output {name!r} {out} is not (batch, {members} members, classes)")
        if out[-1] != len(bundle.classes):
            raise BundleError(f"{path}: model has {out[-1]} classes, manifest {len(bundle.classes)}")


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


@dataclass(frozen=True)
class VotePlan:
    """Which members vote, with which weights and stacker: read once from the bundle's manifest."""

    voters: tuple[str, ...]
    weights: dict[str, float]
    stacker: dict | None

    @classmethod
    def of(cls, bundle: Bundle) -> "VotePlan":
        voters = tuple(bundle.vote_members)
        return cls(voters, bundle.vote_weights, bundle.stacking)

    def combine(self, probs: np.ndarray, names: list[str], method: str):
        """The vote over probabilities (M, N, C) of the members `names` (in that order); voting
        members absent from `names` (over the network: those that did not answer) are left out."""
        return votes.combine(*self._voting(probs, names, method))

    def scores(self, probs: np.ndarray, names: list[str], method: str) -> np.ndarray:
        """(N, C): the probabilities the vote's confidence is read from (`vote.scores`)."""
        return votes.scores(*self._voting(probs, names, method))

    def _voting(self, probs: np.ndarray, names: list[str], method: str) -> tuple:
        """(probabilities of the members that answer, vote, weights, stacker) for `vote.combine`."""
        if method in ANSWERS:  # not a vote of the voting members: the general member alone, or the hybrid
            need = ANSWERS[method]
            if not set(need) <= set(names):
                raise BundleError(f"the {method} answer needs {', '.join(need)}; answered: {', '.join(names)}")
            return probs[[names.index(m) for m in need]], "soft", None, None
        idx = [names.index(m) for m in self.voters if m in names]
        return probs[idx], method, [self.weights[names[i]] for i in idx], self.stacker


class EnsembleBase:
    """What the in-process `Ensemble` and the networked `NetworkEnsemble` share: the bundle (its
    clips placed as asked), the classes, the vote plan, decoding, `predict`/`predict_many`/
    `close`. A subclass gives `answer` (one decoded video -> Prediction) and `close`.

    `normalise`: whether decoding normalises the clips (False: uint8 frames, which the member
    nodes normalise); `batches`: whether `member_probs` runs clips of several videos in one call;
    `raises`: whether `predict` raises a video's DecodeError (else it is the answer's `error`)."""

    normalise = True
    batches = False
    raises = False
    provider = "cpu"
    answers_alone = True  # one box runs every member: its default is the bundle's default answer

    def __init__(self, bundle: Bundle, decode_device: str = "cpu", placement: str | None = None,
                 region: Region | None = None):
        self.bundle = bundle.with_placement(placement)
        self.classes = list(bundle.classes)
        self.plan = VotePlan.of(bundle)
        self.decode_device = check_decode_device(decode_device)
        self.region = region  # a region of interest for every video (picojepa-run --region)
        self.notes: list[str] = []

    @property
    def stacker(self) -> dict | None:
        return self.plan.stacker

    def check_vote(self, method: str | None) -> str:
        return resolve_vote(self.bundle, method, self.answers_alone)

    def combine(self, probs: np.ndarray, method: str, names: list[str] | None = None):
        """The vote over probabilities (M, N, C) of `names` (default: every member, manifest order)."""
        return self.plan.combine(probs, list(self.bundle.members) if names is None else names, method)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def decode(self, path: str | Path, clips: int = 1, window_s: float | None = None,
               stride_s: float | None = None) -> Decoded:
        """Decode and preprocess the clips of one video (never raises on a bad video)."""
        return decode_clips(path, self.bundle.clip, clips, window_s, stride_s, self.decode_device,
                            normalise=self.normalise, region=self.region)

    def answer(self, d: Decoded, method: str) -> Prediction:
        """One decoded video's Prediction under `method`, a vote `check_vote` resolved."""
        raise NotImplementedError

    def finish(self, d: Decoded, method: str | None = None) -> Prediction:
        """`answer` with the vote checked first (None: the bundle's default)."""
        return self.answer(d, self.check_vote(method))

    def predict(self, path: str | Path, vote: str | None = None, clips: int = 1,
                window_s: float | None = None, stride_s: float | None = None) -> Prediction:
        """Classify one video; in process a video that cannot be decoded raises `DecodeError`,
        over the network it is the Prediction's `error`, as every network failure is."""
        vote = self.check_vote(vote)
        d = self.decode(path, clips, window_s, stride_s)
        if d.exc and self.raises:
            raise d.exc
        return self.answer(d, vote)

    def predict_many(self, paths: Iterable[str | Path], vote: str | None = None, clips: int = 1,
                     window_s: float | None = None, stride_s: float | None = None,
                     prefetch: bool = False) -> Iterator[Prediction]:
        """Classify videos in order; a bad video yields a Prediction with `error` set and the
        batch goes on. `prefetch` decodes the next video in a thread while the current one runs.
        It pays only when the decoding thread has a core of its own (`picojepa-bench`, prefetch
        section), so `picojepa-run` prefetches for a batch and leaves a core free unless told
        otherwise."""
        vote = self.check_vote(vote)
        yield from pipelined(paths, lambda p: self.decode(p, clips, window_s, stride_s),
                             lambda d: self.answer(d, vote), prefetch)


class Ensemble(EnsembleBase):
    """The bundle's graphs on onnxruntime in this process."""

    batches = raises = True

    def __init__(self, bundle: Bundle, provider: str = "auto", variant: str = "fp32",
                 threads: int = 0, decode_device: str = "cpu", placement: str | None = None,
                 region: Region | None = None):
        super().__init__(bundle, decode_device, placement, region)
        graphs = bundle.graphs_of(variant)
        if not graphs:
            raise BundleError(f"{bundle.root}: has no {variant!r} graphs "
                              f"(has: {sorted({g.variant for g in bundle.graphs})})")
        self.sessions, used = [], set()
        for g in graphs:
            sess, dev, note = make_session(g.path, provider, threads)
            check_graph_io(sess, g.path, bundle, len(g.members))
            self.sessions.append((sess, [bundle.members.index(m) for m in g.members]))
            used.add(dev)
            if note and note not in self.notes:
                self.notes.append(note)
        self.provider = "cuda" if "cuda" in used else "cpu"
        self.variant = variant

    def close(self) -> None:
        """Release the onnxruntime sessions."""
        self.sessions = []

    @classmethod
    def load(cls, root: str | Path, provider: str = "auto", variant: str = "fp32", threads: int = 0,
             decode_device: str = "cpu", draft: bool = False, placement: str | None = None,
             region: Region | None = None) -> "Ensemble":
        """The bundle at `root` on onnxruntime, its clips placed by `placement` (None: as the
        recipe trained them) and cut to `region`; `draft` only for the exporter verifying its draft."""
        return cls(load_bundle(root, draft=draft), provider, variant, threads, decode_device, placement, region)

    def member_probs(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities of every member, (M, B, C), in manifest member order."""
        return self.member_outputs(batch, PROBS)

    def member_outputs(self, batch: np.ndarray, output: str = PROBS) -> np.ndarray:
        """One output ('probs' or 'logits') of every member's graph, (M, B, C), in manifest
        member order: the one place the graphs are run."""
        out = np.zeros((len(self.bundle.members), batch.shape[0], len(self.classes)), np.float32)
        for sess, idx in self.sessions:
            out[idx] = sess.run([output], {GRAPH_INPUT: batch})[0].transpose(1, 0, 2)  # (B, m, C) -> (m, B, C)
        return out

    def answer(self, d: Decoded, method: str) -> Prediction:
        if d.error:
            return failed(d, method)
        t0 = time.perf_counter()
        probs = self.member_probs(d.clips)  # (M, K, C)
        inference_ms = (time.perf_counter() - t0) * 1e3
        bad = [m for m, p in zip(self.bundle.members, probs) if not np.isfinite(p).all()]
        if bad:  # never a label voted from NaN: that video's error, the batch goes on
            return failed(d, method, f"{d.path}: member(s) {', '.join(bad)} gave non-finite probabilities "
                                     "(a broken graph?)")
        return assemble(d, Answers(self.bundle.members, probs), self.classes, method, inference_ms,
                        lambda p: self.combine(p, method))


def pipelined(paths: Iterable, decode, finish, prefetch: bool) -> Iterator[Prediction]:
    """finish(decode(p)) for each path in order; with `prefetch`, the next video decodes in a
    thread while the current one is being classified."""
    paths = list(paths)
    if not prefetch:
        for p in paths:
            yield finish(decode(p))
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(decode, paths[0]) if paths else None
        for i in range(len(paths)):
            d = pending.result()
            if i + 1 < len(paths):
                pending = pool.submit(decode, paths[i + 1])
            yield finish(d)
