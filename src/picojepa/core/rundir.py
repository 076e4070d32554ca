"""The run directory: the names of what a training run writes there, and whether a command may.

    RUN/pretrain.pt            encoder, EMA target, predictor, optimiser, epoch (--resume)
    RUN/pretrain.jsonl         per-step log
    RUN/features.pt            frozen-encoder features, computed once per video
    RUN/held_out.json          the held-out videos and their labels (what export verifies on)
    RUN/answer.json            each answer's validation accuracy and the one the bundle gives by default
    RUN/members/<member>.pt    each classifier (encoder + head + recipe), random_init_probe.pt,
                               stacker.pt
    RUN/report.{md,json}, summary.json, *.png
    RUN/report.html            the report as a page: clips, occlusion maps, which clips to label next
    RUN/seed-<s>/              with --seeds N: one run per seed
    RUN/fold-<i>/, RUN/folds-data/   with --folds K: one run per fold, and each fold's data root
    RUN/ensemble.json, RUN/runs/<member>/, RUN/stacker.pt   a heterogeneous ensemble

A training command never silently overwrites a run: `claim` lets it write into a new or empty
folder, continue a run with `resume`, or start one over with `force` (which removes the run's own
files, and nothing else of the folder); a folder of other files is never written into.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from picojepa.core.errors import PicoJepaError, UsageError
from picojepa.core.textio import read_json

PRETRAIN = "pretrain.pt"
PRETRAIN_LOG = "pretrain.jsonl"
COLLAPSED = "pretrain.collapsed.pt"
FEATURES = "features.pt"
HELD_OUT = "held_out.json"
ANSWER = "answer.json"
MEMBERS_DIR = "members"
STACKER = "stacker.pt"
RANDOM_PROBE = "random_init_probe"  # the random-init baseline probe's checkpoint, beside the members
REPORT_JSON, REPORT_MD, SUMMARY = "report.json", "report.md", "summary.json"
REPORT_HTML = "report.html"  # a run's report as a page (train/report_page.py)
PLOTS = ("loss", "confusion", "tsne", "masking")  # the report's figures, RUN/<name>.png
ENSEMBLE = "ensemble.json"
ENSEMBLE_RUNS = "runs"
FOLDS_DATA = "folds-data"  # with --folds K: each fold's data root, links to the user's videos
# what makes a folder a run (or a multi-seed run, or an ensemble's): any of these in it
_MARKS = (PRETRAIN, COLLAPSED, MEMBERS_DIR, ENSEMBLE)
# the run's own files, removed by --force before it starts over
_OWN = (*_MARKS, PRETRAIN_LOG, FEATURES, HELD_OUT, ANSWER, REPORT_JSON, REPORT_MD, REPORT_HTML, SUMMARY, STACKER,
        ENSEMBLE_RUNS, FOLDS_DATA, *(f"{p}.png" for p in PLOTS))


REPEAT = re.compile(r"^(seed|fold)-\d+$")


class RunDirError(PicoJepaError, ValueError):
    """A training command may not write into the folder it was given, or a run's (an ensemble's)
    own file there is not what it wrote."""


@dataclass(frozen=True)
class _Folder:
    """A folder a training command writes, with its report."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def report_json(self) -> Path:
        return self.root / REPORT_JSON

    @property
    def report_md(self) -> Path:
        return self.root / REPORT_MD

    @property
    def report_html(self) -> Path:
        return self.root / REPORT_HTML


@dataclass(frozen=True)
class RunDir(_Folder):
    """Where one training run keeps each of its files (`RunDir(out).pretrain`, `.member("1")`):
    the one place their names are put together."""

    @property
    def pretrain(self) -> Path:
        return self.root / PRETRAIN

    @property
    def pretrain_log(self) -> Path:
        return self.root / PRETRAIN_LOG

    @property
    def features(self) -> Path:
        return self.root / FEATURES

    @property
    def held_out(self) -> Path:
        """{"paths": [...], "labels": [...]}: the videos the run's classifiers were evaluated on."""
        return self.root / HELD_OUT

    def held_out_videos(self) -> tuple[list[str], list[int]]:
        """The run's held-out videos and their labels; ([], []) before the classifiers' features
        were computed (or for a run classified before the list was kept)."""
        if not self.held_out.is_file():
            return [], []
        d = read_json(self.held_out, RunDirError, "held-out list")
        try:
            paths, labels = [str(p) for p in d["paths"]], [int(y) for y in d["labels"]]
        except (KeyError, TypeError, ValueError):
            raise RunDirError(f"{self.held_out}: not a held-out list (paths and labels); "
                              "run `picojepa-train classify` again to rewrite it") from None
        if len(paths) != len(labels):
            raise RunDirError(f"{self.held_out}: {len(paths)} paths but {len(labels)} labels")
        return paths, labels

    @property
    def answer(self) -> Path:
        """{"accuracy", "videos", "chosen"}: each answer's validation accuracy and the one the
        run's bundle gives by default (written by the evaluation, read by export)."""
        return self.root / ANSWER

    def answer_choice(self) -> dict | None:
        """The run's validated choice of answer, or None for a run evaluated before it was kept."""
        if not self.answer.is_file():
            return None
        d = read_json(self.answer, RunDirError, "answer choice")
        if not (isinstance(d, dict) and isinstance(d.get("chosen"), str) and isinstance(d.get("accuracy"), dict)):
            raise RunDirError(f"{self.answer}: not an answer choice; run `picojepa-train evaluate` again")
        return d

    @property
    def members(self) -> Path:
        return self.root / MEMBERS_DIR

    def member(self, name: str) -> Path:
        """Where the run keeps one classifier's checkpoint."""
        return self.members / f"{name}.pt"

    @property
    def random_probe(self) -> Path:
        return self.member(RANDOM_PROBE)

    @property
    def stacker(self) -> Path:
        """The stacked vote's meta-model over the partial members."""
        return self.members / STACKER

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY

    def plot(self, name: str) -> Path:
        """One of the report's figures (`PLOTS`)."""
        if name not in PLOTS:
            raise ValueError(f"unknown plot {name!r}; known: {', '.join(PLOTS)}")
        return self.root / f"{name}.png"

    def finished_recipe(self) -> dict | None:
        """The recipe of the finished run here (its report's), or None where there is none."""
        try:
            return json.loads(self.report_json.read_text())["recipe_config"]
        except (OSError, ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class EnsembleDir(_Folder):
    """A heterogeneous ensemble's folder: ensemble.json (each member: name, run, the classifier
    that votes, recipe), the member runs in runs/<member>/, the stacker and the report."""

    @property
    def manifest(self) -> Path:
        return self.root / ENSEMBLE

    def run(self, member: str) -> RunDir:
        return RunDir(self.root / ENSEMBLE_RUNS / member)

    @property
    def stacker(self) -> Path:
        return self.root / STACKER

    def is_ensemble(self) -> bool:
        return self.manifest.is_file()

    def read(self) -> tuple[str, list[dict]]:
        """The ensemble's name and its members, each run as an absolute path."""
        data = read_json(self.manifest, RunDirError, "ensemble manifest")
        try:
            name, members = data["name"], data["members"]
            members = [{**m, "run": self.root / m["run"]} for m in members]
        except (TypeError, KeyError) as exc:
            raise RunDirError(f"{self.manifest}: not a heterogeneous ensemble's manifest ({exc})") from None
        return name, members


def repeat_dirs(folder: str | Path) -> list[Path]:
    """The runs of a multi-seed (seed-<s>/) or cross-validated (fold-<i>/) run."""
    return sorted(p for p in Path(folder).glob("*-*") if p.is_dir() and REPEAT.match(p.name))


def holds_run(folder: str | Path) -> bool:
    """True where `folder` holds a run (a checkpoint or trained members), a multi-seed or
    cross-validated run, or an ensemble's runs; a report alone does not make one."""
    folder = Path(folder)
    members = [d for d in sorted((folder / ENSEMBLE_RUNS).glob("*")) if d.is_dir()]  # an ensemble, even unfinished
    return any((folder / m).exists() for m in _MARKS) or any(holds_run(d) for d in [*repeat_dirs(folder), *members])


def claim(out: str | Path, resume: bool = False, force: bool = False, what: str = "training run") -> Path:
    """Check, before any work, that a training command may write its run into `out`."""
    out = Path(out)
    if resume and force:
        raise UsageError("--resume continues a run and --force starts it over: give one of them")
    if out.is_symlink() and not out.exists():
        raise RunDirError(f"{out}: a dangling symbolic link; give a folder (--out)")
    if not out.exists():
        return out
    if not out.is_dir():
        raise RunDirError(f"{out}: not a directory")
    for d in repeat_dirs(out):  # a seed or fold that failed before writing anything: not the user's
        if not any(d.iterdir()):
            d.rmdir()
    entries = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    if not entries:
        return out
    if what == "heterogeneous ensemble" and holds_run(out) and not (
            (out / ENSEMBLE).exists() or (out / ENSEMBLE_RUNS).is_dir() or repeat_dirs(out)):
        raise RunDirError(f"{out}: holds a training run, not a heterogeneous ensemble; choose another --out")
    if not holds_run(out):
        raise RunDirError(f"{out}: not empty and not a {what} (holds {', '.join(entries[:3])}); "
                          "choose a new or empty --out")
    if resume:
        return out
    if not force:
        raise RunDirError(f"{out}: holds a {what} already; --resume continues it, --force starts "
                          "it over (its checkpoints are deleted), or choose another --out")
    _clear(out)
    return out


def _clear(run: Path) -> None:
    """Remove a run's own files and nothing else: the names it writes, only the checkpoints in
    members/, only the repeats and ensemble member runs that are runs themselves (recursively);
    a folder left non-empty by the user's files stays."""
    for name in _OWN:
        p = run / name
        if name in (MEMBERS_DIR, ENSEMBLE_RUNS, FOLDS_DATA) and p.is_dir() and not p.is_symlink():
            continue
        if p.is_file() or p.is_symlink():
            p.unlink()
    members = run / MEMBERS_DIR
    if members.is_dir() and not members.is_symlink():
        for f in members.glob("*.pt"):
            f.unlink()
        _rmdir_if_empty(members)
    for sub in [*repeat_dirs(run), *sorted((run / ENSEMBLE_RUNS).glob("*"))]:
        if sub.is_dir() and not sub.is_symlink() and holds_run(sub):
            _clear(sub)
            _rmdir_if_empty(sub)
    _rmdir_if_empty(run / ENSEMBLE_RUNS)
    data = run / FOLDS_DATA
    if data.is_dir() and not data.is_symlink() and all(
            f.is_symlink() or f.is_dir() or f.suffix == ".csv" or f.name in ("classInd.txt", ".picojepa-index")
            for f in data.rglob("*")):
        shutil.rmtree(data)  # links to the videos and the CSVs the folds wrote: nothing of the user's


def _rmdir_if_empty(p: Path) -> None:
    if p.is_dir() and not p.is_symlink() and not any(p.iterdir()):
        p.rmdir()
