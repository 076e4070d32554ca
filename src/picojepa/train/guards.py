"""What a report's reader must see first, before any table: a collapsed pre-training, a learned
encoder no better than a random one or than frame differencing, and results that only a confound
explains: a held-out accuracy below chance (the features carry something that works against the
labels, such as who filmed where), or a classifier trained on shuffled labels scoring above chance
(the held-out videos are told apart by something that is not their class)."""
from __future__ import annotations

import math

import numpy as np

from picojepa.core.roster import GENERAL

from .motion_baseline import BASELINE

COLLAPSE_FRACTION = 6  # a target-token effective rank below embed_dim / 6 counts as collapse
SHUFFLED = "label_shuffled"  # the report column of the shuffled-label control
INIT_PROBE = "init_probe"  # the report column of the encoder pre-training started from, frozen
BAND_SD = 2.0  # how far from chance (in sds of guessing) a result must be to be flagged


def chance_band(labels, classes: int) -> tuple[float, float]:
    """Chance and its sd for the mean per-class accuracy (percent) of guessing uniformly among
    `classes` on held-out videos with these labels: each class's accuracy is a binomial share."""
    p = 1.0 / classes
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=classes)
    present = counts[counts > 0]
    var = sum(p * (1 - p) / n for n in present) / len(present) ** 2 if len(present) else 0.0
    return 100.0 * p, 100.0 * math.sqrt(var)


def _band(r: dict) -> tuple[float, float]:
    """The report's chance band: from its held-out labels, or, for a summary of repeated runs
    that keeps none, from as many videos spread evenly over the classes."""
    c = len(r["classes"])
    labels = (r.get("predictions") or {}).get("labels")
    if labels is None:
        labels = [i % c for i in range(int(r.get("held_out_videos") or c))]
    return chance_band(labels, c)


def _confounds(r: dict) -> list[str]:
    acc, out = r["accuracy"], []
    chance, sd = _band(r)
    below = {k: v for k, v in acc.items() if v < chance - BAND_SD * sd}
    if below:
        out.append(f"**Warning: below chance.** {', '.join(f'{k} {v:.2f}' for k, v in below.items())} "
                   f"score below chance ({chance:.2f}, minus {BAND_SD:g} sd of guessing: {chance - BAND_SD * sd:.2f}) "
                   "on the held-out videos: the features carry something that works against the labels "
                   "(most often who filmed or where: held-out clips meet the same filmer's other classes in "
                   "training). Do not trust these results; split the data by filmer or scene.")
    if SHUFFLED in acc and acc[SHUFFLED] > chance + BAND_SD * sd:
        out.append(f"**Warning: the shuffled-label control scores above chance.** A classifier trained on "
                   f"the same features with the labels shuffled scores {acc[SHUFFLED]:.2f} (chance {chance:.2f}, "
                   f"plus {BAND_SD:g} sd: {chance + BAND_SD * sd:.2f}): something other than the class tells "
                   "the held-out videos apart (their length, their source, duplicates across the split).")
    return out


def warnings(r: dict) -> list[str]:
    """The report's warnings (report.json's content, or a repeated run's summary), a paragraph each."""
    acc, out = r["accuracy"], []
    history = (r.get("pretrain") or {}).get("history") or []
    rank, dim = (history[-1].get("target_rank") if history else None), r.get("embed_dim")
    if rank is not None and dim and rank < dim / COLLAPSE_FRACTION:
        out.append(f"**Warning: pre-training collapsed.** The target tokens span an effective rank of "
                   f"{rank:.1f} of {dim} dimensions at the end (below {dim / COLLAPSE_FRACTION:.0f}): the "
                   "encoder maps clips onto a few directions.")
    if acc[GENERAL] <= acc["random_init_probe"]:
        out.append(f"**Warning: pre-training did not help.** The general model ({acc[GENERAL]:.2f}) is "
                   f"no better than the same probe on a randomly initialised encoder "
                   f"({acc['random_init_probe']:.2f}).")
    if acc.get(INIT_PROBE) is not None and acc[GENERAL] < acc[INIT_PROBE]:
        out.append(f"**Warning: pre-training on these clips lost what the starting encoder had.** The "
                   f"general model ({acc[GENERAL]:.2f}) is below the same probe on the encoder its "
                   f"pre-training started from, frozen ({acc[INIT_PROBE]:.2f}): try fewer epochs or a lower "
                   "`pretrain.lr`.")
    if acc.get(BASELINE) is not None and acc[GENERAL] <= acc[BASELINE]:
        out.append(f"**Warning: the learned encoder does not beat frame differencing.** The general "
                   f"model ({acc[GENERAL]:.2f}) is no better than logistic regression on hand-made "
                   f"motion-energy numbers ({acc[BASELINE]:.2f}).")
    out += _confounds(r)
    return [line for w in out for line in (w, "")]
