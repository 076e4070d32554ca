"""Memory over a long batch: RSS sampled while one runtime classifies N videos in a row."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from picojepa.runtime.ensemble import Ensemble

from .stats import rss_mb


def flat_memory(bundle: Path, videos: list[str], n: int, threads: int, samples: int = 20) -> dict:
    """Classify `n` videos (the given ones, cycled) with one Ensemble; RSS every n/samples videos.
    Flat means the last fifth's median RSS is within a few MiB of the second fifth's (the first
    includes allocator warm-up)."""
    ens = Ensemble.load(bundle, provider="cpu", threads=threads)
    every = max(1, n // samples)
    trace, errors = [], 0
    paths = itertools.islice(itertools.cycle(videos), n)
    for i, p in enumerate(ens.predict_many(paths), 1):
        errors += p.error is not None
        if i % every == 0 or i == n:
            trace.append({"videos": i, "rss_mb": rss_mb()})
    rss = np.array([t["rss_mb"] for t in trace], dtype=float)
    k = max(1, len(rss) // 5)
    growth = float(np.median(rss[-k:]) - np.median(rss[k:2 * k])) if len(rss) >= 10 else None
    slope = float(np.polyfit([t["videos"] for t in trace[k:]], rss[k:], 1)[0] * 100) if len(rss) > k + 1 else None
    return {"videos": n, "distinct_videos": len(set(videos)), "errors": errors, "trace": trace,
            "growth_mb_second_to_last_fifth": growth, "slope_mb_per_100_videos": slope}
