"""The recipe's own model: FLOPs and GFLOP/s against the peak, the share of decoding in the
end-to-end time under each clip placement, and what keyframe placement does to accuracy."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from picojepa.core.bundle import Bundle
from picojepa.core.roster import GENERAL
from picojepa.core.vote import VOTES
from picojepa.runtime.ensemble import Ensemble
from picojepa.train.recipe_file import recipe_from_dict
from picojepa.train.vit import VideoViT

from . import flops
from .stats import repeat_ms, summarize

PLACEMENTS = ("exact", "keyframe")


def compute_figures(b: Bundle, bundle: Path, peak_gflops: float) -> dict:
    """FLOPs per clip (counted and by formula) and the encoder's achieved GFLOP/s against peak.
    The fused graph is timed on onnxruntime with the runtime's session options."""
    recipe = recipe_from_dict(b.recipe)
    enc = VideoViT(recipe.model, recipe.clip)
    counted = flops.counted(enc, (1, *recipe.clip.input_shape))
    form = flops.formula(recipe.model, recipe.clip, len(b.classes), len(b.members))
    ens = Ensemble.load(bundle, provider="cpu")
    out = {"encoder_flops_counted": counted, "formula": form,
           "counted_matches_formula": abs(counted - form["encoder_without_attention"]) <= 0.01 * counted,
           "method": "encoder FLOPs from the config's formula (matrix products, 2 FLOPs per "
                     "multiply-add); torch.utils.flop_counter.FlopCounterMode's count of the real "
                     "module, which cannot see the fused CPU attention kernel, checks the rest"}
    for bs in (1, 8):
        x = np.random.default_rng(0).standard_normal((bs, *recipe.clip.input_shape)).astype(np.float32)
        t = summarize(repeat_ms(lambda: ens.member_probs(x), 20, warmup=3))
        out[f"batch{bs}_ms"] = t
        out[f"batch{bs}_gflops"] = bs * form["total"] / (t["p50"] * 1e-3) / 1e9
    best = max(out["batch1_gflops"], out["batch8_gflops"])
    out.update(achieved_gflops=best, peak_gflops=peak_gflops, fraction_of_peak=best / peak_gflops)
    return out


def decode_share(bundle: Path, videos: list[Path], threads: int, rounds: int) -> dict:
    """(decode + preprocess) / end-to-end of the fused runtime per clip placement, the two
    interleaved video by video (round 0 warms up)."""
    ens = {pl: Ensemble.load(bundle, provider="cpu", threads=threads, placement=pl) for pl in PLACEMENTS}
    shares = {pl: [] for pl in PLACEMENTS}
    totals = {pl: [] for pl in PLACEMENTS}
    for r in range(rounds + 1):
        for p in videos:
            for pl in PLACEMENTS:
                pred = ens[pl].finish(ens[pl].decode(p))
                if pred.error or not r:
                    continue
                t = pred.timings_ms
                shares[pl].append((t["decode"] + t["preprocess"]) / t["total"])
                totals[pl].append(t["total"])
    out = {"videos": [p.name for p in videos]}
    for pl in PLACEMENTS:
        out[pl] = {"share": float(np.median(shares[pl])) if shares[pl] else None,
                   "total_ms_p50": float(np.median(totals[pl])) if totals[pl] else None}
    return out


def placement_accuracy(bundle: Path, videos: list[str]) -> dict:
    """Accuracy (mean of per-class, %) of the general model and every vote on labelled videos
    (label = folder name) with the bundle's clips placed exactly and at keyframes; and on how
    many videos keyframe placement moved the clip at all."""
    placed = {pl: Ensemble.load(bundle, provider="cpu", placement=pl) for pl in PLACEMENTS}
    ens = placed[PLACEMENTS[0]]
    classes = list(ens.classes)
    truth = np.array([classes.index(Path(v).parent.name) for v in videos])
    methods = [m for m in VOTES if m != "stacked" or ens.stacker is not None]
    decoded = {pl: [placed[pl].decode(v) for v in videos] for pl in PLACEMENTS}
    out = {"videos": len(videos),
           "moved": sum(a.spans[0] != b.spans[0] for a, b in zip(*decoded.values()))}
    for pl, ds in decoded.items():
        preds = {m: [ens.finish(d, m) for d in ds] for m in methods}
        row = {f"vote_{m}": _mean_per_class([p.index for p in ps], truth, len(classes))
               for m, ps in preds.items()}
        if GENERAL in ens.bundle.members:
            row[GENERAL] = _mean_per_class([p.members[GENERAL].index for p in preds[methods[0]]],
                                           truth, len(classes))
        out[pl] = row
    return out


def _mean_per_class(pred: list[int], truth: np.ndarray, classes: int) -> float:
    pred = np.asarray(pred)
    per = [float(np.mean(pred[truth == c] == c)) for c in range(classes) if (truth == c).any()]
    return 100 * float(np.mean(per))
