"""A run's default answer as one PyTorch callable on clips: what the bundle would answer, before
export. The members the answer combines are rebuilt from their checkpoints; members that share
an encoder (the usual case: the heads sit on one frozen encoder) run it once per batch."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from picojepa.core.roster import VOTE_MEMBERS
from picojepa.core.rundir import RunDir

from . import checkpoint
from .answer import answer_scores, voters
from .classify import member_from_state
from .heads import pool_tokens, time_steps, token_input


@dataclass
class _Head:
    member: str
    head: nn.Module
    pool: str


class AnswerModel:
    """Normalised clips (B, 3, T, S, S) -> the answer's probabilities (B, C) (`answer_scores`);
    `member_probs` gives the partial members' (who vote on which clips to label next) too."""

    def __init__(self, run_dir: Path, answer: str, weights: list[float]):
        self.answer, self.weights = answer, list(weights)
        self.groups: dict[str, tuple[nn.Module, list[_Head]]] = {}  # encoder hash -> (encoder, its heads)
        for m in dict.fromkeys((*voters(answer), *VOTE_MEMBERS)):
            state = checkpoint.load(RunDir(run_dir).member(m), kind="member")
            recipe, encoder, head = member_from_state(state)
            encoder, heads = self.groups.setdefault(state["encoder_sha"], (encoder, []))
            heads.append(_Head(m, head, token_input(recipe.classify.head, recipe.classify.pool)))

    @torch.no_grad()
    def member_probs(self, clips: np.ndarray) -> dict[str, np.ndarray]:
        """Each member's probabilities (B, C) on the clips."""
        x, out = torch.from_numpy(np.ascontiguousarray(clips, dtype=np.float32)), {}
        for encoder, heads in self.groups.values():
            tokens = encoder(x)
            for h in heads:
                out[h.member] = F.softmax(h.head(pool_tokens(tokens, h.pool, time_steps(encoder))), -1).numpy()
        return out

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        return answer_scores(self.answer, self.member_probs(clips), self.weights)
