"""Timing and memory primitives: warm-up excluded, medians and percentiles, peak RSS per section."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np


def summarize(samples_ms: list[float]) -> dict:
    """p50/p90/p99/mean/min of a list of milliseconds (empty -> n=0 and no figures)."""
    if not samples_ms:
        return {"n": 0}
    a = np.asarray(samples_ms, dtype=np.float64)
    return {"n": int(a.size), "p50": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "mean": float(a.mean()), "min": float(a.min())}


def repeat_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> list[float]:
    """Wall times in ms of `repeats` calls of fn, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def turned(items, round_no: int) -> list:
    """`items` in their order on even rounds and reversed on odd ones: interleaved measurements
    whose order turns each round, so that a drift in the machine's load falls on all alike."""
    items = list(items)
    return items if round_no % 2 == 0 else items[::-1]


def ratio(num: dict, den: dict, key: str = "p50") -> float | None:
    """num[key] / den[key], or None when either is missing (a configuration that did not run)."""
    a, b = num.get(key), den.get(key)
    return float(a / b) if a is not None and b else None


_STATUS = Path("/proc/self/status")


def rss_mb() -> float | None:
    """Resident set size now, in MiB (Linux); None elsewhere."""
    return _status_kb("VmRSS")


def peak_rss_mb() -> float | None:
    """Peak resident set size since the process started, in MiB (Linux; None elsewhere): the
    benchmark measures each configuration in a fresh process for that reason."""
    return _status_kb("VmHWM")


def _status_kb(field: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None
