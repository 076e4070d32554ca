"""Which unlabelled clips to label next, and the measurement of that claim.

The ranking: first the clips the partial members disagree on most (the entropy of their top-1
votes), then the ones the answer is least sure of (one minus its top probability); the two are
added, each in 0..1. The measurement (`study`): on labelled videos with cached features, start
from a small labelled pool and add `k` videos per step, chosen by the ranking or at random (or by
the answer's low confidence alone), with linear heads trained again at each step; the general
head's mean per-class accuracy on the held-out videos after each step, over seeds.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from picojepa.core.roster import GENERAL, PARTS

from .config import ClassifyConfig
from .evaluate import mean_of, per_class_accuracy
from .features import Features
from .layout import member_csv, read_items, stratified_parts
from .probe import predict, train_head

STRATEGIES = ("random", "least_confident", "ranked")


def vote_entropy(probs: np.ndarray) -> np.ndarray:
    """(M, N, C) members' probabilities -> (N,): the entropy of their top-1 votes, over its
    largest possible value (0: all agree, 1: as split as M members over C classes can be)."""
    m, n, c = probs.shape
    votes = np.zeros((n, c))
    np.add.at(votes, (np.repeat(np.arange(n)[None], m, 0), probs.argmax(-1)), 1)
    share = votes / m
    ent = -(share * np.log(np.where(share > 0, share, 1.0))).sum(-1)
    most = np.log(min(m, c))
    return ent / most if most > 0 else np.zeros(n)


def priority(members: np.ndarray, answer: np.ndarray) -> np.ndarray:
    """(N,): how much labelling each clip should teach: the members' disagreement (`vote_entropy`
    of `members` (M, N, C)) plus the answer's doubt (1 - the top of `answer` (N, C))."""
    return vote_entropy(members) + (1.0 - answer.max(-1))


def rank(members: np.ndarray, answer: np.ndarray) -> np.ndarray:
    """Clip positions, the one to label first first (ties: the earlier clip)."""
    return np.argsort(-priority(members, answer), kind="stable")


def unlabelled_videos(data_root: Path) -> list[Path]:
    """The data root's unlabelled videos: those its pre-training list (train.csv) holds and the
    labelled list (class.csv) does not, each once (a long recording is listed once per piece)."""
    labelled = {p.resolve() for p, _ in read_items(member_csv(data_root, GENERAL), None)}
    seen, out = set(), []
    for p, _ in read_items(Path(data_root) / "train" / "train.csv"):
        if p.resolve() not in labelled and p not in seen:
            seen.add(p)
            out.append(p)
    return out


@dataclass(frozen=True)
class Study:
    """The labelling simulation: `start` labelled videos per class to begin with, `k` more per
    step, `steps` steps, on each seed of `seeds`."""

    start: int = 2
    k: int = 8
    steps: int = 6
    seeds: tuple[int, ...] = (0, 1, 2)


def study(pool: Features, test: Features, classes: int, cfg: ClassifyConfig, plan: Study) -> dict[str, np.ndarray]:
    """{strategy: accuracy (seeds, steps + 1)}, in percent: the general head's mean per-class
    accuracy on `test` after each step of labelling `pool` by that strategy."""
    cfg = dataclasses.replace(cfg, val_fraction=0.0)  # every labelled video trains
    return {s: np.array([_labelling(pool, test, classes, cfg, plan, s, seed) for seed in plan.seeds])
            for s in STRATEGIES}


def _labelling(pool: Features, test: Features, classes: int, cfg: ClassifyConfig, plan: Study, strategy: str,
               seed: int) -> list[float]:
    """One simulated labelling: accuracy after each step."""
    rng = np.random.default_rng(seed)
    y = pool.labels.numpy()
    labelled = [int(i) for c in range(classes) for i in rng.permutation(np.flatnonzero(y == c))[:plan.start]]
    accs = []
    for step in range(plan.steps + 1):
        general, _ = train_head(_take(pool, labelled), classes, cfg, seed)
        accs.append(mean_of(per_class_accuracy(test.labels.numpy(), predict(general, test.feats).argmax(-1), classes)))
        rest = np.setdiff1d(np.arange(len(y)), labelled)
        if step == plan.steps or not len(rest):
            break
        labelled += rest[_order(pool, rest, labelled, general, strategy, cfg, seed, rng)[:plan.k]].tolist()
    return accs


def _order(pool: Features, rest: np.ndarray, labelled: list[int], general, strategy: str, cfg: ClassifyConfig,
           seed: int, rng: np.random.Generator) -> np.ndarray:
    """The positions in `rest` in the order a strategy would label them."""
    if strategy == "random":
        return rng.permutation(len(rest))
    feats = _take(pool, rest.tolist()).feats
    answer = predict(general, feats)
    if strategy == "least_confident":
        return np.argsort(answer.max(-1), kind="stable")
    y = pool.labels.numpy()[labelled]
    # the partial members' quarters (a head needs two videos at least: one has no spread to standardise by)
    parts = [p for p in stratified_parts(y.tolist(), PARTS, seed) if len(p) > 1]
    heads = [train_head(_take(pool, [labelled[i] for i in p]), answer.shape[-1], cfg, seed)[0] for p in parts]
    members = np.stack([predict(h, feats) for h in heads]) if heads else answer[None]  # none: the confidence alone
    return rank(members, answer)


def _take(f: Features, idx: list[int]) -> Features:
    return Features(f.feats[idx], f.labels[idx], [f.paths[i] for i in idx], [])

