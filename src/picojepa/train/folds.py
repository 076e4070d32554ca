"""`picojepa-train all --folds K`: stratified K-fold cross-validation over the labelled videos.

On a small set one held-out split is an anecdote (on 20 videos one video is 5 points). Here every
labelled video (the root's training and held-out ones together) is held out exactly once: the
videos are cut into K disjoint stratified parts; fold i trains on the other K-1 parts (and on
the root's unlabelled footage, for pre-training) and is evaluated on part i. Each fold is a
complete run in OUT/fold-<i>/ (its own report, exportable as usual) on a data root of links in
OUT/folds-data/fold-<i>/; OUT/report.* give every accuracy as mean ± sd over the folds, as
`--seeds` does over seeds (the seed stays the recipe's).
"""
from __future__ import annotations

from pathlib import Path

from picojepa.core import outdir
from picojepa.core.errors import DataLayoutError
from picojepa.core.roster import GENERAL
from picojepa.core.rundir import FOLDS_DATA

from .config import Recipe
from .index import place
from .layout import member_csv, read_classes, read_items, stratified_parts, write_layout
from .pipeline import run_all
from .report import COLUMNS, repeats_markdown, write_reports
from .report_page import write_repeats_page
from .seeds import spread

DATA = FOLDS_DATA


def fold_dir(out: Path, i: int) -> Path:
    return Path(out) / f"fold-{i}"


def fold_roots(data_root: Path, out: Path, k: int, seed: int) -> list[Path]:
    """The K data roots of links (made once; a resumed run keeps them)."""
    data_root = Path(data_root)
    classes = read_classes(data_root)
    labelled = read_items(member_csv(data_root, GENERAL), classes) + \
        read_items(data_root / "infer" / "class.csv", classes)
    counts = [sum(1 for _, y in labelled if y == c) for c in range(len(classes))]
    if min(counts) < k:
        raise DataLayoutError(f"{data_root}: --folds {k} needs at least {k} labelled videos per class "
                              f"(fewest: {min(counts)}, class {classes[counts.index(min(counts))]!r})")
    own = {p.resolve() for p, _ in labelled}
    unlabelled = [p for p, _ in read_items(data_root / "train" / "train.csv") if p.resolve() not in own]
    parts = stratified_parts([y for _, y in labelled], k, seed)
    roots = []
    for i, held in enumerate(parts):
        root = Path(out) / DATA / f"fold-{i}"
        roots.append(root)
        if (root / "classInd.txt").is_file():
            continue
        held = set(held)
        with outdir.draft(root) as tmp:
            placed: dict[str, list] = {"train": [], "infer": []}
            for j, (p, y) in enumerate(labelled):
                split = "infer" if j in held else "train"
                placed[split].append((place(p, tmp / split / classes[y] / f"{j:05d}__{p.name}", False), y))
            links: dict[Path, Path] = {}
            for n, p in enumerate(unlabelled):
                if p not in links:
                    links[p] = place(p, tmp / "train" / "unlabelled" / f"{n:06d}__{p.name}", False)
            write_layout(tmp, classes, placed["train"], placed["infer"], seed,
                         unlabelled=[links[p] for p in unlabelled])
            outdir.commit(tmp, root)
    return roots


def run_folds(recipe: Recipe, data_root: Path, out: Path, k: int, resume: bool = False,
              show_progress: bool = True) -> dict | None:
    """Every fold's run, then the spread over them -> OUT/report.json's content (None on a
    distributed pre-training's other ranks, as `seeds.run_seeds`)."""
    out = Path(out)
    roots = fold_roots(data_root, out, k, recipe.seed)
    runs = [run_all(recipe, root, fold_dir(out, i), resume, show_progress) for i, root in enumerate(roots)]
    if any(r is None for r in runs):
        return None
    reports = [r.to_json() for r in runs]  # the summary starts from report.json's keys
    names = [f"fold-{i}" for i in range(k)]
    summary = {**reports[0], **spread(reports), "folds": k, "repeats": names,
               "held_out_videos": sum(r["held_out_videos"] for r in reports),
               "per_run": {n: r["accuracy"] for n, r in zip(names, reports)},
               "per_run_target_rank": {n: r["pretrain"]["history"][-1]["target_rank"]
                                       for n, r in zip(names, reports)},
               "skipped_videos": sorted({v for r in reports for v in r["skipped_videos"]})}
    write_reports(out, summary, repeats_markdown(
        summary, [c for c in COLUMNS if c in summary["accuracy_mean"]],
        f"{k}-fold cross-validation: every one of the {summary['held_out_videos']} labelled videos held "
        f"out once (stratified folds, seed {recipe.seed}); each fold's full report is in "
        "`fold-<i>/report.md`"))
    write_repeats_page(out, summary, names)
    return summary
