"""Which answer a run's bundle gives by default, chosen on validation videos.

The candidates are what one box can answer with: a vote of the partial members (`majority`,
`soft`, `weighted`), the general member alone (`general`), and the `hybrid` (the soft vote of
the general member and the motion member). Each is scored on videos none of its members trained
on: the votes on the partial members' validation videos (the members train on disjoint quarters,
so each of those videos is unseen by all four), the general member on its own validation videos,
the hybrid on the videos both the general and the motion member kept for validation. The stacked
vote is no candidate: its meta-model was fitted on the only videos none of the partial members
saw, so no video is left to score it on. The general member, the one model trained on every
labelled video, is the answer unless another validated better by more than MARGIN_SE standard
errors of the difference: validation sets of a few dozen videos tell answers apart only by wide
margins, and on smaller differences picking the best-scoring one chose worse answers than the
general member on held-out videos (docs/results.md). Without a general score: the best, ties to
the first candidate in `CANDIDATES` order."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from picojepa.core import vote
from picojepa.core.roster import ANSWERS, GENERAL, HYBRID, MOTION, VOTE_MEMBERS

RULES = ("majority", "soft", "weighted")
CANDIDATES = (GENERAL, "hybrid", *RULES)
FALLBACK = "majority"  # the paper's answer, where no candidate has a validation video
MARGIN_SE = 2.0  # how far (in standard errors) another answer must validate above the general member


@dataclass(frozen=True)
class AnswerChoice:
    """Each candidate's validation accuracy (percent) and on how many videos; the one chosen."""

    accuracy: dict[str, float]
    videos: dict[str, int]
    chosen: str

    def to_json(self) -> dict:
        return {"accuracy": dict(self.accuracy), "videos": dict(self.videos), "chosen": self.chosen}

    @classmethod
    def from_json(cls, d: dict) -> "AnswerChoice":
        return cls({k: float(v) for k, v in d["accuracy"].items()}, {k: int(v) for k, v in d["videos"].items()},
                   str(d["chosen"]))


def column(answer: str) -> str:
    """The report column (`report.COLUMNS`) that holds an answer's held-out predictions."""
    return {GENERAL: GENERAL, "hybrid": "vote_hybrid"}.get(answer, f"vote_{answer}")


def voters(answer: str) -> tuple[str, ...]:
    """The members whose probabilities an answer combines."""
    return ANSWERS.get(answer, VOTE_MEMBERS)


def _voting(answer: str, probs: dict[str, np.ndarray], weights: list[float]) -> tuple:
    """`vote.combine`'s arguments for an answer: the general member and the hybrid are a soft
    vote of their members, as the runtime's; `weights`: the partial members' weighted-vote weights."""
    stacked = np.stack([probs[m] for m in voters(answer)])
    return (stacked, "soft", None) if answer in ANSWERS else (stacked, answer, weights)


def answer_vote(answer: str, probs: dict[str, np.ndarray], weights: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,), confidence (N,)) of an answer from its members' probabilities {member: (N, C)}."""
    return vote.combine(*_voting(answer, probs, weights))


def answer_scores(answer: str, probs: dict[str, np.ndarray], weights: list[float]) -> np.ndarray:
    """(N, C): the probabilities an answer's confidence is read from (`vote.scores`)."""
    return vote.scores(*_voting(answer, probs, weights))


def _se(acc: float, n: int) -> float:
    """Standard error (percent) of an accuracy on n videos, the share pulled off 0 and 1."""
    p = (acc / 100 * n + 1) / (n + 2)
    return 100 * math.sqrt(p * (1 - p) / n)


def choose(scores: dict[str, tuple[float, int]]) -> AnswerChoice:
    """{candidate: (accuracy %, videos)} -> the choice among the candidates scored on at least one
    video: the general member unless another beats it by more than MARGIN_SE standard errors
    (then the best of those), else the best (ties: `CANDIDATES` order); FALLBACK where none was."""
    scored = {c: scores[c] for c in CANDIDATES if c in scores and scores[c][1] > 0}

    def best(names):
        return max(names, key=lambda c: (scored[c][0], -CANDIDATES.index(c)))

    if GENERAL in scored:
        g, n = scored[GENERAL]
        clear = [c for c, (a, m) in scored.items()
                 if a - g > MARGIN_SE * math.hypot(_se(a, m), _se(g, n))]
        chosen = best(clear) if clear else GENERAL
    else:
        chosen = best(scored) if scored else FALLBACK
    return AnswerChoice({c: a for c, (a, _) in scored.items()}, {c: n for c, (_, n) in scored.items()}, chosen)


def _accuracy(pred: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    return (float((pred == y).mean() * 100) if len(y) else 0.0), int(len(y))


# probs_on(members, paths) -> ({member: probabilities (N, C)}, labels (N,)) on those videos, in one order
ProbsOn = Callable[[tuple[str, ...], list[str]], tuple[dict[str, np.ndarray], np.ndarray]]


def score_candidates(probs_on: ProbsOn, val_paths: dict[str, list[str]], weights: list[float]) -> AnswerChoice:
    """Every candidate scored on the validation videos none of its members trained on.
    `val_paths`: each member's validation videos (its checkpoint's); `weights`: the partial
    members' weights in the weighted vote."""
    scores = {}
    unseen = sorted({p for m in VOTE_MEMBERS for p in val_paths.get(m, [])})
    if unseen:
        probs, y = probs_on(VOTE_MEMBERS, unseen)
        stacked = np.stack([probs[m] for m in VOTE_MEMBERS])
        scores.update({r: _accuracy(vote.combine(stacked, r, weights)[0], y) for r in RULES})
    general = sorted(val_paths.get(GENERAL, []))
    if general:
        probs, y = probs_on((GENERAL,), general)
        scores[GENERAL] = _accuracy(probs[GENERAL].argmax(-1), y)
    both = sorted(set(general) & set(val_paths.get(MOTION, [])))
    if both:
        probs, y = probs_on(HYBRID, both)
        scores["hybrid"] = _accuracy(vote.combine(np.stack([probs[m] for m in HYBRID]), "soft")[0], y)
    return choose(scores)
