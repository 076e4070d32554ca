"""The windows of many live streams classified as they come: the windows ready at the same
moment, from any streams, go through the graphs as one batch (`classify_streams`); a window the
motion gate answered is `no motion`, without inference (`no_motion`)."""
from __future__ import annotations

import threading
import time
from typing import Iterator

import numpy as np

from ..decoding import Decoded
from ..prediction import Answers, Prediction, assemble
from .motion import NO_MOTION
from .windows import Window


def classify_streams(ens, runners: dict, method: str, stop: threading.Event,
                     between=None) -> Iterator[tuple[str, Window, object]]:
    """Classify the windows of every running stream (name -> reader.LiveRunner) as they come:
    the windows ready at the same moment, from any streams, go through the graphs as one batch
    (over the network, one request each); windows the motion gate answered are yielded first,
    as `no motion`. Yields (name, window, Prediction) until every stream has ended, or `stop` is
    set. `between(runners)`, when given, runs before each batch: it may add or remove streams."""
    batched = ens.batches
    while not stop.is_set() and not all(r.finished for r in list(runners.values())):
        if between is not None:
            between(runners)
        ready = [(n, w) for n, r in list(runners.items()) if (w := r.take()) is not None]
        if not ready:
            stop.wait(0.02)
            continue
        for n, w in [x for x in ready if x[1].gated]:
            if n in runners:
                runners[n].stats.no_motion += 1
            yield n, w, no_motion(n, w, method)
        ready = [x for x in ready if not x[1].gated]
        if not ready:
            continue
        t0 = time.perf_counter()
        clips = np.concatenate([runners[n].clip(w) for n, w in ready])
        preprocess_ms = (time.perf_counter() - t0) * 1e3 / len(ready)
        t0 = time.perf_counter()
        probs = ens.member_probs(clips) if batched else None
        per_window_ms = (time.perf_counter() - t0) * 1e3 / len(ready)
        for i, (n, w) in enumerate(ready):
            d = Decoded(n, clips[i:i + 1], [(w.start_s, w.end_s)], w.decode_ms, preprocess_ms,
                        frames=w.frames[None])
            pred = (assemble(d, Answers(ens.bundle.members, probs[:, i:i + 1]), ens.classes, method,
                             per_window_ms, lambda p: ens.combine(p, method)) if batched else ens.answer(d, method))
            if n in runners:
                runners[n].stats.windows += 1
            yield n, w, pred


def no_motion(name: str, w: Window, method: str) -> Prediction:
    """A gated window's answer: the `no motion` label, no members, no confidence."""
    return Prediction(name, NO_MOTION, vote=method, timings_ms={"decode": round(w.decode_ms, 3), "preprocess": 0.0,
                                                                 "inference": 0.0, "vote": 0.0,
                                                                 "total": round(w.decode_ms, 3)})
