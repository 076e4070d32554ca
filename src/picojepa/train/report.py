"""The run report: report.json and report.md (the paper's tables) of a run, of a recipe run
several times (seeds, folds) and of a heterogeneous ensemble; the figures are `report_plots`."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from picojepa.core.mdtable import row, table
from picojepa.core.roster import GENERAL, MEMBERS, MOTION, report_key
from picojepa.core.rundir import RunDir
from picojepa.core.vote import VOTES

from .answer import column
from .files import write_text
from .guards import INIT_PROBE, SHUFFLED, warnings
from .motion_baseline import BASELINE, N_FEATURES

COLUMNS = (*(report_key(m) for m in MEMBERS), "vote_majority", "vote_soft", "vote_weighted",
           "vote_stacked", report_key(MOTION), "vote_hybrid", "random_init_probe", INIT_PROBE, BASELINE,
           SHUFFLED)


@dataclass
class RunFacts:
    """How the run went, in numbers (report.json's `extra`; the report's sentences are drawn from
    them). None where the stage did not run in this process (`picojepa-train evaluate`)."""
    pretrain_epochs: int | None = None
    final_loss: float | None = None
    target_std: float | None = None  # the target embedding's mean per-dimension std
    target_rank: float | None = None  # effective rank of the target tokens, last epoch
    vicreg: float | None = None  # the variance/covariance weight the run used
    vicreg_recipe: float | None = None  # the recipe's weight, applied below ...
    vicreg_below_videos: int | None = None  # ... this many pre-training videos (None: always)
    pretrain_seconds: float | None = None
    classify_seconds: float | None = None
    encoder_passes: int | None = None  # frozen-encoder clip passes with the feature cache
    encoder_passes_uncached: int | None = None  # ... and for the 5 heads alone without it
    skipped_videos: int = 0


@dataclass
class RunReport:
    """One run's evaluation on its held-out videos: report.json's content, key for key (`to_json`),
    and what `report.md` is drawn from (`write_run_report`). Accuracies and certainties are in percent,
    per report column (`COLUMNS`), per class in `classes` order."""
    recipe: str
    classes: list[str]
    held_out_videos: int
    feature_dim: int
    pool: str
    head: str
    accuracy: dict[str, float]
    per_class_accuracy: dict[str, list[float | None]]
    certainty: dict[str, list[float | None]]
    confusion: dict[str, list[list[int]]]
    vote_tie_break: str
    stacker: str  # what the stacked vote is, or why there is none
    feature_effective_rank: dict[str, float]
    vote_weights: dict[str, float]
    validation_accuracy: dict[str, float | None]
    skipped_videos: list[str]
    predictions: dict[str, list]  # paths, labels, each column's predicted labels, the answer's confidence
    pretrain: dict = field(default_factory=dict)  # history (one row per epoch) and skipped_videos
    recipe_config: dict = field(default_factory=dict)
    embed_dim: int | None = None
    extra: RunFacts = field(default_factory=RunFacts)
    answer: dict = field(default_factory=dict)  # the default answer's validation (`answer.AnswerChoice`)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def all_skipped(self) -> list[str]:
        """Every video pre-training or the classifiers could not decode."""
        return sorted(set(self.skipped_videos) | set(self.pretrain.get("skipped_videos", [])))


def write_run_report(root: Path, report: RunReport) -> None:
    """A run's report.json and report.md, both from `report`."""
    r = report.to_json()
    write_reports(root, r, markdown(r))


def write_reports(root: Path, report: dict, md: str) -> None:
    """A run's (or an ensemble's, or a repeated run's: the same two names) report.json and report.md."""
    write_text(RunDir(root).report_json, json.dumps(report, indent=1))
    write_text(RunDir(root).report_md, md)


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.2f}"


POOL_WORDS = {
    "mean": " (the mean over tokens: the paper's protocol).",
    "meanstd": " (mean and standard deviation over tokens; the paper's protocol is `mean`).",
    "max": " (the maximum over tokens of each channel; the paper's protocol is `mean`).",
    "meandelta": " (the mean over tokens and how much each channel changes from one time step to the next; "
                 "the paper's protocol is `mean`).",
    "changemap": " (the mean over tokens, how much each channel changes from one time step to the next, and a "
                 "map of where and when the tokens change; the paper's protocol is `mean`).",
}


def _reads(r: dict) -> str:
    """What the classifiers read from the frozen encoder, in words."""
    if r.get("head") == "attentive":
        return ("The classifiers are attentive probes: a learned query attends over every "
                "frozen-encoder token (V-JEPA's protocol; no pooling).")
    pool = r.get("pool", "mean")
    return f"Frozen-encoder tokens pooled by `{pool}`" + POOL_WORDS.get(pool, ".")


def _init_of(r: dict) -> str:
    """Where the run's pre-training started (`pretrain.init` of the recipe it records)."""
    return str(((r.get("recipe_config") or {}).get("pretrain") or {}).get("init", "scratch"))


def _headline(r: dict) -> list[str]:
    """The report's headline: the general model, the votes and what it is measured against."""
    acc = r["accuracy"]
    lines = ["## Headline", "", *_answer(r),
             f"- general model: **{acc[GENERAL]:.2f}**",
             f"- majority vote of the four partial models: **{acc['vote_majority']:.2f}** "
             f"(soft vote {acc['vote_soft']:.2f}, weighted vote {acc['vote_weighted']:.2f}"
             + (f", stacked {acc['vote_stacked']:.2f}" if "vote_stacked" in acc else "") + ")",
             f"- linear probe on a randomly initialised encoder of the same shape: "
             f"**{acc['random_init_probe']:.2f}** (pre-training bought "
             f"{acc[GENERAL] - acc['random_init_probe']:+.2f} points)"]
    if INIT_PROBE in acc:
        lines.append(f"- the same probe on the encoder pre-training started from (`{_init_of(r)}`), frozen: "
                     f"**{acc[INIT_PROBE]:.2f}** (pre-training on these clips added "
                     f"{acc[GENERAL] - acc[INIT_PROBE]:+.2f} points)")
    if "vote_hybrid" in acc:
        lines.append(f"- hybrid vote (soft vote of the general model and the motion member, a linear head on "
                     f"the clip's frame-differencing numbers, in the graph): **{acc['vote_hybrid']:.2f}** "
                     f"(motion member alone {acc[report_key(MOTION)]:.2f})")
    if BASELINE in acc:
        lines.append(f"- motion-energy baseline (frame differencing, {N_FEATURES} numbers per video, "
                     f"logistic regression; no learned features): **{acc[BASELINE]:.2f}** "
                     f"(the general model is {acc[GENERAL] - acc[BASELINE]:+.2f} points "
                     "from it)")
    lines.append("")
    fr = r.get("feature_effective_rank")
    if fr:
        lines.append(f"- effective rank of the pooled features the probes see (of "
                     f"{r.get('feature_dim', '?')} dimensions): pre-trained {fr['pretrained']:.1f}, "
                     f"random-init {fr['random_init']:.1f}"
                     + (" — dimensional collapse: the pre-trained features use fewer directions "
                        "than random ones" if fr["pretrained"] < 0.75 * fr["random_init"] else ""))
    return lines


def _answer(r: dict) -> list[str]:
    """What the run's bundle answers with by default, why, and how that answer did on the held-out videos."""
    a = r.get("answer") or {}
    if not a:
        return []
    held = r["accuracy"].get(column(a["chosen"]))
    scored = ", ".join(f"{k} {v:.2f} ({a['videos'][k]} videos)" for k, v in a["accuracy"].items()) or "none"
    return [f"- the bundle answers with **{a['chosen']}** by default"
            + (f": **{held:.2f}** on the held-out videos" if held is not None else "")
            + f" (chosen on validation videos none of its members trained on: {scored})"]


def _facts(f: dict, dim: int | None) -> list[str]:
    """How the run went (report.json's `extra`), in sentences; nothing for what did not run here."""
    lines = []
    if f.get("pretrain_epochs") is not None:
        why = (f" (the recipe applies {f['vicreg_recipe']:g} below {f['vicreg_below_videos']} pre-training videos)"
               if f.get("vicreg_below_videos") else "")
        lines.append(f"- pre-training: {f['pretrain_epochs']} epochs, final loss {f['final_loss']:.4f}, target "
                     f"embedding spread (mean per-dimension std) {f['target_std']:.3f}, effective rank of the "
                     f"target tokens {f['target_rank']:.1f} of {dim}, variance/covariance weight {f['vicreg']:g}{why}, "
                     f"{f['pretrain_seconds']:.0f} s")
    if f.get("classify_seconds") is not None:
        lines.append(f"- classifiers: 5 heads + random-init probe in {f['classify_seconds']:.0f} s; frozen-encoder "
                     f"features computed once: {f['encoder_passes']} encoder clip passes instead of "
                     f"{f['encoder_passes_uncached']} for the 5 heads alone without the cache")
    if f.get("skipped_videos"):
        lines.append(f"- skipped videos: {f['skipped_videos']} (listed below)")
    return lines


def markdown(r: dict) -> str:
    """report.md from report.json's content (`RunReport.to_json`)."""
    cls = r["classes"]
    columns = [k for k in COLUMNS if k in r["accuracy"]]  # vote_stacked only where one was fitted
    lines = [f"# pico-JEPA run report: recipe `{r['recipe']}`", "",
             f"{r['held_out_videos']} held-out videos, {len(cls)} classes. Accuracy is the mean of "
             "the per-class accuracies (the paper's average row), in percent. " + _reads(r), ""]
    lines += warnings(r) + _headline(r)
    acc = r["accuracy"]
    lines += _facts(r.get("extra") or {}, r.get("embed_dim"))
    lines += ["", "## Accuracy per class (Table 2)", ""]
    lines += table(["class", *columns], [[c, *(_fmt(r["per_class_accuracy"][k][i]) for k in columns)]
                                         for i, c in enumerate(cls)])
    lines.append(row(["**average**", *(f"**{acc[k]:.2f}**" for k in columns)]))
    members = list(COLUMNS[:5])
    lines += ["", "## Certainty: mean top-1 probability per true class (Table 3)", ""]
    lines += table(["class", *members], [[c, *(_fmt(r["certainty"][k][i]) for k in members)]
                                         for i, c in enumerate(cls)])
    lines += ["", f"Majority-vote tie-break: {r['vote_tie_break']}. Weighted vote weights (validation "
              f"accuracy of each partial model): "
              + ", ".join(f"{k} {v:.2f}" for k, v in r["vote_weights"].items()) + ". Stacked vote: "
              + r["stacker"] + ".", "",
              "## Confusion matrices", "", "Rows: true class; columns: predicted. See "
              "`confusion.png`.", ""]
    for k in (GENERAL, "vote_majority", "random_init_probe"):
        lines += [f"**{k}**", "", *table(["", *cls], [[c, *r["confusion"][k][i]] for i, c in enumerate(cls)]), ""]
    if r["skipped_videos"]:
        lines += ["## Skipped videos (could not be decoded)", ""] + [f"- {s}" for s in r["skipped_videos"]]
    lines += ["", "## Plots", "", "![loss](loss.png)", "![confusion](confusion.png)",
              "![t-SNE](tsne.png)", "![masking](masking.png)", ""]
    return "\n".join(lines)


def seeds_markdown(r: dict, columns: list[str]) -> str:
    """The report of a multi-seed run: every accuracy as mean ± sd, and each seed's figures."""
    seeds = r["seeds"]
    about = (f"seeds {', '.join(map(str, seeds))} (initialisation, masks, clip draws and validation split "
             "vary; the data split does not); each seed's full report is in `seed-<s>/report.md`")
    return repeats_markdown({**r, "per_run": {f"seed {s}": r["per_seed"][str(s)] for s in seeds},
                             "per_run_target_rank": {f"seed {s}": v for s, v in
                                                     zip(seeds, r["per_seed_target_rank"].values())}},
                            columns, about)


def repeats_markdown(r: dict, columns: list[str], about: str) -> str:
    """The report of a recipe run several times (seeds or folds, `about` says which): every
    accuracy as mean ± sd, and each run's figures (r["per_run"], r["per_run_target_rank"])."""
    mean, sd, runs = r["accuracy_mean"], r["accuracy_sd"], r["per_run"]
    summary = {**r, "accuracy": mean,
               "pretrain": {"history": [{"target_rank": r["target_rank_mean"]}]}}
    lines = [f"# pico-JEPA run report: recipe `{r['recipe']}`, {len(runs)} runs", "",
             f"{r['held_out_videos']} held-out videos, {len(r['classes'])} classes; {about}. Mean ± "
             "sample sd over the runs of the mean per-class accuracy, in percent.", ""]
    lines += warnings(summary)
    lines += table(["", *columns], [["**mean ± sd**", *(f"**{mean[k]:.2f} ± {sd[k]:.2f}**" for k in columns)],
                                    *([name, *(_fmt(a.get(k)) for k in columns)] for name, a in runs.items())])
    lines += ["", f"- pre-training bought {mean[GENERAL] - mean['random_init_probe']:+.2f} points over the "
              "random-init probe in the mean",
              f"- effective rank of the target tokens at the end: {r['target_rank_mean']:.1f} ± "
              f"{r['target_rank_sd']:.1f} of {r.get('embed_dim', '?')} (per run: "
              + ", ".join(f"{v:.1f}" for v in r["per_run_target_rank"].values()) + ")", ""]
    return "\n".join(lines)


def ensemble_rows(r: dict) -> list[str]:
    """A heterogeneous ensemble's report rows in order: the references, the votes, each member, the baselines."""
    rows = (GENERAL, *(f"homogeneous_{v}" for v in VOTES), *(f"hetero_{v}" for v in VOTES),
            *(f"member_{n}" for n in r["members"]), "random_init_probe", BASELINE)
    return [k for k in rows if k in (r.get("accuracy_mean") or r["accuracy"])]


def ensemble_markdown(r: dict) -> str:
    """A heterogeneous ensemble's report: one row per model or vote, mean ± sd over the seeds
    where there are several."""
    seeds = r.get("seeds", [])
    mean, sd = r.get("accuracy_mean") or r["accuracy"], r.get("accuracy_sd") or {}
    lines = [f"# Heterogeneous ensemble `{r['recipe']}`" + (f", {len(seeds)} seeds" if seeds else ""), "",
             f"{r['held_out_videos']} held-out videos, {len(r['classes'])} classes; mean per-class accuracy "
             "in percent" + (" (mean ± sample sd over the seeds)" if seeds else "") + ". `general` and "
             "`homogeneous_*` (the paper's four partial members on one encoder) come from the first "
             "member's run; `hetero_*` vote over the members below; `member_*` are each alone.", "",
             *table(["model or vote", "accuracy", *(f"seed {s}" for s in seeds)],
                    ([k, f"{mean[k]:.2f}" + (f" ± {sd[k]:.2f}" if k in sd else ""),
                      *(f"{r['per_seed'][str(s)].get(k, float('nan')):.2f}" for s in seeds)]
                     for k in ensemble_rows(r)))]
    lines += ["", "Error correlation (phi of the members' error indicators, mean over pairs; disagreement "
              "rate): the lower, the more a vote can fix.", ""]
    for which in ("hetero", "homogeneous"):
        e = r.get("error_correlation_mean", {}).get(which) or r["error_correlation"][which]
        phi = "–" if e.get("mean_phi") is None else f"{e['mean_phi']:.2f}"
        lines.append(f"- {which}: phi {phi}" + (f" ± {e['sd_phi']:.2f}" if e.get("sd_phi") is not None else "")
                     + f", disagree {e['mean_disagree']:.2f}")
    lines += ["", f"Stacked vote{' (seed 0)' if seeds else ''}: {r['stacker']}", ""]
    return "\n".join(lines)
