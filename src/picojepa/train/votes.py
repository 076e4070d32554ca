"""An ensemble's votes on the held-out videos and its stacked vote's meta-model, written once for
both ensembles: the paper's homogeneous one (the four partial members on one encoder,
`evaluate`) and the heterogeneous one (members on their own encoders, `hetero`)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from picojepa.core import vote

from . import checkpoint, stacking

log = logging.getLogger(__name__)


def vote_labels(probs: np.ndarray, weights: list[float], stacker: dict | None, prefix: str) -> dict:
    """Every vote over the members' probabilities (M, N, C) -> {prefix + vote: labels (N,)};
    the stacked vote only where there is a meta-model."""
    return {f"{prefix}{v}": vote.combine(probs, v, weights, stacker=stacker)[0]
            for v in vote.VOTES if v != "stacked" or stacker is not None}


def fit_stacker(probs: np.ndarray, labels: np.ndarray, classes: int, path: Path,
                heads: dict[str, str]) -> tuple[dict | None, str]:
    """Fit the stacked vote's meta-model on the members' probabilities (M, N, C) on N videos
    none of them trained on, and save it at `path` with the members (`heads`: name -> hash of
    its head, in vote order) it combines; where too few videos fit one, remove a stale one.
    -> (stacker or None, how it was fitted or why it was not)."""
    stacker, note = stacking.fit(probs, labels, classes)
    if stacker is None:
        Path(path).unlink(missing_ok=True)
        log.warning("stacking meta-model %s", note)
        return None, note
    checkpoint.save({"kind": "stacker", "members": list(heads), **stacker, "member_heads": dict(heads)}, path)
    return stacker, note


def load_stacker(path: Path) -> tuple[dict | None, str]:
    """A saved meta-model and what it is, or None and why there is none."""
    if not Path(path).exists():
        return None, "no meta-model (too few unseen validation videos to fit one)"
    stacker = checkpoint.load(path, kind="stacker")
    return stacker, stacker_note(stacker)


def stacker_note(stacker: dict) -> str:
    return (f"logistic regression on the members' log-probabilities, fitted on "
            f"{stacker['fitted_on_videos']} validation videos none of them trained on, "
            f"pulled towards the log-space soft vote with l2 {stacker['l2']:g} "
            f"(chosen by {stacking.FOLDS}-fold cross-validation)")
