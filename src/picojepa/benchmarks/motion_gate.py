"""The motion gate's score on real footage: every window of each video read by the live path (as
a stream would be, with the gate scoring but never opening, so that nothing is converted), and the
share of windows each threshold would answer `no motion`.

`python -m picojepa.benchmarks.motion_gate [--window S] [--frames T] VIDEO...` prints one JSON
document: per video its windows' scores, and per threshold the share gated.
"""
from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

import numpy as np

from picojepa.core.clips import ClipSpec
from picojepa.runtime.live.options import LiveOptions, LiveStats
from picojepa.runtime.live.reader import windows

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)


def window_scores(video: Path, spec: ClipSpec, window_s: float = 2.0) -> list[float]:
    """The motion score (% of the picture moved) of each window of `video`."""
    opts = LiveOptions(window_s, None, None, 10.0, 5.0, motion_gate=float("inf"))
    return [round(float(w.motion), 3) for w in windows(str(video), spec, opts, LiveStats(), threading.Event())]


def gate_table(videos: list[Path], spec: ClipSpec, window_s: float = 2.0) -> dict:
    """Per video its windows' scores; over all windows, the share under each threshold."""
    scores = {str(v): window_scores(v, spec, window_s) for v in videos}
    every = np.asarray([s for v in scores.values() for s in v], dtype=np.float64)
    gated = {str(t): round(100.0 * float((every < t).mean()), 1) if every.size else None for t in THRESHOLDS}
    return {"window_s": window_s, "frames": spec.frames, "windows": int(every.size), "gated_percent": gated,
            "percentiles": {str(p): round(float(np.percentile(every, p)), 3) for p in (1, 5, 10, 50, 90)}
            if every.size else {}, "scores": scores}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--window", type=float, default=2.0)
    ap.add_argument("--frames", type=int, default=16)
    a = ap.parse_args()
    print(json.dumps(gate_table(a.videos, ClipSpec(frames=a.frames, size=64, sampling="spread"), a.window), indent=1))


if __name__ == "__main__":
    main()
