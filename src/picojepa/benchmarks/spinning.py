"""onnxruntime's pool threads spinning between runs, on and off (`make_session(spinning=...)`),
measured where inference shares the cores with decoding: interleaved rounds, the order turned each
round, so that a busy machine's load falls on both alike.

- `files`: videos through `predict_many` (the next video decoded while one is classified): wall and this process's CPU seconds per round.
- `streams`: N camera streams of one size classified at once (`streams.concurrent`, the live
  defaults) for `seconds`: real time or not, the slowest stream's fps, windows dropped, and the
  CPU per stream-second by step.

`python -m picojepa.benchmarks.spinning files BUNDLE VIDEO...` and
`python -m picojepa.benchmarks.spinning streams BUNDLE SOURCE N HEIGHT` print one JSON document.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from picojepa.core.bundle import load_bundle
from picojepa.runtime.ensemble import Ensemble

from . import streams
from .stats import turned

ROUNDS = 4


def _pair(bundle: Path) -> dict[bool, Ensemble]:
    """The bundle loaded twice: spinning (onnxruntime's default) and not (ours)."""
    b = load_bundle(bundle)
    return {spin: Ensemble(b, "cpu", spinning=spin) for spin in (True, False)}


def files(bundle: Path, videos: list[str], rounds: int = ROUNDS) -> dict:
    """Each setting's wall and CPU seconds over `videos`, per round, and the answers' agreement."""
    ens = _pair(bundle)
    list(ens[True].predict_many(videos[:4]))  # warm-up: file cache, libraries
    out = {spin: {"wall_s": [], "cpu_s": []} for spin in ens}
    labels = {}
    for r in range(rounds):
        for spin in turned(ens, r):
            w0, c0 = time.perf_counter(), time.process_time()
            labels[spin] = [p.label for p in ens[spin].predict_many(videos, prefetch=True)]
            out[spin]["wall_s"].append(round(time.perf_counter() - w0, 3))
            out[spin]["cpu_s"].append(round(time.process_time() - c0, 3))
    return {"bundle": str(bundle), "videos": len(videos), "rounds": rounds, "same_answers": labels[True] == labels[False],
            "spinning": out[True], "not_spinning": out[False]}


def camera_streams(bundle: Path, source: str, n: int, height: int, rounds: int = 2, seconds: float = streams.SECONDS) -> dict:
    """`n` streams at `height` (720 or 360) with the live defaults, each setting `rounds` times."""
    size = next(s for s in streams.SIZES if s[1] == height)
    ens = _pair(bundle)
    out: dict = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="picojepa-spinning-") as tmp:
        camera = streams.camera_file(source, Path(tmp), size)
        for r in range(rounds):
            for spin in turned(ens, r):
                z = streams.concurrent(ens[spin], camera, n, seconds, streams.LEVERS[streams.LEVER_NAMES["defaults"]])
                out[spin].append({k: z[k] for k in ("real_time", "fps_min", "dropped", "windows", "cores_reader",
                                                    "cpu_ms_per_stream_s", "inference_ms_per_window")})
    return {"bundle": str(bundle), "source": source, "streams": n, "size": f"{size[0]}x{size[1]}", "rounds": rounds,
            "spinning": out[True], "not_spinning": out[False]}


def main(argv: list[str]) -> None:
    if argv[:1] == ["files"] and len(argv) >= 3:
        out = files(Path(argv[1]), argv[2:])
    elif argv[:1] == ["streams"] and len(argv) == 5 and argv[3].isdigit() and argv[4] in ("720", "360"):
        out = camera_streams(Path(argv[1]), argv[2], int(argv[3]), int(argv[4]))
    else:
        sys.exit("usage: python -m picojepa.benchmarks.spinning files BUNDLE VIDEO... | streams BUNDLE SOURCE N 720|360")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
