"""RUN/report.html, the page a person looks at: which held-out clips the run's answer got wrong
(most confidently wrong first) and right, as animated thumbnails; occlusion maps of the wrong ones
(PyTorch members, `core.occlusion`); which unlabelled clips to label next (`label_next`); the
figures; what the clip covers of each video. The numbers are report.json's; `report_html` draws."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from picojepa.core.errors import DecodeError
from picojepa.core.occlusion import occlusion_map, overlay
from picojepa.core.roster import VOTE_MEMBERS, report_key
from picojepa.core.rundir import PLOTS, RunDir

from .answer import answer_scores, column
from .answer_model import AnswerModel
from .config import Recipe
from .files import write_text
from .label_next import rank, unlabelled_videos, vote_entropy
from .report import RunReport
from .report_html import Page, Tile, render, render_repeats
from .thumbnails import clip_indices, data_uri, gif_uri, view

log = logging.getLogger(__name__)
WRONG = 32  # misclassified clips shown at most, most confidently wrong first
MAPS = 12  # of them, how many get an occlusion map
RIGHT = 3  # clips answered right shown per class
LABEL_NEXT = 12  # unlabelled clips listed
CANDIDATES = 256  # unlabelled clips ranked at most (a seeded sample where there are more)
COVERAGE = 500  # held-out videos whose sampling the page draws at most
BATCH = 16  # clips per call of the members


def write_page(recipe: Recipe, data_root: Path, run_dir: Path, report: RunReport) -> Path:
    """Draw the run's report page from its report and its member checkpoints."""
    t0, r, run = time.perf_counter(), report.to_json(), RunDir(run_dir)
    weights = [r["vote_weights"][report_key(m)] for m in VOTE_MEMBERS]
    model = AnswerModel(run_dir, r["answer"]["chosen"], weights)
    wrong, right = _picked(r)
    total = sum(a != b for a, b in zip(r["predictions"][column(r["answer"]["chosen"])], r["predictions"]["labels"]))
    page = Page(r, root=run.root, wrong=[_tile(r, k, recipe, model if n < MAPS else None) for n, k in enumerate(wrong)],
                right=[_tile(r, k, recipe) for k in right],
                wrong_about=f"{total} of {len(r['predictions']['labels'])} held-out clips answered wrong; "
                            f"{'all' if total <= WRONG else f'the {WRONG} most confidently wrong'} shown, most "
                            f"confidently wrong first, the first {min(MAPS, total)} with an occlusion map.")
    page.label_next, page.label_next_note = _label_next(recipe, data_root, model, r["classes"])
    page.plots = {n: data_uri(run.plot(n).read_bytes(), "image/png") for n in PLOTS if run.plot(n).is_file()}
    page.coverage = _coverage(r["predictions"]["paths"][:COVERAGE], recipe)
    write_text(run.report_html, render(page))
    log.info("%s: %d KiB, drawn in %.1f s", run.report_html, run.report_html.stat().st_size // 1024,
             time.perf_counter() - t0)
    return run.report_html


def write_repeats_page(out: Path, summary: dict, runs: list[str]) -> Path:
    """OUT/report.html of a recipe run several times (`--seeds`, `--folds`): the headline as mean ± sd,
    linking each run's own page (OUT/<run>/report.html)."""
    write_text(RunDir(out).report_html, render_repeats(summary, runs))
    return RunDir(out).report_html


def _picked(r: dict) -> tuple[list[int], list[int]]:
    """The held-out clips the page shows: the wrong ones, most confident first (at most WRONG),
    and the RIGHT most confident right ones of each class."""
    p = r["predictions"]
    pred, y, conf = p[column(r["answer"]["chosen"])], p["labels"], p["answer_confidence"]
    by_conf = sorted(range(len(y)), key=lambda k: -conf[k])
    wrong = [k for k in by_conf if pred[k] != y[k]][:WRONG]
    right = [k for c in range(len(r["classes"])) for k in [k for k in by_conf if y[k] == c == pred[k]][:RIGHT]]
    return wrong, right


def _tile(r: dict, k: int, recipe: Recipe, model: AnswerModel | None = None) -> Tile:
    """Held-out clip k with its thumbnail and, given the model, its occlusion map."""
    p, cls = r["predictions"], r["classes"]
    answered = p[column(r["answer"]["chosen"])][k]
    tile = Tile(k, p["paths"][k], cls[p["labels"][k]], cls[answered], p["answer_confidence"][k])
    try:
        v = view(tile.path, recipe.clip, with_clip=model is not None)
    except DecodeError as exc:
        tile.note = f"not shown: {exc.reason}"
        return tile
    tile.gif = gif_uri(v.thumb)
    if model is not None:
        m = occlusion_map(v.clip, model, target=answered)
        tile.overlay = gif_uri(overlay(v.thumb, m))
        tile.note = f"answer without its main block: {m.base - m.drop.max():.2f} of {m.base:.2f}"
    return tile


def _label_next(recipe: Recipe, data_root: Path, model: AnswerModel, classes: list[str]) -> tuple[list[Tile], str]:
    """The unlabelled clips to label first (`label_next.priority`), and what was ranked."""
    videos = unlabelled_videos(data_root)
    if not videos:
        return [], ("The data root holds no unlabelled videos (<code>picojepa-data index --unlabelled DIR</code> "
                    "adds some); with them, this section ranks which to label next.")
    pool = videos
    if len(videos) > CANDIDATES:
        pool = [videos[i] for i in sorted(np.random.default_rng(recipe.seed).choice(len(videos), CANDIDATES, False))]
    views = []
    for path in pool:
        try:
            views.append(view(path, recipe.clip, with_clip=True))
        except DecodeError as exc:
            log.warning("%s: not ranked for labelling: %s", path, exc.reason)
    if not views:
        return [], f"None of the {len(pool)} unlabelled videos ranked could be decoded."
    got = [model.member_probs(np.stack([v.clip for v in views[i:i + BATCH]])) for i in range(0, len(views), BATCH)]
    members = {m: np.concatenate([g[m] for g in got]) for m in got[0]}
    partial = np.stack([members[m] for m in VOTE_MEMBERS])
    answer = answer_scores(model.answer, members, model.weights)
    split = vote_entropy(partial)
    tiles = []
    for k in rank(partial, answer)[:LABEL_NEXT]:
        votes = ", ".join(classes[int(i)] for i in partial[:, k].argmax(-1))
        tiles.append(Tile(None, views[k].path, "", classes[int(answer[k].argmax())], float(answer[k].max()),
                          gif_uri(views[k].thumb), note=f"members: {votes}; disagreement {split[k]:.2f}"))
    note = (f"Ranked {len(views)} of the data root's {len(videos)} unlabelled videos"
            + (" (a seeded sample)" if len(pool) < len(videos) else "") + ": first those the partial members "
            "disagree on most (the entropy of their votes), then those the answer is least sure of. How much "
            "this ranking teaches against labelling at random is measured in docs/results.md.")
    return tiles, note


def _coverage(paths: list[str], recipe: Recipe) -> list[tuple[str, int, list[int]]]:
    """Each held-out video's frames and the frames its evaluation clip takes."""
    out = []
    for p in paths:
        try:
            out.append((p, *clip_indices(p, recipe.clip)))
        except DecodeError as exc:
            log.warning("%s: not drawn on the page's sampling table: %s", p, exc.reason)
    return out
