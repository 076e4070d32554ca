"""Does labelling the clips the report page ranks first teach more than labelling at random?

    python tools/label_next_study.py runs/demo [RUN...] --start 2 --k 8 --steps 6 --seeds 0,1,2

On each run's cached features (RUN/features.pt: no encoder runs, no video is decoded), the run's
labelled training videos play the unlabelled pool: start from `--start` labelled videos per
class, add `--k` per step chosen by the page's ranking (`ranked`: the partial members' vote
entropy, four linear heads on disjoint quarters of what is labelled, plus the answer's doubt), by
the answer's low confidence alone (`least_confident`) or at random, retrain, and score the
general head on the run's held-out videos (mean per-class accuracy, percent); `--features` picks
the cached set (the run's encoder's, a random encoder's, the motion member's numbers) or the
frame-differencing yardstick's numbers, decoded for the purpose. Prints a Markdown
table per run (mean ± sample sd over the seeds) and, with --json, one JSON document on stdout.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from picojepa.core.mdtable import table as md_table
from picojepa.core.rundir import RunDir
from picojepa.train import checkpoint
from picojepa.train.recipe_file import recipe_from_dict
from picojepa.train.features import Features, FeatureSets
from picojepa.train.label_next import STRATEGIES, Study, study
from picojepa.train.motion_baseline import video_features


FEATURES = {"pretrained": ("train", "infer"), "random": ("random_train", "random_infer"),
            "motion": ("motion_train", "motion_infer"),  # which of the cached feature sets
            "baseline": ("train", "infer")}  # the frame-differencing yardstick's numbers of the same videos


def baseline_features(f: Features) -> Features:
    """The frame-differencing yardstick's numbers (16 frames over the whole video) of each video in
    `f`: decoded here, the one feature set not cached."""
    x = np.stack([video_features(p) for p in f.paths])
    return Features(torch.from_numpy(x).float()[:, None], f.labels, f.paths, [])


def measure(run: Path, plan: Study, epochs: int | None, features: str = "pretrained") -> dict:
    """One run's study: {strategy: per-seed accuracies after each step}, and what it ran on."""
    report = json.loads(RunDir(run).report_json.read_text())
    sets = FeatureSets.from_cache(checkpoint.load(RunDir(run).features, kind="features")["sets"], report["classes"])
    pool, test = (getattr(sets, n) for n in FEATURES[features])
    if features == "baseline":
        pool, test = baseline_features(pool), baseline_features(test)
    cfg = recipe_from_dict(report["recipe_config"]).classify
    if epochs:
        cfg = dataclasses.replace(cfg, epochs=epochs)
    t0 = time.perf_counter()
    got = study(pool, test, len(sets.classes), cfg, plan)
    return {"run": str(run), "features": features, "classes": len(sets.classes), "pool": len(pool.paths),
            "held_out": len(test.paths), "epochs": cfg.epochs, "seconds": round(time.perf_counter() - t0, 1),
            "labelled": [plan.start * len(sets.classes) + s * plan.k for s in range(plan.steps + 1)],
            "accuracy": {s: a.tolist() for s, a in got.items()}}


def table(r: dict) -> str:
    """A Markdown table: labelled videos per step, each strategy's mean ± sd over the seeds."""
    lines = [f"`{r['run']}`, {r['features']} features: {r['classes']} classes, a pool of {r['pool']} labelled training videos, "
             f"{r['held_out']} held-out; {r['epochs']} epochs per head", "",
             *md_table(["labelled", *STRATEGIES], ([n, *(_mean_sd(np.asarray(r["accuracy"][s])[:, i]) for s in STRATEGIES)]
                                                 for i, n in enumerate(r["labelled"])))]
    return "\n".join(lines)


def _mean_sd(a: np.ndarray) -> str:
    return f"{a.mean():.1f} ± {a.std(ddof=1) if len(a) > 1 else 0.0:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--start", type=int, default=2, help="labelled videos per class to begin with")
    ap.add_argument("--k", type=int, default=8, help="videos labelled per step")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated")
    ap.add_argument("--epochs", type=int, help="epochs per head [default: the run's recipe]")
    ap.add_argument("--features", choices=FEATURES, default="pretrained",
                    help="the run's encoder's features, a random encoder's, the motion member's numbers, or "
                         "the frame-differencing yardstick's (decoded here)")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    a = ap.parse_args()
    plan = Study(a.start, a.k, a.steps, tuple(int(s) for s in a.seeds.split(",")))
    results = [measure(r, plan, a.epochs, a.features) for r in a.runs]
    for r in results:
        print(table(r) + "\n", file=sys.stderr if a.json else sys.stdout)
    if a.json:
        print(json.dumps({"plan": dataclasses.asdict(plan), "runs": results}))


if __name__ == "__main__":
    main()
