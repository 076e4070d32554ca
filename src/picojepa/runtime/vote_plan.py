"""Who votes and how, read once from the bundle: `resolve_vote` (which vote a request comes to,
and whether this bundle can give it) and `VotePlan` (the voters, their weights, the stacker)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from picojepa.core import vote as votes
from picojepa.core.bundle import Bundle, answers
from picojepa.core.errors import BundleError
from picojepa.core.roster import ANSWERS


def resolve_vote(bundle: Bundle, method: str | None, alone: bool = True) -> str:
    """The vote `method` resolves to (None: the bundle's default answer, or with `alone` False,
    where the members answer from nodes of their own, its default vote); BundleError where this
    bundle cannot do it (the one place that decides whether a bundle has a stacker)."""
    method = method or (bundle.default_answer if alone else bundle.default_vote)
    if method not in answers(bundle.members):
        known = (*votes.VOTES, *ANSWERS)
        raise BundleError(f"{bundle.root}: holds no {', '.join(ANSWERS[method])} member, so `--vote {method}` is "
                          "unavailable" if method in ANSWERS else f"unknown vote {method!r}; known: {', '.join(known)}")
    if method == "stacked" and not bundle.stacking:
        raise BundleError(f"{bundle.root}: carries no stacking meta-model, so "
                          "`--vote stacked` is unavailable (export it from a run whose "
                          "classify stage fitted one)")
    return method


@dataclass(frozen=True)
class VotePlan:
    """Which members vote, with which weights and stacker: read once from the bundle's manifest."""

    voters: tuple[str, ...]
    weights: dict[str, float]
    stacker: dict | None

    @classmethod
    def of(cls, bundle: Bundle) -> "VotePlan":
        voters = tuple(bundle.vote_members)
        return cls(voters, bundle.vote_weights, bundle.stacking)

    def combine(self, probs: np.ndarray, names: list[str], method: str):
        """The vote over probabilities (M, N, C) of the members `names` (in that order); voting
        members absent from `names` (over the network: those that did not answer) are left out."""
        return votes.combine(*self._voting(probs, names, method))

    def scores(self, probs: np.ndarray, names: list[str], method: str) -> np.ndarray:
        """(N, C): the probabilities the vote's confidence is read from (`vote.scores`)."""
        return votes.scores(*self._voting(probs, names, method))

    def _voting(self, probs: np.ndarray, names: list[str], method: str) -> tuple:
        """(probabilities of the members that answer, vote, weights, stacker) for `vote.combine`."""
        if method in ANSWERS:  # not a vote of the voting members: the general member alone, or the hybrid
            need = ANSWERS[method]
            if not set(need) <= set(names):
                raise BundleError(f"the {method} answer needs {', '.join(need)}; answered: {', '.join(names)}")
            return probs[[names.index(m) for m in need]], "soft", None, None
        idx = [names.index(m) for m in self.voters if m in names]
        return probs[idx], method, [self.weights[names[i]] for i in idx], self.stacker
