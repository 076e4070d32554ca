"""Load a run's member checkpoints as PyTorch modules, checking that they can form one ensemble."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from picojepa.core.bundle import MEMBER_NAME
from picojepa.core.clips import ClipSpec
from picojepa.core.console import one_line
from picojepa.core.errors import UsageError
from picojepa.core.roster import MEMBERS, MOTION, VOTE_MEMBERS
from picojepa.core.rundir import EnsembleDir, RunDir, repeat_dirs
from picojepa.train import checkpoint
from picojepa.train.classify import member_from_state
from picojepa.train.config import ConfigError
from picojepa.train.heads import VideoClassifier, pool_tokens, time_steps, token_input

from .errors import ExportError

KNOWN = (*MEMBERS, MOTION)  # what --members may name in a run


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
    try:
        recipe, enc, head = member_from_state(state)
    except (ConfigError, KeyError, TypeError, ValueError, RuntimeError) as exc:  # a damaged or foreign checkpoint
        raise ExportError(f"{path}: not a member checkpoint this version can rebuild "
                          f"({one_line(exc, 160)})") from None
    pool = token_input(recipe.classify.head, recipe.classify.pool)
    return Member(name, VideoClassifier(enc, head, pool).eval(), list(state["classes"]), recipe.clip,
                  state["encoder_sha"], state["val_accuracy"], state["recipe"])


@dataclass(frozen=True)
class MemberRef:
    """Where a bundle member comes from: a run directory's member checkpoint, and its bundle name."""

    run: Path
    member: str
    name: str


@dataclass
class Selection:
    """What one export bundles: the members, which of them vote, where the stacking meta-model
    (if any) and the held-out videos to verify on come from."""

    refs: list[MemberRef]
    vote_members: list[str]
    stacker: Path | None
    held_out_run: Path
    choice: dict | None = None  # the run's validated answers (RunDir.answer_choice), for a run's own members


def _ref(item: str) -> MemberRef:
    """'RUN:MEMBER[=NAME]' -> MemberRef (default name '<run folder>-<member>')."""
    spec, eq, name = item.partition("=")
    if eq and not name.strip():
        raise UsageError(f"--members {item!r}: '=' names the member, but no name follows it")
    run, sep, member = spec.rpartition(":")
    if not sep or not run or member not in KNOWN:
        raise UsageError(f"--members {item!r}: expected RUN_DIR:MEMBER[=NAME] with MEMBER one of "
                         f"{', '.join(KNOWN)}")
    return MemberRef(Path(run), member, name or f"{Path(run).name}-{member}")


def select(run_dir: Path | None, members: str | None) -> Selection:
    """The export's members from the command line: a run's own members (`--members general,1`),
    a heterogeneous ensemble's directory (its ensemble.json), or members of several runs
    (`--members runs/a:general,runs/b:1=deep`). Every member votes in the last two. A run's
    own bundle holds the motion member too where the hybrid validated best (its default answer)."""
    items = [m.strip() for m in (members or "").split(",") if m.strip()]
    if any(":" in m for m in items):
        if run_dir is not None:
            raise UsageError("give either RUN_DIR or --members RUN:MEMBER,..., not both")
        refs = [_ref(m) for m in items]
        return Selection(refs, [r.name for r in refs], None, refs[0].run)
    if run_dir is None:
        raise UsageError("no members: give RUN_DIR, or --members RUN_DIR:MEMBER,... from several runs")
    run_dir = Path(run_dir)
    ensemble = EnsembleDir(run_dir)
    if ensemble.is_ensemble():
        if items:
            raise ExportError(f"{run_dir}: a heterogeneous ensemble exports all its members; "
                              "compose others with --members RUN:MEMBER=NAME,...")
        refs = [MemberRef(m["run"], m["head"], m["name"]) for m in ensemble.read()[1]]
        return Selection(refs, [r.name for r in refs], ensemble.stacker, refs[0].run)
    if not run_dir.is_dir():
        raise ExportError(f"{run_dir}: no such run directory")
    repeats = repeat_dirs(run_dir)
    if repeats and not RunDir(run_dir).members.is_dir():
        raise ExportError(f"{run_dir}: a multi-seed or cross-validated run; export one of its runs, "
                          f"e.g. {repeats[0]}")
    choice = RunDir(run_dir).answer_choice()
    names = items or [*MEMBERS, *([MOTION] if choice and choice["chosen"] == "hybrid" else [])]
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        raise UsageError(f"--members: unknown member {unknown[0]!r}; known: {', '.join(KNOWN)}")
    refs = [MemberRef(run_dir, n, n) for n in names]
    votes = [n for n in names if n in VOTE_MEMBERS] or names
    return Selection(refs, votes, RunDir(run_dir).stacker, run_dir, choice)


def load_members(refs: list[MemberRef]) -> list[Member]:
    """Load the members; one ExportError line where they cannot form one ensemble: duplicate or
    unsafe names, different class lists, or different clip specs (one decoded clip feeds every
    member, so they must agree on frames, size, step, normalisation and placement)."""
    names = [r.name for r in refs]
    if not names or len(set(names)) != len(names):
        raise ExportError(f"members must be distinct and non-empty, got {names} (rename with =NAME)")
    bad = [n for n in names if not MEMBER_NAME.match(n)]
    if bad:
        raise ExportError(f"member name {bad[0]!r}: use letters, digits, '-' or '_' (rename with =NAME)")
    for r in refs:
        if not RunDir(r.run).member(r.member).is_file():
            raise ExportError(f"{r.run}: no member {r.member!r} (members/{r.member}.pt missing)")
    members = [load_member(RunDir(r.run).member(r.member), r.name) for r in refs]
    first = members[0]
    for m in members[1:]:
        if m.classes != first.classes:
            raise ExportError(f"member {m.name} has classes {m.classes}, member {first.name} "
                              f"{first.classes}: they cannot vote together")
        if m.clip != first.clip:
            raise ExportError(f"member {m.name} expects clip {m.clip}, member {first.name} "
                              f"{first.clip}: one decoded clip cannot serve both")
    return members


class FusedEnsemble(nn.Module):
    """One shared encoder, every member's head: (B,3,T,H,W) -> logits and probs (B, M, C)."""

    def __init__(self, members: list[Member]):
        super().__init__()
        self.encoder, self.pool = members[0].model.encoder, members[0].model.pool
        self.heads = nn.ModuleList(m.model.head for m in members)

    def forward(self, x: torch.Tensor):
        pooled = pool_tokens(self.encoder(x), self.pool, time_steps(self.encoder))
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
