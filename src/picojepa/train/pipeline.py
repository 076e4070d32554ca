"""The stages in order, and the report: what `picojepa-train all` and `make train` run."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from picojepa.core.clips import center_indices
from picojepa.core.console import progress
from picojepa.core.decode import open_video
from picojepa.core.errors import DataLayoutError
from picojepa.core.roster import MEMBERS
from picojepa.core.rundir import RunDir

from . import checkpoint, distributed
from .classify import classify, features_for
from .config import Recipe, token_grid
from .evaluate import evaluate, features_for_plot
from .features import FeatureSets
from .files import write_text
from .layout import check_layout
from .masking import MASKS
from .pretrain import PretrainResult, pretrain
from .report import RunFacts, RunReport, write_run_report
from .report_plots import plot_confusions, plot_losses, plot_masking, plot_tsne
from .report_page import write_page
from .synth import MARKER, generate

log = logging.getLogger(__name__)


def ensure_data(recipe: Recipe, data_root: Path, show_progress: bool = True) -> Path:
    """Generate the built-in data set at `data_root` when that folder is absent or empty, or
    finish one whose generation was interrupted; check the layout of any other (a folder of other
    files is never written into)."""
    data_root = Path(data_root)
    if data_root.is_symlink() and not data_root.exists():
        raise DataLayoutError(f"{data_root}: a dangling symbolic link, not a data root")
    unfinished = (data_root / MARKER).is_file()
    if data_root.exists() and not unfinished and (not data_root.is_dir() or any(data_root.iterdir())):
        check_layout(data_root)
        return data_root
    if not recipe.data.builtin:
        raise DataLayoutError(f"{data_root}: no data there; recipe {recipe.name!r} trains on your own "
                              f"videos: `picojepa-data index SRC --out {data_root}` (SRC/<class>/*), "
                              "then pass --data (make train DATA=...)")
    d = recipe.data
    log.warning("no data at %s: generating the built-in set (%d classes x %d videos, + %d "
                "unlabelled per class)", data_root, d.synth_classes, d.synth_videos_per_class,
                d.synth_unlabelled_per_class)
    generate(data_root, d.synth_classes, d.synth_videos_per_class, d.synth_seed,
             progress=lambda xs: progress(xs, desc="synth", disable=not show_progress),
             unlabelled_per_class=d.synth_unlabelled_per_class)
    return data_root


def write_report(recipe: Recipe, data_root: Path, run_dir: Path, facts: RunFacts | None = None,
                 show_progress: bool = True, pre: PretrainResult | None = None, sets: FeatureSets | None = None
                 ) -> RunReport:
    """Evaluate the run and write its report and figures. `pre` and `sets`: what pre-training
    and the classifiers handed on in this process (`run_all`); without them (`picojepa-train
    evaluate`) they are read from the run directory."""
    run_dir, run = Path(run_dir), RunDir(run_dir)
    sets = sets or features_for(run_dir, recipe, data_root, show_progress)
    report = evaluate(recipe, data_root, run_dir, show_progress, sets)
    if pre is None:
        pstate = checkpoint.load(run.pretrain, kind="pretrain")
        report.pretrain = {"history": pstate["history"], "skipped_videos": pstate["skipped"]}
    else:
        report.pretrain = {"history": pre.history, "skipped_videos": list(pre.skipped)}
    report.recipe_config = recipe.to_dict()
    report.embed_dim = recipe.model.embed_dim
    report.extra = facts or RunFacts()
    write_run_report(run_dir, report)
    histories = {m: checkpoint.load(run.member(m), kind="member")["history"] for m in MEMBERS}
    plot_losses(run_dir, histories, run.plot("loss"))
    plot_confusions(report, run.plot("confusion"))
    feats, labels = features_for_plot(sets)
    plot_tsne(feats, labels, report.classes, run.plot("tsne"), recipe.seed)
    _plot_mask_example(recipe, report.predictions["paths"][0], run.plot("masking"))
    write_page(recipe, data_root, run_dir, report)  # after the figures, which it inlines
    return report


def _plot_mask_example(recipe: Recipe, video: str, path: Path) -> None:
    grid = token_grid(recipe.model, recipe.clip)
    ctx, _ = MASKS[recipe.pretrain.mask](grid, recipe.pretrain.mask_ratio,
                                          np.random.default_rng(recipe.seed))
    v = open_video(video, recipe.clip.size, recipe.clip.seek_mode)
    frames = v.read(center_indices(v.num_frames, recipe.clip, v.placement_keyframes(recipe.clip)))
    plot_masking(frames, ctx, grid, recipe.model.tubelet, recipe.model.patch_size, path)


def run_all(recipe: Recipe, data_root: Path, run_dir: Path, resume: bool = False,
            show_progress: bool = True) -> RunReport | None:
    """Pre-train, train the classifiers, evaluate and write the report (None on a distributed
    pre-training's other ranks, which stop after pre-training)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ensure_data(recipe, data_root, show_progress)
    t0 = time.perf_counter()
    pre = pretrain(recipe, data_root, run_dir, resume=resume, show_progress=show_progress)
    t1 = time.perf_counter()
    if not distributed.is_main():
        return None
    cls = classify(recipe, data_root, run_dir, show_progress)
    t2 = time.perf_counter()
    skipped = sorted(set(pre.skipped) | set(cls.skipped))
    facts = RunFacts(pretrain_epochs=pre.epochs, final_loss=pre.final_loss, target_std=pre.target_std,
                     target_rank=pre.target_rank, vicreg=pre.vicreg, vicreg_recipe=recipe.pretrain.vicreg,
                     vicreg_below_videos=recipe.pretrain.vicreg_below_videos or None,
                     pretrain_seconds=t1 - t0, classify_seconds=t2 - t1, encoder_passes=cls.encoder_passes,
                     encoder_passes_uncached=cls.encoder_passes_uncached, skipped_videos=len(skipped))
    report = write_report(recipe, data_root, run_dir, facts, show_progress, pre, cls.sets)
    write_text(RunDir(run_dir).summary, json.dumps({"accuracy": report.accuracy, "skipped": skipped}, indent=1))
    return report
