"""Stage 2: the general and the four partial classifiers on the frozen pre-trained encoder, plus the
random-init baseline probe. Features are computed once per video and shared by every head."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from picojepa.core.errors import DataLayoutError
from picojepa.core.roster import GENERAL, MEMBERS, MOTION, VOTE_MEMBERS
from picojepa.core.rundir import RunDir, RunDirError

from . import checkpoint
from .config import Recipe
from .features import Features, FeatureSets, extract, subset
from .files import write_text
from .finetune import finetune, member_features, validation_accuracy
from .foundation import start_encoder
from .heads import head_from_state, token_input
from .layout import member_csv, read_classes, read_items
from .motion import MotionEncoder, member_recipe
from .pretrain import load_encoder
from .probe import predict, train_head
from .recipe_file import recipe_from_dict
from .vit import VideoViT
from .votes import fit_stacker

log = logging.getLogger(__name__)
MOTION_FEATURES = 1  # version of the cached motion numbers (train/motion.py); a cache without them is redone


@dataclass
class ClassifyResult:
    members: dict[str, Path]
    val_accuracy: dict[str, float | None]
    skipped: list[str]
    encoder_passes: int
    encoder_passes_uncached: int
    sets: FeatureSets | None = None  # the features it trained on (`features_for`), handed on to the evaluation


def member_from_state(state: dict) -> tuple[Recipe, torch.nn.Module, torch.nn.Module]:
    """A member checkpoint's recipe, encoder (a VideoViT, or the motion member's frame
    differencing) and head, rebuilt (evaluation and export alike)."""
    recipe = recipe_from_dict(state["recipe"])
    encoder = MotionEncoder(recipe.clip) if recipe.model.kind == "motion" else VideoViT(recipe.model, recipe.clip)
    encoder.load_state_dict(state["encoder"])
    return recipe, encoder.eval(), head_from_state(state["head"], recipe.classify.head)


def cached_held_out(run_dir: Path) -> tuple[list[str], list[int]]:
    """A run's held-out videos and their labels as its feature cache lists them ([], [] without
    one): for runs classified before RUN/held_out.json was kept (`RunDir.held_out_videos`)."""
    path = RunDir(run_dir).features
    if not path.exists():
        return [], []
    infer = FeatureSets.from_cache(checkpoint.load(path, kind="features")["sets"], []).infer
    return list(infer.paths), infer.labels.tolist()


def features_for(run_dir: Path, recipe: Recipe, data_root: Path, show_progress: bool = True,
                 encoder: VideoViT | None = None) -> dict:
    """Pooled features of every labelled and held-out video, for the pre-trained and for a
    randomly initialised encoder; cached in run_dir/features.pt keyed by encoder hash and files.
    `encoder`: the run's pre-trained encoder when the caller has it loaded already."""
    data_root = Path(data_root)
    classes = read_classes(data_root)
    train_items = read_items(member_csv(data_root, GENERAL), classes)
    infer_items = read_items(data_root / "infer" / "class.csv", classes)
    if not train_items or not infer_items:
        raise DataLayoutError(f"{data_root}: class.csv of train/ and infer/ must list videos")
    if encoder is None:
        encoder, _, _ = load_encoder(run_dir)
    torch.manual_seed(recipe.seed + 1)
    random_enc = VideoViT(recipe.model, recipe.clip).eval()
    start_enc = start_encoder(recipe)
    key = {"encoder": checkpoint.state_hash(encoder.state_dict()),
           "random": checkpoint.state_hash(random_enc.state_dict()),
           "start": checkpoint.state_hash(start_enc.state_dict()) if start_enc is not None else None,
           "train": [str(p) for p, _ in train_items], "infer": [str(p) for p, _ in infer_items],
           "clips": recipe.classify.feature_clips, "pool": token_input(recipe.classify.head, recipe.classify.pool),
           "motion": MOTION_FEATURES, "clip": recipe.clip.to_dict()}
    cache = RunDir(run_dir).features
    if cache.exists():
        state = checkpoint.load(cache, kind="features")
        if state["key"] == key:
            sets = FeatureSets.from_cache(state["sets"], classes)
            _keep_held_out(run_dir, sets.infer)
            return sets
    nw, clips = recipe.pretrain.num_workers, recipe.classify.feature_clips
    pool = token_input(recipe.classify.head, recipe.classify.pool)
    sets = FeatureSets(
        classes,
        train=extract(encoder, train_items, clips, num_workers=nw, desc="features train", pool=pool,
                      show_progress=show_progress, spec=recipe.clip),
        infer=extract(encoder, infer_items, 1, num_workers=nw, desc="features held-out", pool=pool,
                      show_progress=show_progress, spec=recipe.clip),
        random_train=extract(random_enc, train_items, clips, num_workers=nw, desc="features train (random init)",
                             show_progress=show_progress, pool=pool),
        random_infer=extract(random_enc, infer_items, 1, num_workers=nw, desc="features held-out (random init)",
                             show_progress=show_progress, pool=pool),
        motion_train=extract(MotionEncoder(recipe.clip), train_items, clips, num_workers=nw,
                             desc="motion numbers train", show_progress=show_progress),
        motion_infer=extract(MotionEncoder(recipe.clip), infer_items, 1, num_workers=nw,
                             desc="motion numbers held-out", show_progress=show_progress),
    )
    if start_enc is not None:
        sets.start_train = extract(start_enc, train_items, clips, num_workers=nw, pool=pool, spec=recipe.clip,
                                   desc=f"features train ({recipe.pretrain.init})", show_progress=show_progress)
        sets.start_infer = extract(start_enc, infer_items, 1, num_workers=nw, pool=pool, spec=recipe.clip,
                                   desc=f"features held-out ({recipe.pretrain.init})", show_progress=show_progress)
    checkpoint.save({"kind": "features", "key": key, "sets": sets.to_cache()}, cache)
    _keep_held_out(run_dir, sets.infer)
    return sets


def _keep_held_out(run_dir: Path, infer: Features) -> None:
    """RUN/held_out.json: the held-out videos the run is evaluated (and its export verified) on."""
    run = RunDir(run_dir)
    held = {"paths": list(infer.paths), "labels": infer.labels.tolist()}
    try:
        kept = run.held_out_videos()
    except RunDirError:  # unreadable: it is derived from the features, so written again
        kept = None
    if kept != (held["paths"], held["labels"]):
        write_text(run.held_out, json.dumps(held, indent=1))


def classify(recipe: Recipe, data_root: Path, run_dir: Path, show_progress: bool = True) -> ClassifyResult:
    run_dir, data_root = Path(run_dir), Path(data_root)
    encoder, _, _ = load_encoder(run_dir)
    sets = features_for(run_dir, recipe, data_root, show_progress, encoder)
    classes = sets.classes
    enc_state = encoder.state_dict()
    enc_sha = checkpoint.state_hash(enc_state)
    out, val = {}, {}
    cfg = recipe.classify
    passes_uncached = 0
    heads, unseen, encoders = {}, [], {}
    for m in MEMBERS:
        paths = [str(p) for p, _ in read_items(member_csv(data_root, m), classes)]
        feats = subset(sets.train, paths)
        if len(feats.labels) == 0:
            raise DataLayoutError(f"{member_csv(data_root, m)}: no readable video for member {m}")
        head, info = train_head(feats, len(classes), cfg, recipe.seed)
        m_state, m_sha = enc_state, enc_sha
        if cfg.finetune:
            encoders[m], head = _finetune(encoder, head, feats, info, recipe)
            m_state = encoders[m].state_dict()
            m_sha = checkpoint.state_hash(m_state)
        heads[m] = head
        if m != GENERAL:
            unseen += info["val_paths"]
        passes_uncached += len(paths) * cfg.epochs
        val[m] = info["val_accuracy"]
        out[m] = _save_member(run_dir, m, recipe, classes, m_state, head, info, m_sha)
    _fit_stacker(heads, subset(sets.train, unseen), len(classes), run_dir, encoders, recipe)
    rhead, rinfo = train_head(sets.random_train, len(classes), cfg, recipe.seed)
    checkpoint.save({"kind": "random_probe", "classes": classes, "head": rhead.state_dict(),
                     "val_accuracy": rinfo["val_accuracy"], "history": rinfo["history"]},
                    RunDir(run_dir).random_probe)
    mrecipe = member_recipe(recipe)  # the motion member: a linear head on its cached numbers
    head, info = train_head(sets.motion_train, len(classes), mrecipe.classify, recipe.seed)
    _save_member(run_dir, MOTION, mrecipe, classes, MotionEncoder(recipe.clip).state_dict(), head, info)
    val[MOTION] = info["val_accuracy"]
    n_train, n_infer = len(sets.train.paths), len(sets.infer.paths)
    passes = 2 * (n_train * cfg.feature_clips + n_infer)
    skipped = sorted(set(sets.train.errors + sets.infer.errors))
    return ClassifyResult(out, val, skipped, passes, passes_uncached * cfg.feature_clips, sets)


def _save_member(run_dir: Path, member: str, recipe: Recipe, classes: list[str], encoder: dict, head,
                 info: dict, encoder_sha: str | None = None) -> Path:
    """A member's self-contained checkpoint: its recipe, encoder, head and how it was trained."""
    return checkpoint.save({
        "kind": "member", "member": member, "recipe": recipe.to_dict(), "classes": classes,
        "encoder": encoder, "encoder_sha": encoder_sha or checkpoint.state_hash(encoder),
        "head": head.state_dict(), "val_accuracy": info["val_accuracy"], "train_videos": info["train_videos"],
        "val_videos": info["val_videos"], "val_paths": info["val_paths"], "history": info["history"]},
        RunDir(run_dir).member(member))


def _finetune(encoder: VideoViT, head, feats: Features, info: dict, recipe: Recipe):
    """Fine-tune a copy of the encoder with the head on the member's training videos (its
    validation videos left out); the validation accuracy is measured again through it."""
    label = dict(zip(feats.paths, feats.labels.tolist()))
    val = set(info["val_paths"])
    train_items = [(Path(p), label[p]) for p in feats.paths if p not in val]
    enc, head, history = finetune(encoder, head, train_items, recipe, recipe.seed)
    info["history"] = info["history"] + history
    info["val_accuracy"] = validation_accuracy(enc, head, [(Path(p), label[p]) for p in info["val_paths"]],
                                               recipe)
    return enc, head


def _fit_stacker(heads: dict, unseen: Features, classes: int, run_dir: Path, encoders: dict,
                 recipe: Recipe) -> None:
    """Fit the stacking meta-model on the partial members' validation videos (seen by none of
    them) into the run's stacker file (`votes.fit_stacker`). Fine-tuned members (in
    `encoders`) see those videos through their own encoders."""
    items = [(Path(p), int(y)) for p, y in zip(unseen.paths, unseen.labels.tolist())]

    def feats_of(m):
        if m not in encoders:
            return unseen.feats
        return member_features(encoders[m], items, recipe, recipe.classify.feature_clips).feats

    probs = np.stack([predict(heads[m], feats_of(m)) for m in VOTE_MEMBERS])
    fit_stacker(probs, unseen.labels.numpy(), classes, RunDir(run_dir).stacker,
                {m: checkpoint.state_hash(heads[m].state_dict()) for m in VOTE_MEMBERS})
