"""Stage 3: the paper's evaluation on the held-out videos (Tables 2 and 3, votes, baseline)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from picojepa.core import vote
from picojepa.core.errors import DataLayoutError
from picojepa.core.roster import GENERAL, MEMBERS, MOTION, VOTE_MEMBERS, report_key
from picojepa.core.rundir import RunDir

from . import checkpoint
from .answer import AnswerChoice, answer_vote, score_candidates
from .classify import features_for, member_from_state
from .config import Recipe
from .features import Features, FeatureSets, subset
from .files import write_text
from .finetune import member_features
from .guards import INIT_PROBE, SHUFFLED
from .heads import head_from_state
from .jepa import effective_rank
from .motion_baseline import BASELINE, motion_baseline
from .pretrain import load_encoder
from .probe import predict, train_head
from .report import RunReport
from .votes import load_stacker, vote_labels


def per_class_accuracy(y: np.ndarray, pred: np.ndarray, classes: int) -> list[float | None]:
    return [float((pred[y == c] == c).mean() * 100) if (y == c).any() else None
            for c in range(classes)]


def certainty(y: np.ndarray, probs: np.ndarray, classes: int) -> list[float | None]:
    """Mean top-1 probability over the videos of each true class, in percent (Table 3)."""
    top = probs.max(-1)
    return [float(top[y == c].mean() * 100) if (y == c).any() else None for c in range(classes)]


def confusion(y: np.ndarray, pred: np.ndarray, classes: int) -> list[list[int]]:
    m = np.zeros((classes, classes), dtype=int)
    np.add.at(m, (y, pred), 1)
    return m.tolist()


def mean_of(values: list[float | None]) -> float:
    return float(np.mean([v for v in values if v is not None]))


def _own_features(state: dict, infer, recipe: Recipe) -> torch.Tensor:
    _, enc, _ = member_from_state(state)
    items = [(Path(p), int(y)) for p, y in zip(infer.paths, infer.labels.tolist())]
    return member_features(enc.eval(), items, recipe).feats


def evaluate(recipe: Recipe, data_root: Path, run_dir: Path, show_progress: bool = True,
             sets: FeatureSets | None = None) -> RunReport:
    """Every member, vote, the random-init probe and the frame-differencing baseline on the
    held-out videos -> the run's report (without what pre-training hands on: `pipeline.write_report`).
    `sets`: the run's features (`features_for`) when the caller has them loaded already."""
    run_dir = Path(run_dir)
    sets = sets or features_for(run_dir, recipe, data_root, show_progress)
    classes, c = sets.classes, len(sets.classes)
    if not sets.infer.paths:
        raise DataLayoutError(f"{data_root}/infer: none of the held-out videos could be decoded "
                              f"({len(sets.infer.errors)} failed, e.g. {sets.infer.errors[:1]})")
    y = sets.infer.labels.numpy()
    probs, val_acc = member_probs(recipe, run_dir, sets)
    rstate = checkpoint.load(RunDir(run_dir).random_probe, kind="random_probe")
    ry = sets.random_infer.labels.numpy()
    rprobs = predict(head_from_state(rstate["head"], recipe.classify.head), sets.random_infer.feats)
    weights = [val_acc[m] if val_acc[m] is not None else 1.0 for m in VOTE_MEMBERS]
    preds, stacker_note = _votes(probs, weights, RunDir(run_dir))
    hybrid, motion = _hybrid(run_dir, sets, probs[GENERAL])
    preds.update(hybrid)
    answer = validate_answers(recipe, run_dir, sets, weights)
    _, answer_conf = answer_vote(answer.chosen, probs | motion, weights)
    table = {k: per_class_accuracy(y, p, c) for k, p in preds.items()}
    table["random_init_probe"] = per_class_accuracy(ry, rprobs.argmax(-1), c)
    baseline, _ = motion_baseline(sets.train.paths, sets.train.labels.numpy(), sets.infer.paths,
                                recipe.seed)
    table[BASELINE] = per_class_accuracy(y, baseline, c)  # an undecodable held-out video counts as wrong
    table[SHUFFLED] = per_class_accuracy(y, shuffled_control(recipe, sets), c)
    if sets.start_train is not None:  # the encoder pre-training started from, frozen
        table[INIT_PROBE] = per_class_accuracy(sets.start_infer.labels.numpy(), start_probe(recipe, sets), c)
    return RunReport(
        recipe=recipe.name, classes=classes, held_out_videos=int(len(y)),
        feature_dim=int(sets.train.feats.shape[-1]), pool=recipe.classify.pool, head=recipe.classify.head,
        accuracy={k: mean_of(v) for k, v in table.items()},
        per_class_accuracy=table,
        certainty={report_key(m): certainty(y, p, c) for m, p in probs.items()},
        confusion={**{k: confusion(y, p, c) for k, p in preds.items()},
                   "random_init_probe": confusion(ry, rprobs.argmax(-1), c)},
        vote_tie_break="highest summed probability among the tied classes, then lowest index",
        stacker=stacker_note,
        feature_effective_rank={k: effective_rank(getattr(sets, s).feats.reshape(-1, getattr(sets, s).feats.shape[-1]))
                                for k, s in (("pretrained", "train"), ("random_init", "random_train"))},
        vote_weights=dict(zip([report_key(m) for m in VOTE_MEMBERS], weights)),
        validation_accuracy=dict(val_acc),
        skipped_videos=sorted(set(sets.train.errors + sets.infer.errors)),
        predictions={"paths": sets.infer.paths, "labels": y.tolist(),
                     **{k: p.tolist() for k, p in preds.items()}, "answer_confidence": answer_conf.tolist()},
        answer=answer.to_json(),
    )


def member_probs(recipe: Recipe, run_dir: Path, sets: FeatureSets, members=MEMBERS,
                  videos: Features | None = None) -> tuple[dict, dict]:
    """Each member's probabilities on `videos` (default: the held-out set), from the shared
    features or, where fine-tuning gave it one, from its own encoder; and its validation accuracy."""
    probs, val_acc = {}, {}
    videos = sets.infer if videos is None else videos
    shared = checkpoint.state_hash(load_encoder(run_dir)[0].state_dict()) if recipe.classify.finetune else None
    for m in members:
        state = checkpoint.load(RunDir(run_dir).member(m), kind="member")
        feats = videos.feats
        if shared is not None and state["encoder_sha"] != shared:  # fine-tuned: its own encoder
            feats = _own_features(state, videos, recipe)
        probs[m] = predict(head_from_state(state["head"], recipe.classify.head), feats)
        val_acc[m] = state["val_accuracy"]
    return probs, val_acc


def start_probe(recipe: Recipe, sets: FeatureSets) -> np.ndarray:
    """The held-out predictions of a head trained, as the general member's is, on the features of
    the encoder the run's pre-training started from (the foundation, frozen): what pre-training
    on the user's clips added to it."""
    head, _ = train_head(sets.start_train, len(sets.classes), recipe.classify, recipe.seed)
    return predict(head, sets.start_infer.feats).argmax(-1)


def shuffled_control(recipe: Recipe, sets: FeatureSets) -> np.ndarray:
    """The held-out labels a head predicts when trained on the same features with the labels
    shuffled: at chance unless something other than the class tells the videos apart."""
    train = sets.train
    perm = torch.from_numpy(np.random.default_rng(recipe.seed).permutation(len(train.labels)))
    head, _ = train_head(Features(train.feats, train.labels[perm], train.paths, []), len(sets.classes),
                         recipe.classify, recipe.seed)
    return predict(head, sets.infer.feats).argmax(-1)


def _motion_head(run_dir: Path):
    """The motion member's head, or None for a run trained before there was one."""
    path = RunDir(run_dir).member(MOTION)
    return member_from_state(checkpoint.load(path, kind="member"))[2] if path.exists() else None


def validate_answers(recipe: Recipe, run_dir: Path, sets: FeatureSets, weights: list[float]) -> AnswerChoice:
    """Each answer the bundle could give by default, scored on validation videos none of its
    members trained on (`answer.score_candidates`), the choice written to RUN/answer.json."""
    run, motion = RunDir(run_dir), _motion_head(run_dir)
    val_paths = {m: checkpoint.load(run.member(m), kind="member")["val_paths"] for m in MEMBERS}
    if motion is not None:
        val_paths[MOTION] = checkpoint.load(run.member(MOTION), kind="member")["val_paths"]

    def probs_on(members: tuple[str, ...], paths: list[str]):
        if MOTION in members:  # only the videos both feature sets hold
            paths = [p for p in paths if p in set(sets.motion_train.paths)]
        videos = subset(sets.train, paths)
        out, _ = member_probs(recipe, run_dir, sets, [m for m in members if m != MOTION], videos)
        if MOTION in members:
            out[MOTION] = predict(motion, subset(sets.motion_train, videos.paths).feats)
        return out, videos.labels.numpy()

    choice = score_candidates(probs_on, val_paths, weights)
    write_text(run.answer, json.dumps(choice.to_json(), indent=1))
    return choice


def _hybrid(run_dir: Path, sets: FeatureSets, general: np.ndarray) -> tuple[dict, dict]:
    """The motion member alone and its soft vote with the general model, on the held-out videos'
    clips, and the motion member's probabilities ({}, {} for a run trained before there was one)."""
    head = _motion_head(run_dir)
    if head is None:
        return {}, {}
    p = predict(head, subset(sets.motion_infer, sets.infer.paths).feats)  # the general model's videos
    hybrid = vote.combine(np.stack([general, p]), "soft")[0]
    return {report_key(MOTION): p.argmax(-1), "vote_hybrid": hybrid}, {MOTION: p}


def _votes(probs: dict, weights: list[float], run: RunDir) -> tuple[dict, str]:
    """Each member's predicted labels under its report key, and every vote of the partial
    members -> (predictions, what the stacked vote is or why there is none)."""
    stacker, note = load_stacker(run.stacker)
    preds = {report_key(m): p.argmax(-1) for m, p in probs.items()}
    preds.update(vote_labels(np.stack([probs[m] for m in VOTE_MEMBERS]), weights, stacker, "vote_"))
    return preds, note


def features_for_plot(sets: FeatureSets) -> tuple[np.ndarray, np.ndarray]:
    """One clip's pre-trained features of every training and held-out video, and the labels."""
    f = torch.cat([sets.train.feats[:, 0], sets.infer.feats[:, 0]])
    f = (f.mean(1) if f.dim() == 3 else f).numpy()  # the attentive head's tokens: their mean
    y = torch.cat([sets.train.labels, sets.infer.labels]).numpy()
    return f, y
