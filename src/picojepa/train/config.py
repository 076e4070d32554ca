"""Typed, frozen configuration for every training stage: one dataclass per stage and the
`Recipe` that holds them, each checking how its fields fit together (`__post_init__`).

Reading them from YAML recipe files is `recipe_file.py`'s.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from picojepa.core.clips import ClipSpec
from picojepa.core.errors import PicoJepaError

MAX_SEED = 2**31 - 1000  # numpy's and torch's seeds, with room for --seeds' offsets


class ConfigError(PicoJepaError, ValueError):
    """A recipe file is malformed; the message is `file: key: reason`."""


@dataclass(frozen=True)
class ModelConfig:
    """The video ViT encoder and the JEPA predictor (clip frames and size come from `clip`)."""

    patch_size: int = 16
    tubelet: int = 2
    embed_dim: int = 192
    depth: int = 8
    heads: int = 8
    mlp_ratio: float = 3.0
    pred_depth: int = 2
    pred_heads: int = 4
    pred_dim: int = 192
    # the predictor's positions: 'sincos' fixed 3D sine-cosine (V-JEPA's predictor), or 'learned'
    # (trained from a tiny random start, the encoder's kind; measured worse here, see README)
    pred_pos: Literal["sincos", "learned"] = "sincos"
    # what the tubelet embedding sees: the RGB clip, or the RGB clip and its signed frame-to-frame
    # differences as three more channels (a motion signal computed inside the graph, so the
    # runtime's input and preprocessing stay the same)
    input: Literal["rgb", "rgb+diff"] = "rgb"
    # 'vit', the encoder above; 'motion' only in the checkpoint of a run's motion member (its
    # "encoder" computes frame-differencing numbers, `motion.MotionEncoder`): no recipe trains one
    kind: Literal["vit", "motion"] = "vit"

    def __post_init__(self):
        for k, hi in (("patch_size", 512), ("tubelet", 512), ("embed_dim", 8192), ("depth", 128),
                      ("heads", 256), ("pred_depth", 128), ("pred_heads", 256), ("pred_dim", 8192)):
            if not 1 <= getattr(self, k) <= hi:
                raise ValueError(f"{k}: must be in [1, {hi}], got {getattr(self, k)}")
        if not 0 < self.mlp_ratio <= 64:
            raise ValueError(f"mlp_ratio: must be in (0, 64], got {self.mlp_ratio}")
        if self.embed_dim % self.heads:
            raise ValueError(f"heads: embed_dim {self.embed_dim} is not divisible by {self.heads}")
        if self.pred_dim % self.pred_heads:
            raise ValueError(f"pred_heads: pred_dim {self.pred_dim} not divisible by {self.pred_heads}")


def token_grid(model: ModelConfig, clip) -> tuple[int, int, int]:
    """The encoder's token grid (time steps, rows, columns) for clips of `clip`: the one place it
    is computed (the ViT, the predictor's positions, the masks and the pooling all read it)."""
    return clip.frames // model.tubelet, clip.size // model.patch_size, clip.size // model.patch_size


@dataclass(frozen=True)
class Schedule:
    """An optimisation schedule (AdamW, linear warm-up, cosine decay to `final_lr`), shared by
    pre-training and the classifiers; the defaults are the paper's pre-training."""

    epochs: int = 4
    batch_size: int = 10
    lr: float = 2e-4
    final_lr: float = 1e-6
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0

    def __post_init__(self):
        if not 1 <= self.epochs <= 100_000 or not 1 <= self.batch_size <= 65_536:
            raise ValueError("epochs and batch_size: must be >= 1 (and at most 100000 and 65536)")
        if self.lr <= 0 or self.final_lr < 0 or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise ValueError("lr must be > 0; final_lr, weight_decay, warmup_epochs >= 0")
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs: {self.warmup_epochs} exceeds epochs {self.epochs}")


@dataclass(frozen=True)
class PretrainConfig(Schedule):
    predictor_lr_mult: float = 2.0
    grad_clip: float = 1.0
    ema: float = 0.996
    # the target encoder: 'ema' follows the context encoder (I-JEPA, V-JEPA); 'frozen' keeps the
    # weights it starts from (random, or `init`'s), a fixed teacher as in SALT
    teacher: Literal["ema", "frozen"] = "ema"
    mask_ratio: float = 0.75
    mask: Literal["tube", "multiblock", "future"] = "tube"
    loss: Literal["mse", "l1"] = "mse"
    clips_per_video: int = 1
    num_workers: int = 0
    # MiB of decoded frames kept in memory across epochs (0: decode every window from the file);
    # used only with num_workers 0, see dataset.ClipDataset
    cache_mb: float = 0.0
    collapse_std: float = 0.01
    # anti-collapse terms (0: off), measured in docs/results.md:
    # C-JEPA's variance+covariance regularisation of the context tokens, and a VideoMAE-style
    # reconstruction of the masked tubelets' normalised pixels from the predictor's output
    vicreg: float = 0.0
    # apply the term only while the pre-training set lists fewer videos than this (0: always):
    # measured, it is what stops the collapse on a few hundred videos and costs accuracy on the
    # demo's 1,520 (README, "Learning on small data")
    vicreg_below_videos: int = 0
    pixel: float = 0.0
    # an auxiliary target that is itself motion (MotionMAE's): the predictor's output also
    # predicts the masked tubelets' frame differences (train/jepa.py), with this weight
    motion: float = 0.0
    # LeJEPA's SIGReg on the context tokens (train/jepa.py): pushes them towards an isotropic
    # Gaussian, another guard against collapse beside or instead of `vicreg`, with this weight
    sigreg: float = 0.0
    # augmentation that keeps motion (train/augment.py), training clips only: the probability of
    # mirroring a clip left-right, and the smallest area fraction of a random resized crop (1: off)
    flip: float = 0.0
    crop_scale: float = 1.0
    # > 0: pre-train on this many clips per epoch generated on the fly (train/generated.py), not on
    # the data root's videos: how the foundation encoder is made (configs/foundation.yaml)
    generated: int = 0
    # where pre-training starts: 'scratch' (random weights), 'foundation' (the encoder shipped in
    # the package, train/foundation.py) or the path of a pre-training checkpoint or weights file
    init: str = "scratch"

    def vicreg_for(self, videos: int) -> float:
        """The variance/covariance weight for a pre-training set of `videos` listings."""
        return self.vicreg if not self.vicreg_below_videos or videos < self.vicreg_below_videos else 0.0

    def __post_init__(self):
        super().__post_init__()
        if not 1 <= self.clips_per_video <= 1000:
            raise ValueError(f"clips_per_video: must be in [1, 1000], got {self.clips_per_video}")
        if self.predictor_lr_mult <= 0 or self.grad_clip <= 0 or not 0 <= self.collapse_std < 1:
            raise ValueError("predictor_lr_mult and grad_clip must be > 0, collapse_std in [0, 1)")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio: must be in (0, 1), got {self.mask_ratio}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema: must be in [0, 1), got {self.ema}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers: must be >= 0, got {self.num_workers}")
        if self.cache_mb < 0:
            raise ValueError(f"cache_mb: must be >= 0, got {self.cache_mb}")
        if not 0.0 <= self.flip <= 1.0 or not 0.0 < self.crop_scale <= 1.0:
            raise ValueError(f"flip: a probability in [0, 1], crop_scale: an area fraction in (0, 1]; got "
                             f"{self.flip} and {self.crop_scale}")
        if self.vicreg_below_videos < 0:
            raise ValueError(f"vicreg_below_videos: must be >= 0, got {self.vicreg_below_videos}")
        if self.generated < 0 or not self.init.strip():
            raise ValueError(f"generated: must be >= 0, init: 'scratch', 'foundation' or a path; got "
                             f"{self.generated} and {self.init!r}")
        if min(self.vicreg, self.pixel, self.motion, self.sigreg) < 0:
            raise ValueError(f"vicreg, pixel, motion and sigreg: must be >= 0, got {self.vicreg}, {self.pixel}, "
                             f"{self.motion}, {self.sigreg}")


@dataclass(frozen=True)
class ClassifyConfig(Schedule):
    batch_size: int = 16  # the paper's classifier schedule where it differs from pre-training's
    lr: float = 1e-4
    warmup_epochs: float = 2.0
    val_fraction: float = 0.2
    feature_clips: int = 1
    # fine-tune each member's encoder with its head after the frozen fit (members then export
    # as separate graphs); `pool` and `head` as for the frozen protocol
    finetune: bool = False
    finetune_epochs: int = 3
    finetune_lr: float = 1e-4
    # how the frozen tokens become one vector: 'mean' (the paper), 'meanstd' (mean and standard
    # deviation over tokens, twice the head's inputs), 'max', 'meandelta' (the mean and how
    # much each feature changes from one time step to the next), or 'changemap' ('meandelta' and a
    # map of where and when the tokens change); see heads.pool_tokens
    pool: Literal["mean", "meanstd", "max", "meandelta", "changemap"] = "mean"
    # the classifier on the frozen tokens: 'linear' on the pooled vector (the paper), or
    # 'attentive' (V-JEPA's attentive probe: a learned query cross-attending to every token;
    # `pool` is then not used)
    head: Literal["linear", "attentive"] = "linear"
    # how a linear head is fitted: 'sgd', AdamW over `epochs` with the schedule above, or
    # 'lbfgs', the convex problem a logistic regression is (cross-entropy plus `l2` times half
    # the weights' squared norm) solved to convergence on all the training clips at once: no
    # learning rate or epochs to tune, the same head every time (docs/results.md, "Fitting the
    # linear head")
    fit: Literal["sgd", "lbfgs"] = "sgd"
    l2: float = 1e-3

    def __post_init__(self):
        super().__post_init__()
        if self.fit == "lbfgs" and self.head != "linear":
            raise ValueError(f"fit: 'lbfgs' fits a linear head; head is {self.head!r} (use fit: sgd)")
        if not 0.0 <= self.l2 <= 1e3:
            raise ValueError(f"l2: must be in [0, 1000], got {self.l2}")
        if not 1 <= self.feature_clips <= 64:
            raise ValueError(f"feature_clips: must be in [1, 64], got {self.feature_clips}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction: must be in [0, 1), got {self.val_fraction}")
        if self.finetune_epochs < 1 or self.finetune_lr <= 0:
            raise ValueError("finetune_epochs must be >= 1 and finetune_lr > 0")


@dataclass(frozen=True)
class DataConfig:
    """Where the data is, and how to make the built-in set when it is absent."""

    root: str = "data/synth"
    synth_classes: int = 4
    synth_videos_per_class: int = 60
    synth_seed: int = 0
    synth_unlabelled_per_class: int = 0  # more videos per class for pre-training only
    # generate the built-in set when `root` is absent; false for recipes meant for your own
    # videos, where a missing root is an error that says how to index them
    builtin: bool = True

    def __post_init__(self):
        if self.synth_classes < 2 or self.synth_videos_per_class < 8:
            raise ValueError("synth_classes must be >= 2 and synth_videos_per_class >= 8")
        if self.synth_unlabelled_per_class < 0:
            raise ValueError("synth_unlabelled_per_class: must be >= 0")


@dataclass(frozen=True)
class Recipe:
    name: str = "base"
    seed: int = 0
    clip: ClipSpec = field(default_factory=ClipSpec)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self):
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed: must be in [0, {MAX_SEED}], got {self.seed}")
        if self.clip.frames % self.model.tubelet:
            raise ValueError(f"clip.frames: {self.clip.frames} is not divisible by "
                             f"model.tubelet {self.model.tubelet}")
        if self.clip.size % self.model.patch_size:
            raise ValueError(f"clip.size: {self.clip.size} is not divisible by "
                             f"model.patch_size {self.model.patch_size}")
        if self.classify.pool in ("meandelta", "changemap") and self.classify.head == "linear" and (
                self.model.kind != "vit" or token_grid(self.model, self.clip)[0] < 2):
            raise ValueError(f"classify.pool: {self.classify.pool!r} needs a ViT whose token grid has >= 2 time steps "
                             f"(clip.frames {self.clip.frames} / model.tubelet {self.model.tubelet}, "
                             f"model.kind {self.model.kind})")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
