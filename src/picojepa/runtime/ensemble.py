"""Bundle + video -> prediction: decode once, run every member, vote. `Ensemble.load(b).predict(p)`.

`EnsembleBase` is what the in-process `Ensemble` and the networked one share; the steps are
modules of their own: decoding (`decoding`), the vote (`vote_plan`), the answer (`prediction`)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from picojepa.core.bundle import GRAPH_INPUT, PROBS, Bundle, load_bundle
from picojepa.core.clips import Region
from picojepa.core.errors import BundleError

from .decoding import Decoded, check_decode_device, decode_clips, pipelined
from .prediction import Answers, Prediction, assemble, failed
from .session import check_graph_io, make_session
from .vote_plan import VotePlan, resolve_vote


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
                 region: Region | None = None, spinning: bool = False):
        super().__init__(bundle, decode_device, placement, region)
        graphs = bundle.graphs_of(variant)
        if not graphs:
            raise BundleError(f"{bundle.root}: has no {variant!r} graphs "
                              f"(has: {sorted({g.variant for g in bundle.graphs})})")
        self.sessions, used = [], set()
        for g in graphs:
            sess, dev, note = make_session(g.path, provider, threads, spinning)
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
