"""Load a run's member checkpoints as PyTorch modules, checking that they can form one ensemble."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from picojepa.runtime.clips import ClipSpec
from picojepa.train import checkpoint
from picojepa.train.classify import member_from_state
from picojepa.train.heads import VideoClassifier, pool_tokens, token_input
from picojepa.train.roster import MEMBERS

from .errors import ExportError


@dataclass
class Member:
    name: str
    model: VideoClassifier
    classes: list[str]
    clip: ClipSpec
    encoder_sha: str
    val_accuracy: float | None
    recipe: dict


def load_member(path: Path, name: str) -> Member:
    state = checkpoint.load(path, kind="member")
    recipe, enc, head = member_from_state(state)
    pool = token_input(recipe.classify.head, recipe.classify.pool)
    return Member(name, VideoClassifier(enc, head, pool).eval(), list(state["classes"]), recipe.clip,
                  state["encoder_sha"], state["val_accuracy"], state["recipe"])


def load_members(run_dir: str | Path, names: list[str]) -> list[Member]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ExportError(f"{run_dir}: no such run directory")
    unknown = [n for n in names if n not in MEMBERS]
    if unknown:
        raise ExportError(f"unknown member {unknown[0]!r}; known: {', '.join(MEMBERS)}")
    if len(set(names)) != len(names) or not names:
        raise ExportError(f"members must be distinct and non-empty, got {names}")
    members = [load_member(run_dir / "members" / f"{n}.pt", n) for n in names]
    first = members[0]
    for m in members[1:]:
        if m.classes != first.classes:
            raise ExportError(f"member {m.name} has classes {m.classes}, member {first.name} "
                              f"{first.classes}: they cannot vote together")
        if m.clip != first.clip:
            raise ExportError(f"member {m.name} expects clip {m.clip}, member {first.name} "
                              f"{first.clip}: one input cannot serve both")
    return members


class FusedEnsemble(nn.Module):
    """One shared encoder, every member's head: (B,3,T,H,W) -> logits and probs (B, M, C)."""

    def __init__(self, members: list[Member]):
        super().__init__()
        self.encoder, self.pool = members[0].model.encoder, members[0].model.pool
        self.heads = nn.ModuleList(m.model.head for m in members)

    def forward(self, x: torch.Tensor):
        pooled = pool_tokens(self.encoder(x), self.pool)
        logits = torch.stack([h(pooled) for h in self.heads], dim=1)
        return logits, torch.softmax(logits, dim=-1)


class SingleMember(nn.Module):
    """One member as its own graph, with the same output layout (B, 1, C)."""

    def __init__(self, member: Member):
        super().__init__()
        self.model = member.model

    def forward(self, x: torch.Tensor):
        logits = self.model(x).unsqueeze(1)
        return logits, torch.softmax(logits, dim=-1)
