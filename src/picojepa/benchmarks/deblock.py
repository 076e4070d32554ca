"""Decoding live sources without H.264's deblocking (loop) filter: what it saves and what it costs.

- `decode_pairs`: CPU ms per frame of one camera stream decoded with one thread, each variant
  (the filter on, skipped, skipped with FFmpeg's fast flags) measured in interleaved rounds, its
  order turned each round, so that a busy machine's load falls on all alike; medians and the
  ratio to the filter on, in one run.
- `live_accuracy`: labelled videos (the folder names the class) decoded by the live path's
  decoder with and without the filter, their clip frames converted as the file path does or in
  one step (`PIXELS`), each video's file-path clip (`center_indices`) taken from the frames and
  classified: the accuracy of each, and which answers differ from the file path's pixels'.

`python -m picojepa.benchmarks.deblock decode CAMERA.ts...` and
`python -m picojepa.benchmarks.deblock accuracy BUNDLE VIDEO...` print one JSON document.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from picojepa.core.clips import center_indices, normalize
from picojepa.runtime.decoding import Decoded
from picojepa.runtime.ensemble import Ensemble
from picojepa.runtime.live.options import LiveOptions
from picojepa.runtime.live.source import clip_rgb, open_source

from .stats import turned
from .stream_decode import timed_packets

# variant -> the decoder's options (FFmpeg's names)
VARIANTS = {"loop filter on": {}, "loop filter skipped": {"skip_loop_filter": "all"},
            "skipped, flags2 +fast": {"skip_loop_filter": "all", "flags2": "+fast"}}


def _decode_ms(path: Path, options: dict, frames: int) -> float:
    """CPU ms (this thread's) per frame decoding the first `frames` frames with one thread."""
    got, spent = 0, 0.0
    for decoded, seconds in timed_packets(path, options, clock=time.thread_time):
        got += len(decoded)
        spent += seconds
        if got >= frames:
            break
    return spent * 1e3 / max(1, got)


def decode_pairs(camera: Path, rounds: int = 7, frames: int = 300) -> dict:
    """Each variant's CPU ms per frame over `rounds` interleaved rounds: samples, median, and the
    ratio of the filter-on median to each variant's (above 1: cheaper than the filter on)."""
    names = list(VARIANTS)
    samples: dict[str, list[float]] = {n: [] for n in names}
    _decode_ms(camera, {}, 30)  # warm-up: file cache, libraries
    for r in range(rounds):
        for n in turned(names, r):
            samples[n].append(_decode_ms(camera, VARIANTS[n], frames))
    medians = {n: statistics.median(v) for n, v in samples.items()}
    base = medians[names[0]]
    return {"camera": str(camera), "rounds": rounds, "frames": frames,
            "ms_per_frame": {n: {"median": round(m, 3), "samples": [round(x, 3) for x in samples[n]]}
                             for n, m in medians.items()},
            "speedup_vs_filter_on": {n: round(base / m, 3) for n, m in medians.items()},
            "pair_ratios_median": {n: round(statistics.median(b / x for b, x in zip(samples[names[0]], samples[n])), 3)
                                   for n in names}}


# variant -> how the live path decodes and converts, for `live_accuracy`; the first is the
# file path's pixels, the one the others are compared with
PIXELS = {"file path's pixels": LiveOptions(), "loop filter skipped": LiveOptions(skip_loop_filter=True),
          "one-step conversion": LiveOptions(one_step_convert=True),
          "both": LiveOptions(skip_loop_filter=True, one_step_convert=True)}


def _clip(path: Path, spec, opts: LiveOptions):
    """The video's file-path clip, (1, 3, T, S, S), from frames the live decoder gives, converted
    as `opts` says."""
    with open_source(str(path), opts) as c:
        frames = [f for packet in c.demux(video=0) for f in packet.decode()]
    picked = [clip_rgb(frames[i], spec.size, one_step=opts.one_step_convert) for i in center_indices(len(frames), spec)]
    return normalize(np.stack(picked), spec)[None]


def live_accuracy(bundle: Path, videos: list[Path]) -> dict:
    """Accuracy (%) of the bundle's default answer on `videos` decoded and converted each way in
    `PIXELS`; per variant, the videos whose answer differs from the file path's pixels' and the
    largest change of the answer's confidence where it stayed."""
    ens = Ensemble.load(bundle, provider="cpu")
    right = dict.fromkeys(PIXELS, 0)
    differ: dict[str, list[str]] = {k: [] for k in PIXELS}
    shift = dict.fromkeys(PIXELS, 0.0)
    try:
        for v in videos:
            preds = {k: ens.finish(Decoded(str(v), _clip(v, ens.bundle.clip, o), [(0.0, 0.0)], 0.0, 0.0))
                     for k, o in PIXELS.items()}
            base = next(iter(preds.values()))
            for k, p in preds.items():
                right[k] += p.label == v.parent.name
                if p.label != base.label:
                    differ[k].append(str(v))
                elif p.confidence is not None:
                    shift[k] = max(shift[k], abs(p.confidence - base.confidence))
    finally:
        ens.close()
    n = max(1, len(videos))
    return {"bundle": str(bundle), "videos": len(videos), "answer": ens.check_vote(None),
            "accuracy": {k: round(100.0 * r / n, 1) for k, r in right.items()},
            "answers_differ": {k: d for k, d in differ.items() if d},
            "max_confidence_change_same_answer": {k: round(x, 4) for k, x in shift.items()}}


def main(argv: list[str]) -> None:
    if argv[:1] == ["decode"] and len(argv) >= 2:
        out = [decode_pairs(Path(c)) for c in argv[1:]]
    elif argv[:1] == ["accuracy"] and len(argv) >= 3:
        out = live_accuracy(Path(argv[1]), [Path(v) for v in argv[2:]])
    else:
        sys.exit("usage: python -m picojepa.benchmarks.deblock decode CAMERA... | accuracy BUNDLE VIDEO...")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
