"""Combining the members' probabilities into one answer. Used by the runtime and the evaluation.

probs: (M, N, C) array, M members, N clips or videos, C classes.
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np

VOTES = ("majority", "soft", "weighted", "stacked")
EPS = 1e-6  # probabilities are clipped here before the stacker takes their logarithm


def vote_counts(probs: np.ndarray) -> np.ndarray:
    """(N, C): how many members vote each class (their top-1) for each clip. Logits give the same."""
    m, n, c = probs.shape
    votes = np.zeros((n, c))
    np.add.at(votes, (np.arange(n)[None].repeat(m, 0), probs.argmax(-1)), 1)
    return votes


def majority(probs: np.ndarray) -> np.ndarray:
    """Each member votes its top-1 class; most votes wins. Tie-break: among the tied classes, the
    one with the highest summed probability over members; then the lowest class index."""
    votes = vote_counts(probs)
    tied = votes == votes.max(-1, keepdims=True)
    return np.where(tied, probs.sum(0), -np.inf).argmax(-1)


def soft(probs: np.ndarray) -> np.ndarray:
    """Mean probability over members (returns that mean, (N, C))."""
    return probs.mean(0)


def vote_weights(val_accuracy: Sequence[float | None]) -> list[float]:
    """Each member's weight in the weighted vote, from its validation accuracy (a fraction, None
    for a member trained without a validation split): the one rule, for bundles, the evaluation
    and heterogeneous ensembles alike. A member weighs its validation accuracy, 1.0 without one.
    Where every member weighs 0 (all validate at 0 %, as tiny validation splits can), each weighs
    1.0 instead: none is better than another, and the weighted vote is then the soft vote."""
    w = [1.0 if a is None else a for a in val_accuracy]
    if not all(isinstance(a, numbers.Real) and not isinstance(a, bool) and math.isfinite(a) and a >= 0 for a in w):
        raise ValueError(f"vote weights (validation accuracies) must be finite numbers >= 0 or None, "
                         f"got {list(val_accuracy)}")
    return [float(a) for a in w] if any(w) else [1.0] * len(w)


def weighted(probs: np.ndarray, weights) -> np.ndarray:
    """Probability averaged with member weights, (N, C); `weights` (one per member) are read by
    `vote_weights`, so all zeros give the soft vote."""
    w = np.asarray(vote_weights(weights), dtype=np.float64)
    if w.shape != (probs.shape[0],):
        raise ValueError(f"weights must be {probs.shape[0]} values, one per member, got {len(w)}")
    return np.tensordot(w / w.sum(), probs, axes=1)


def stack_features(probs: np.ndarray) -> np.ndarray:
    """The stacker's input: every member's log-probabilities side by side, (N, M*C) member-major."""
    m, n, c = probs.shape
    return np.log(np.clip(probs, EPS, 1.0)).transpose(1, 0, 2).reshape(n, m * c)


def stacked(probs: np.ndarray, stacker: dict) -> np.ndarray:
    """A learned combiner: softmax(stack_features(probs) @ weight.T + bias), (N, C). `stacker`
    holds `weight` (C, M*C) and `bias` (C,), trained on videos none of the members trained on."""
    if not stacker:
        raise ValueError("this bundle carries no stacking meta-model (re-export it from a run "
                         "whose classify stage trained one)")
    w, b = np.asarray(stacker["weight"], np.float64), np.asarray(stacker["bias"], np.float64)
    m, _, c = probs.shape
    if w.shape != (c, m * c) or b.shape != (c,):
        raise ValueError(f"stacker weight {w.shape} / bias {b.shape} do not fit {m} members "
                         f"x {c} classes")
    z = stack_features(probs) @ w.T + b
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def scores(probs: np.ndarray, method: str, weights=None, stacker: dict | None = None) -> np.ndarray:
    """(N, C): what a vote's confidence is read from: the members' mean probability (soft and
    majority, whose winner is the most voted class), their weighted mean, or the stacker's
    probabilities. An occlusion map measures how much of the answer's class it loses."""
    if method in ("majority", "soft"):
        return soft(probs)
    if method == "weighted":
        return weighted(probs, weights)
    if method == "stacked":
        return stacked(probs, stacker)
    raise ValueError(f"unknown vote {method!r}; known: {', '.join(VOTES)}")


def combine(probs: np.ndarray, method: str, weights=None,
            stacker: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,), confidence (N,)). Confidence: the winner's mean probability (soft/majority),
    its weighted probability, or the stacker's probability (`scores`)."""
    mean = scores(probs, method, weights, stacker)
    labels = majority(probs) if method == "majority" else mean.argmax(-1)
    return labels, mean[np.arange(len(labels)), labels]
