"""How the linear head is fitted, compared offline on finished runs' cached features.

For each run directory given (a fold or seed of `picojepa-train all`, with its cached features
and report), the general model's head and the random encoder's head are fitted again on the
run's own cached training features, once as the run's recipe says and once with each `fit`
variant below, and scored on the run's held-out videos (mean per-class accuracy, %). The encoders,
features, validation split and held-out videos are the run's: only the head's fitting differs.
Used for docs/results.md, "Fitting the linear head":

    .venv/bin/python tools/head_study.py runs/real-egogestar/fold-* runs/real-typing_vs_exercise/fold-*
"""
from __future__ import annotations

import dataclasses
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch

from picojepa.core.mdtable import table
from picojepa.core.rundir import RunDir
from picojepa.train import checkpoint
from picojepa.train.evaluate import mean_of, per_class_accuracy
from picojepa.train.features import FeatureSets
from picojepa.train.probe import predict, train_head
from picojepa.train.recipe_file import recipe_from_dict
from picojepa.train.seeds import mean_sd

VARIANTS = {"as recorded": {}, "lbfgs, l2 1e-3": {"fit": "lbfgs", "l2": 1e-3},
            "lbfgs, l2 1e-2": {"fit": "lbfgs", "l2": 1e-2}}
SETS = {"general": "", "random encoder": "random_", "starting encoder": "start_"}


def study(run: Path) -> dict[tuple[str, str], float]:
    files = RunDir(run)
    report = json.loads(files.report_json.read_text())
    recipe = recipe_from_dict(report["recipe_config"])
    sets = FeatureSets.from_cache(checkpoint.load(files.features, kind="features")["sets"], report["classes"])
    classes = len(report["classes"])
    out = {}
    for name, prefix in SETS.items():
        train, held = getattr(sets, prefix + "train"), getattr(sets, prefix + "infer")
        if train is None:  # a run that started from scratch has no starting encoder
            continue
        for variant, change in VARIANTS.items():
            cfg = dataclasses.replace(recipe.classify, **change)
            head, _ = train_head(train, classes, cfg, recipe.seed)
            pred = predict(head, held.feats).argmax(-1)
            out[(name, variant)] = mean_of(per_class_accuracy(held.labels.numpy(), pred, classes))
    return out


def _mean_sd(values: list[float]) -> str:
    mean, sd = mean_sd(values)
    return f"{mean:.1f}" + (f" ± {sd:.1f}" if sd is not None else "")


def main(runs: list[str]) -> None:
    torch.set_num_threads(1)
    by_group: dict[str, dict] = defaultdict(lambda: defaultdict(list))
    for run in map(Path, runs):
        for key, acc in study(run).items():
            by_group[run.parent.name][key].append(acc)
        print(f"{run}: done", file=sys.stderr, flush=True)
    for group, rows in by_group.items():
        print(f"\n`{group}` ({len(next(iter(rows.values())))} runs): mean ± sd of the held-out accuracy\n")
        names = [n for n in SETS if (n, "as recorded") in rows]
        print("\n".join(table(["fit", *names], (
            [v, *(_mean_sd(rows[(n, v)]) for n in names)]
            for v in VARIANTS))))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: head_study.py RUN_DIR...")
    main(sys.argv[1:])
