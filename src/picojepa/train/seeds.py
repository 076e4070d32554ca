"""`picojepa-train all --seeds N`: the same recipe on the same data with N seeds, and the spread.

Each seed is a complete run in OUT/seed-<s>/ (its own report, exportable as usual). The seed
changes the initialisation, the masks, the clip draws and the classifiers' validation split; the
data split (training / held-out videos, the four disjoint quarters) is the data root's and stays.
OUT/report.json is the first seed's report with `accuracy` (and `accuracy_mean`) the mean and
`accuracy_sd` the sample sd over the seeds, `seeds` and `per_seed` (each seed's accuracies); its
per-class tables and predictions stay the first seed's. OUT/report.md: the table of all seeds.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .config import Recipe
from .pipeline import run_all
from .report import COLUMNS, seeds_markdown, write_reports
from .report_page import write_repeats_page


def seed_dir(out: Path, seed: int) -> Path:
    return Path(out) / f"seed-{seed}"


def _sd(a: np.ndarray) -> float:
    return float(a.std(ddof=1)) if len(a) > 1 else 0.0


def mean_sd(values) -> tuple[float | None, float | None]:
    """Mean and sample sd of the values that are there (None skipped); None where there are
    none, sd None with one."""
    a = np.array([v for v in values if v is not None], dtype=np.float64)
    return (float(a.mean()) if len(a) else None), (_sd(a) if len(a) > 1 else None)


def accuracy_spread(reports: list[dict]) -> dict:
    """Mean and sample sd of every accuracy the reports all have; the summary's headline
    `accuracy` is the mean (a repeated run's answer is its spread, never one run's figure)."""
    keys = [k for k in reports[0]["accuracy"] if all(k in r["accuracy"] for r in reports)]
    vals = {k: np.array([r["accuracy"][k] for r in reports], dtype=np.float64) for k in keys}
    mean = {k: float(v.mean()) for k, v in vals.items()}
    return {"accuracy": mean, "accuracy_mean": dict(mean), "accuracy_sd": {k: _sd(v) for k, v in vals.items()}}


def spread(reports: list[dict]) -> dict:
    """Mean and sample sd of every accuracy and of the collapse watch over the runs' reports."""
    ranks = np.array([r["pretrain"]["history"][-1]["target_rank"] for r in reports], dtype=np.float64)
    return {**accuracy_spread(reports), "target_rank_mean": float(ranks.mean()), "target_rank_sd": _sd(ranks)}


def seed_summary(reports: list[dict], seeds: list[int]) -> dict:
    """Runs of one recipe (or ensemble) under several seeds -> the first seed's report with every
    accuracy's mean and sd over the seeds (`accuracy_spread`) and each seed's accuracies: the
    top of OUT/report.json for `picojepa-train all --seeds` and `picojepa-train ensemble --seeds`."""
    return {**reports[0], **accuracy_spread(reports), "seeds": list(seeds),
            "per_seed": {str(s): r["accuracy"] for s, r in zip(seeds, reports)}}


def run_seeds(recipe: Recipe, data_root: Path, out: Path, n: int, resume: bool = False,
              show_progress: bool = True) -> dict | None:
    """Every seed's run, then the spread -> OUT/report.json's content (None on a distributed
    pre-training's other ranks: they take part in each seed's pre-training, rank 0 reports)."""
    out = Path(out)
    seeds = [recipe.seed + k for k in range(n)]
    runs = [run_all(dataclasses.replace(recipe, seed=s), data_root, seed_dir(out, s), resume, show_progress)
            for s in seeds]
    if any(r is None for r in runs):
        return None
    reports = [r.to_json() for r in runs]  # the summary starts from report.json's keys
    summary = {**seed_summary(reports, seeds), **spread(reports),
               "per_seed_target_rank": {str(s): r["pretrain"]["history"][-1]["target_rank"]
                                        for s, r in zip(seeds, reports)}}
    write_reports(out, summary, seeds_markdown(summary, [c for c in COLUMNS if c in summary["accuracy_mean"]]))
    write_repeats_page(out, summary, [seed_dir(out, s).name for s in seeds])
    return summary
