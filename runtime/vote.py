"""Combining the members' probabilities into one answer. Used by the runtime and the evaluation.

probs: (M, N, C) array, M members, N clips or videos, C classes.
"""
from __future__ import annotations

import numpy as np

VOTES = ("majority", "soft", "weighted")


def majority(probs: np.ndarray) -> np.ndarray:
    """Each member votes its top-1 class; most votes wins. Tie-break: among the tied classes, the
    one with the highest summed probability over members; then the lowest class index."""
    m, n, c = probs.shape
    votes = np.zeros((n, c))
    np.add.at(votes, (np.arange(n)[None].repeat(m, 0), probs.argmax(-1)), 1)
    tied = votes == votes.max(-1, keepdims=True)
    return np.where(tied, probs.sum(0), -np.inf).argmax(-1)


def soft(probs: np.ndarray) -> np.ndarray:
    """Mean probability over members (returns that mean, (N, C))."""
    return probs.mean(0)


def weighted(probs: np.ndarray, weights) -> np.ndarray:
    """Probability averaged with member weights (e.g. each member's validation accuracy), (N, C)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (probs.shape[0],) or not np.all(w >= 0) or w.sum() <= 0:
        raise ValueError(f"weights must be {probs.shape[0]} non-negative values, got {weights}")
    return np.tensordot(w / w.sum(), probs, axes=1)


def combine(probs: np.ndarray, method: str, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,), confidence (N,)). Confidence: the winner's mean probability (soft/majority),
    or its weighted probability."""
    if method == "majority":
        labels = majority(probs)
        mean = probs.mean(0)
    elif method == "soft":
        mean = soft(probs)
        labels = mean.argmax(-1)
    elif method == "weighted":
        mean = weighted(probs, weights)
        labels = mean.argmax(-1)
    else:
        raise ValueError(f"unknown vote {method!r}; known: {', '.join(VOTES)}")
    return labels, mean[np.arange(len(labels)), labels]
