"""Heterogeneous ensembles (the paper's future work): members whose encoders differ.

An ensemble recipe names a base recipe and lists its members as small overrides of it:

    name: hetero
    recipe: demo.yaml          # relative to this file
    members:
      - name: d4               # the base recipe itself: its run also gives the general model
      - name: d2               #   and the paper's homogeneous vote the report compares against
        set: {model.depth: 2}
      - name: p16
        set: {model.patch_size: 16}
        head: general          # which of the run's classifiers votes: general (default) or 1..4

`picojepa-train ensemble` trains one ordinary run per distinct recipe into OUT/runs/<member>/
(members whose recipes are identical share the run; members whose recipes differ only in the
classifier share the pre-trained encoder: its checkpoint is linked, not trained again), then
evaluates the members and their votes on the held-out videos they all share, beside the base
run's general model and homogeneous vote, and writes OUT/ensemble.json (what
`picojepa-export OUT` bundles), OUT/stacker.pt and OUT/report.{json,md}.

The stacked vote is fitted on the labelled videos that none of the voting members trained on:
the intersection of their validation splits (identical when the members share the seed).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from picojepa.core.bundle import MEMBER_NAME
from picojepa.core.roster import GENERAL, MEMBERS, PARTIALS, report_key
from picojepa.core.rundir import FEATURES, PRETRAIN, EnsembleDir, RunDir
from picojepa.core.shown import shown
from picojepa.core.textio import read_yaml
from picojepa.core.typed import build
from picojepa.core.vote import VOTES, vote_weights

from . import checkpoint
from .classify import features_for
from .config import ConfigError, Recipe
from .evaluate import BASELINE, mean_of, member_probs, per_class_accuracy
from .features import FeatureSets, subset
from .files import write_text
from .heads import head_from_state
from .pipeline import ensure_data, run_all
from .recipe_file import load_recipe, merge, nest, recipe_from_dict, with_defaults
from .report import ensemble_markdown, write_reports
from .seeds import mean_sd, seed_summary
from .votes import fit_stacker, vote_labels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeteroMember:
    name: str
    overrides: dict  # dotted recipe keys -> values, applied to the base recipe
    head: str = GENERAL


@dataclass(frozen=True)
class HeteroConfig:
    name: str
    recipe: Path  # the base recipe file
    members: tuple[HeteroMember, ...]
    source: Path  # the ensemble recipe itself, for error messages


@dataclass(frozen=True)
class _MemberEntry:
    """One item of an ensemble recipe's `members:` as written."""
    name: str
    set: dict | None = None  # dotted recipe keys -> values; empty or absent: the base recipe
    head: str = GENERAL

    def __post_init__(self):
        if not MEMBER_NAME.match(self.name):
            raise ValueError(f"name: expected letters, digits, '-' or '_', got {shown(self.name)}")
        if self.head not in MEMBERS:
            raise ValueError(f"head: must be one of {list(MEMBERS)}, got {shown(self.head)}")


@dataclass(frozen=True)
class _EnsembleFile:
    """An ensemble recipe as written: the base recipe file, the members, a name."""
    recipe: str
    members: tuple[_MemberEntry, ...]
    name: str = ""

    def __post_init__(self):
        if len(self.members) < 2:
            raise ValueError("members: expected a list of at least two members")
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise ValueError(f"members: names must be distinct, got {names}")


def load_hetero(path: str | Path) -> HeteroConfig:
    """Read and check an ensemble recipe (typed like recipes: `file: key: reason`); every
    member's recipe is built once to validate it."""
    path = Path(path)
    data = read_yaml(path, ConfigError, "ensemble recipe") or {}
    if not isinstance(data, dict) or "members" not in data or "recipe" not in data:
        raise ConfigError(f"{path}: an ensemble recipe needs 'recipe' (the base recipe file) and "
                          "'members' (a list); a plain recipe trains with `picojepa-train all`")
    try:
        raw = build(_EnsembleFile, data, ConfigError)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    members = tuple(HeteroMember(m.name, dict(m.set or {}), m.head) for m in raw.members)
    cfg = HeteroConfig(raw.name or path.stem, path.parent / raw.recipe, members, path)
    member_recipes(cfg)
    return cfg


def member_recipes(cfg: HeteroConfig, overrides: dict | None = None, seed_offset: int = 0) -> list[Recipe]:
    """Each member's recipe: the base, the command line's overrides, then the member's own."""
    out = []
    for m in cfg.members:
        try:
            r = load_recipe(cfg.recipe, merge(nest(overrides or {}), nest(m.overrides)), "set / --set:")
        except ConfigError as exc:
            raise ConfigError(f"{cfg.source}: member {m.name}: {exc}") from None
        out.append(dataclasses.replace(r, name=f"{cfg.name}-{m.name}", seed=r.seed + seed_offset))
    return out


def _key(recipe: Recipe, without: tuple[str, ...] = ()) -> str:
    d = {k: v for k, v in recipe.to_dict().items() if k not in ("name", *without)}
    return json.dumps(d, sort_keys=True)


def plan_runs(cfg: HeteroConfig, recipes: list[Recipe], out: Path) -> list[dict]:
    """One entry per member: its run directory (shared by identical recipes), the run it may
    take the pre-trained encoder from (same recipe but the classifier), and the head that votes."""
    by_recipe, by_encoder, plan = {}, {}, []
    for m, r in zip(cfg.members, recipes):
        run = by_recipe.setdefault(_key(r), EnsembleDir(out).run(m.name).root)
        encoder_from = by_encoder.setdefault(_key(r, ("classify",)), run)
        plan.append({"name": m.name, "run": run, "head": m.head, "recipe": r,
                     "encoder_from": None if encoder_from == run else encoder_from})
    return plan


def _done(run: Path, recipe: Recipe) -> bool:
    """A finished run of this very recipe (what --resume keeps)."""
    saved = RunDir(run).finished_recipe()
    return saved is not None and with_defaults(saved) == recipe.to_dict()


def _link_encoder(src: Path, run: Path) -> None:
    """Give `run` the pre-trained encoder of `src` (and its cached features, which `features_for`
    reuses where the pooling and clips match and replaces otherwise) as hard links."""
    run.mkdir(parents=True, exist_ok=True)
    for name in (PRETRAIN, FEATURES):
        (run / name).unlink(missing_ok=True)
        if (src / name).exists():
            os.link(src / name, run / name)


def train_ensemble(cfg: HeteroConfig, data_root: Path, out: Path, overrides: dict | None = None,
                   seed_offset: int = 0, resume: bool = False, show_progress: bool = True) -> dict:
    """Train every member's run, then evaluate the ensemble -> OUT/report.json's content."""
    out = Path(out)
    recipes = member_recipes(cfg, overrides, seed_offset)
    ensure_data(recipes[0], data_root, show_progress)
    plan = plan_runs(cfg, recipes, out)
    trained = set()
    for p in plan:
        run, recipe = p["run"], p["recipe"]
        if run in trained or (resume and _done(run, recipe)):
            trained.add(run)
            continue
        if p["encoder_from"] is not None:  # same encoder recipe: link its pre-training, not redo it
            _link_encoder(p["encoder_from"], run)
        log.info("member %s: training %s", p["name"], run)
        run_all(recipe, data_root, run, resume=resume or p["encoder_from"] is not None,
                show_progress=show_progress)
        trained.add(run)
    write_text(EnsembleDir(out).manifest, json.dumps({"name": cfg.name, "members": [
        {"name": p["name"], "run": os.path.relpath(p["run"], out), "head": p["head"],
         "recipe": p["recipe"].to_dict()} for p in plan]}, indent=1))
    report = evaluate_ensemble(out, data_root, show_progress)
    write_reports(out, report, ensemble_markdown(report))
    return report


def _run_probs(members: list[dict], data_root: Path, show_progress: bool) -> tuple[dict, dict]:
    """Each run's cached features and each member's held-out probabilities and state."""
    sets, probs, states = {}, {}, {}
    for m in members:
        recipe = recipe_from_dict(m["recipe"])
        if m["run"] not in sets:
            sets[m["run"]] = features_for(m["run"], recipe, data_root, show_progress)
        p, _ = member_probs(recipe, m["run"], sets[m["run"]], members=(m["head"],))
        probs[m["name"]] = p[m["head"]]
        states[m["name"]] = checkpoint.load(RunDir(m["run"]).member(m["head"]), kind="member")
    return sets, {"probs": probs, "states": states}


def evaluate_ensemble(out: Path, data_root: Path, show_progress: bool = True) -> dict:
    """The members alone, their four votes, and the base run's general model and homogeneous
    vote, on the same held-out videos; how correlated the members' errors are."""
    name, members = EnsembleDir(out).read()
    names = [m["name"] for m in members]
    sets, got = _run_probs(members, data_root, show_progress)
    infer = [s.infer for s in sets.values()]
    if any(i.paths != infer[0].paths for i in infer):
        raise ConfigError(f"{out}: the member runs were evaluated on different held-out videos")
    y, classes = infer[0].labels.numpy(), sets[members[0]["run"]].classes
    c = len(classes)
    probs = np.stack([got["probs"][n] for n in names])
    weights = vote_weights([got["states"][n]["val_accuracy"] for n in names])
    stacker, note = _fit_stacker(members, sets, got["states"], c, Path(out))
    preds = {f"member_{n}": probs[i].argmax(-1) for i, n in enumerate(names)}
    preds.update(vote_labels(probs, weights, stacker, "hetero_"))
    base = json.loads(RunDir(members[0]["run"]).report_json.read_text())
    table = {k: per_class_accuracy(y, p, c) for k, p in preds.items()}
    acc = {GENERAL: base["accuracy"][GENERAL],
           **{f"homogeneous_{v}": base["accuracy"].get(f"vote_{v}") for v in VOTES},
           **{k: mean_of(t) for k, t in table.items()},
           "random_init_probe": base["accuracy"]["random_init_probe"], BASELINE: base["accuracy"][BASELINE]}
    homo = np.array([base["predictions"][report_key(m)] for m in PARTIALS])
    about = {m["name"]: {"run": str(m["run"]), "head": m["head"],
                         "val_accuracy": got["states"][m["name"]]["val_accuracy"]} for m in members}
    return {"recipe": name, "classes": classes, "held_out_videos": int(len(y)), "members": about,
            "accuracy": {k: v for k, v in acc.items() if v is not None},
            "per_class_accuracy": table, "stacker": note,
            "error_correlation": {"hetero": error_correlation(probs.argmax(-1), y, names),
                                  "homogeneous": error_correlation(homo, y, list(PARTIALS))}}


def _fit_stacker(members: list[dict], sets: dict[str, FeatureSets], states: dict, classes: int, out: Path):
    """The stacked vote's meta-model on the videos no member trained on -> (stacker, note)."""
    unseen = None
    for m in members:
        val = states[m["name"]].get("val_paths")
        if val is None:
            raise ConfigError(f"{m['run']}: its member checkpoints predate validation lists; train it again")
        unseen = set(val) if unseen is None else unseen & set(val)
    first = sets[members[0]["run"]].train
    videos = [p for p in first.paths if p in unseen]
    probs = []
    for m in members:
        feats = subset(sets[m["run"]].train, videos)
        recipe = recipe_from_dict(m["recipe"])
        p, _ = member_probs(recipe, m["run"], sets[m["run"]], members=(m["head"],), videos=feats)
        probs.append(p[m["head"]])
    heads = {m["name"]: checkpoint.state_hash(head_from_state(
        states[m["name"]]["head"], recipe_from_dict(m["recipe"]).classify.head).state_dict()) for m in members}
    stacker, note = fit_stacker(np.stack(probs), subset(first, videos).labels.numpy(), classes,
                                EnsembleDir(out).stacker, heads)
    if stacker is None:
        return None, note
    return stacker, (f"fitted on {len(videos)} labelled videos in every member's validation split "
                     f"(none of them trained on these), l2 {stacker['l2']:g}")


def error_correlation(preds: np.ndarray, y: np.ndarray, names: list[str]) -> dict:
    """How alike the members' mistakes are: for each pair, the correlation of their error
    indicators (phi; 1 = they fail on the same videos, so voting cannot fix them) and how often
    they disagree; and the means over pairs."""
    errors = preds != y[None]
    pairs = {}
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = errors[i].astype(float), errors[j].astype(float)
            phi = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else None
            pairs[f"{names[i]}~{names[j]}"] = {"phi": phi, "disagree": float((preds[i] != preds[j]).mean())}
    phis = [p["phi"] for p in pairs.values() if p["phi"] is not None]
    return {"pairs": pairs, "mean_phi": float(np.mean(phis)) if phis else None,
            "mean_disagree": float(np.mean([p["disagree"] for p in pairs.values()])),
            "error_rate": {n: float(errors[i].mean()) for i, n in enumerate(names)}}


def train_ensemble_seeds(cfg: HeteroConfig, data_root: Path, out: Path, n: int,
                         overrides: dict | None = None, resume: bool = False,
                         show_progress: bool = True) -> dict:
    """The ensemble with N seeds (each member's recipe seed + k) into OUT/seed-<k>/, and the
    spread of every figure in OUT/report.*; one seed trains into OUT itself."""
    out = Path(out)
    if n == 1:
        return train_ensemble(cfg, data_root, out, overrides, 0, resume, show_progress)
    reports = [train_ensemble(cfg, data_root, out / f"seed-{k}", overrides, k, resume, show_progress)
               for k in range(n)]
    corr = {}
    for which in ("hetero", "homogeneous"):
        phi, sd = mean_sd(r["error_correlation"][which]["mean_phi"] for r in reports)
        corr[which] = {"mean_phi": phi, "sd_phi": sd, "mean_disagree": mean_sd(
            r["error_correlation"][which]["mean_disagree"] for r in reports)[0]}
    summary = {**seed_summary(reports, list(range(n))), "error_correlation_mean": corr}
    write_reports(out, summary, ensemble_markdown(summary))
    return summary
