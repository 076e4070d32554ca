"""End-to-end inference, configuration by configuration, on the same videos in one run.

Configurations (the issue's letters):
  a fused     this runtime: one ONNX graph, shared encoder, every head      (the bundle given)
  b separate  the four vote members as four ONNX sessions                  (exported here)
  c single    one member alone                                              (exported here)
  d eager4    the four PyTorch checkpoints in one process, eager mode
  e process_per_model  the original's way: a fresh process per video and per model   (a few videos)
  f variants  int8 / fp16 graphs of the bundle, every available provider

Rounds interleave the configurations video by video, so a slow spell of the shared machine hits
all of them alike; the first round is warm-up and is dropped.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from picojepa.core import vote as votes
from picojepa.core.bundle import load_bundle
from picojepa.core.roster import VOTE_MEMBERS
from picojepa.core.rundir import RunDir
from picojepa.runtime.decoding import Decoded, decode_clips
from picojepa.runtime.ensemble import Ensemble

from .process_per_model import run_video
from .stats import peak_rss_mb, repeat_ms, summarize

STAGES = ("decode", "preprocess", "inference", "vote", "total")


@dataclass
class Config:
    name: str
    label: str
    infer: Callable[[Decoded], dict]  # decoded clips -> stage timings (ms) of inference and vote
    load_ms: float = 0.0
    samples: dict = field(default_factory=lambda: {s: [] for s in STAGES})
    note: str = ""


def onnx_config(name: str, label: str, bundle: Path, provider: str, variant: str,
                threads: int) -> Config:
    t0 = time.perf_counter()
    ens = Ensemble.load(bundle, provider=provider, variant=variant, threads=threads)
    load_ms = (time.perf_counter() - t0) * 1e3

    def infer(d: Decoded) -> dict:
        p = ens.finish(d)
        return {"inference": p.timings_ms["inference"], "vote": p.timings_ms["vote"]}

    return Config(name, label, infer, load_ms, note="; ".join(ens.notes))


def eager_config(run_dir: Path, members: list[str], threads: int) -> Config:
    """The members' PyTorch checkpoints, each a full encoder + head, run one after the other."""
    import torch  # heavy: kept out of the other configurations' fresh processes (peak RSS)

    from picojepa.export.members import load_members, select  # loads torch: as above

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    models = [m.model.eval() for m in load_members(select(run_dir, ",".join(members)).refs)]
    load_ms = (time.perf_counter() - t0) * 1e3

    def infer(d: Decoded) -> dict:
        t0 = time.perf_counter()
        x = torch.from_numpy(d.clips)
        with torch.inference_mode():
            probs = np.stack([torch.softmax(m(x), -1).numpy() for m in models])  # (M, K, C)
        t1 = time.perf_counter()
        votes.combine(probs.mean(axis=1, keepdims=True), "majority")
        return {"inference": (t1 - t0) * 1e3, "vote": (time.perf_counter() - t1) * 1e3}

    return Config("eager4", "d: PyTorch eager, 4 checkpoints, one process", infer, load_ms)


def run_rounds(configs: list[Config], decode: Callable[[str], Decoded], videos: list[str],
               rounds: int) -> list[str]:
    """Round 0 warms up; rounds 1..rounds are recorded. Returns the videos that failed to decode."""
    bad = []
    for r in range(rounds + 1):
        for v in videos:
            if v in bad:
                continue
            for c in configs:
                d = decode(v)  # every configuration pays its own decode, as it would alone
                if d.error:
                    bad.append(v)
                    break
                t = c.infer(d)
                if r:
                    parts = {"decode": d.decode_ms, "preprocess": d.preprocess_ms, **t}
                    parts["total"] = sum(parts[s] for s in STAGES[:-1])
                    for s in STAGES:
                        c.samples[s].append(parts[s])
    return bad


def summary(c: Config) -> dict:
    return {"name": c.name, "label": c.label, "load_ms": c.load_ms, "note": c.note,
            **{s: summarize(c.samples[s]) for s in STAGES}}


def batched_throughput(bundle: Path, videos: list[str], provider: str, threads: int,
                       batch: int, decode: Callable[[str], Decoded]) -> dict:
    """Videos/s of the fused runtime when `batch` videos' clips go through one session call,
    against one call per video, on the same decoded clips (decode excluded, reported apart)."""
    ens = Ensemble.load(bundle, provider=provider, threads=threads)
    decoded = [d for d in (decode(v) for v in videos) if d.error is None]
    clips = np.concatenate([d.clips for d in decoded])
    n = len(clips)
    one = repeat_ms(lambda: [ens.member_probs(clips[i:i + 1]) for i in range(n)], 3, warmup=1)
    many = repeat_ms(lambda: [ens.member_probs(clips[i:i + batch]) for i in range(0, n, batch)], 3,
                     warmup=1)
    dec = float(np.median([d.decode_ms + d.preprocess_ms for d in decoded]))
    return {"videos": n, "batch": batch,
            "inference_videos_per_s_batch1": n / (np.median(one) * 1e-3),
            "inference_videos_per_s_batched": n / (np.median(many) * 1e-3),
            "batching_speedup": float(np.median(one) / np.median(many)),
            "decode_preprocess_ms_per_video": dec}


def process_per_model(run_dir: Path, videos: list[str], threads: int, members: list[str]) -> dict:
    ckpts = [RunDir(run_dir).member(m) for m in members]
    per_video = []
    for v in videos:
        probs, ms = run_video(ckpts, v, threads)
        label, _ = votes.combine(probs[:, None], "majority")
        per_video.append({"video": v, "ms": ms, "label": int(label[0])})
    return {"per_video": per_video, "total": summarize([p["ms"] for p in per_video]),
            "processes_per_video": len(ckpts)}


def import_and_load(bundle: Path, threads: int, repeats: int = 3) -> dict:
    """Import time of the runtime (a fresh process each time) and session-load time."""
    code = ("import time; t=time.perf_counter(); import picojepa.runtime.ensemble, onnxruntime; "
            "a=time.perf_counter(); from picojepa.runtime.ensemble import Ensemble; "
            f"Ensemble.load({str(bundle)!r}, provider='cpu', threads={threads}); "
            "print((a-t)*1e3, (time.perf_counter()-a)*1e3)")
    imp, load = [], []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        a, b = map(float, out.stdout.split())
        imp.append(a)
        load.append(b)
    return {"import_ms": summarize(imp), "session_load_ms": summarize(load)}


PEAK_CODE = """
import json, sys
from picojepa.benchmarks.inference import peak_rss_worker
print(json.dumps(peak_rss_worker(*json.loads(sys.argv[1]))))
"""


def peak_rss_worker(kind: str, bundle: str, run_dir: str, videos: list[str], threads: int) -> dict:
    """In a fresh process: load one configuration, run every video once, report the peak RSS
    (VmHWM) — imports, sessions or checkpoints, decoding and inference included."""
    spec = load_bundle(bundle).clip
    if kind == "eager4":
        run = eager_config(Path(run_dir), list(VOTE_MEMBERS), threads).infer
    else:
        ens = Ensemble.load(bundle, provider="cpu", threads=threads)
        run = ens.finish
    for v in videos:
        d = decode_clips(v, spec)
        if d.error is None:
            run(d)
    return {"peak_rss_mb": peak_rss_mb()}


def peak_rss(kind: str, bundle: Path, run_dir: Path | None, videos: list[str], threads: int) -> float | None:
    """Peak RSS in MiB of a fresh process running one configuration (None if it failed)."""
    arg = json.dumps([kind, str(bundle), str(run_dir or ""), videos, threads])
    out = subprocess.run([sys.executable, "-c", PEAK_CODE, arg], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def prefetch_overlap(bundle: Path, sets: dict[str, list], threads: int, rounds: int) -> dict:
    """Whole-batch wall time through `predict_many` in three set-ups, rounds interleaved in a
    rotating order so that all see the same machine state: sequential (onnxruntime with
    `threads`), prefetch (the next video decoded in a thread meanwhile, same threads), and
    prefetch with onnxruntime on all cores but one (what `picojepa-run` does for a batch), so
    that the decoding thread has a core of its own. Per set of videos: medians and speed-ups."""
    spare = max(1, (os.cpu_count() or 2) - 1)
    ens = {"sequential": Ensemble.load(bundle, provider="cpu", threads=threads),
           "prefetch": Ensemble.load(bundle, provider="cpu", threads=threads),
           "prefetch_spare_core": Ensemble.load(bundle, provider="cpu", threads=spare)}
    out = {"threads": threads, "spare_core_threads": spare}
    for name, videos in sets.items():
        if not videos:
            continue
        times: dict[str, list[float]] = {k: [] for k in ens}
        errors = 0
        for r in range(rounds + 1):  # round 0 warms the page cache and the sessions
            order = list(ens)[r % 3:] + list(ens)[:r % 3]
            for k in order:
                t0 = time.perf_counter()
                preds = list(ens[k].predict_many(videos, prefetch=k != "sequential"))
                if r:
                    times[k].append((time.perf_counter() - t0) * 1e3)
                errors = sum(p.error is not None for p in preds)
        med = {k: float(np.median(v)) for k, v in times.items()}
        out[name] = {"videos": len(videos), "errors": errors, "rounds": rounds,
                     **{f"{k}_ms_p50": v for k, v in med.items()},
                     "speedup_prefetch": med["sequential"] / med["prefetch"],
                     "speedup_prefetch_spare_core": med["sequential"] / med["prefetch_spare_core"]}
    return out
