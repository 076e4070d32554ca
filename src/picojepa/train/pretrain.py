"""Self-supervised pre-training loop (V-JEPA style) with resume, collapse watch and DDP."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from picojepa.core.console import one_line, progress
from picojepa.core.errors import DataLayoutError, PicoJepaError
from picojepa.core.rundir import COLLAPSED, PRETRAIN, RunDir

from . import checkpoint, distributed
from .augment import Augment
from .config import PretrainConfig, Recipe
from .dataset import ClipDataset, collate
from .files import write_text
from .foundation import InitError, init_state
from .generated import GeneratedDataset
from .jepa import JEPA
from .layout import read_items
from .masking import batch_masks
from .optim import lr_at, param_groups, set_lr
from .recipe_file import recipe_from_dict
from .vit import VideoViT

log = logging.getLogger(__name__)
CKPT = PRETRAIN


class CollapseError(PicoJepaError, RuntimeError):
    """The target embeddings collapsed to a constant: the encoder learned nothing."""


@dataclass
class PretrainResult:
    path: Path
    epochs: int
    final_loss: float
    target_std: float
    weights_sha: str = ""
    skipped: list[str] = field(default_factory=list)
    target_rank: float = float("nan")  # effective rank of the target tokens, last epoch
    vicreg: float = 0.0  # the variance/covariance weight this run used
    history: list[dict] = field(default_factory=list)  # one row per epoch, as the checkpoint keeps it


def sample_seeds(seed: int, epoch: int, indices: torch.Tensor) -> list[int]:
    return [int(np.random.SeedSequence([seed, epoch, int(i)]).generate_state(1)[0])
            for i in indices]


def build(recipe: Recipe, context_all_tokens: bool = False, vicreg: float | None = None) -> JEPA:
    """The JEPA model of `recipe`, seeded; `vicreg` overrides the recipe's weight (see
    `PretrainConfig.vicreg_for`)."""
    torch.manual_seed(recipe.seed)
    cfg = recipe.pretrain
    return JEPA(VideoViT(recipe.model, recipe.clip), cfg.loss, context_all_tokens,
                cfg.vicreg if vicreg is None else vicreg, cfg.pixel, cfg.motion, cfg.sigreg)


def make_optimizer(model: JEPA, cfg: PretrainConfig) -> torch.optim.AdamW:
    """AdamW; decay only on weights with p.dim() >= 2; the predictor at `predictor_lr_mult` x lr."""
    groups = [*param_groups(model.encoder, cfg.weight_decay),
              *param_groups(model.predictor, cfg.weight_decay, cfg.predictor_lr_mult)]
    for weight, head in ((cfg.pixel, "pixel_head"), (cfg.motion, "motion_head")):
        if weight > 0:
            groups += param_groups(getattr(model, head), cfg.weight_decay, cfg.predictor_lr_mult)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999))


def train_step(model: JEPA, wrapped: torch.nn.Module, opt: torch.optim.Optimizer,
               clips: torch.Tensor, ctx: torch.Tensor, tgt: torch.Tensor,
               cfg: PretrainConfig) -> tuple[float, float, float]:
    """One optimisation step: targets, prediction loss, clipped update, then the EMA update (none
    for a frozen teacher).
    `wrapped` is the model itself or its DistributedDataParallel wrapper.
    -> (loss, target spread, target effective rank)"""
    targets, spread, rank = model.targets(clips, tgt)
    loss = wrapped(clips, ctx, tgt, targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    if cfg.teacher == "ema":
        model.update_target(cfg.ema)
    return loss.item(), spread, rank


def _open_log(path: Path, start_epoch: int):
    """The JSON-lines log, keeping only the records of epochs before `start_epoch`: a resumed run
    drops what a killed one logged after its last checkpoint, a fresh run starts empty."""
    kept = []
    if start_epoch > 0 and path.exists():
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)["epoch"] < start_epoch:
                    kept.append(line + "\n")
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by the kill
    write_text(path, "".join(kept))
    return path.open("a")


@dataclass
class _Loop:
    """What every epoch of one pre-training run needs."""

    recipe: Recipe
    model: JEPA
    ddp: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    opt: torch.optim.AdamW
    dataset: ClipDataset
    sampler: DistributedSampler | None
    device: torch.device
    world: int
    steps_per_epoch: int
    log_file: object = None
    skipped: set = field(default_factory=set)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.recipe.pretrain.epochs

    @property
    def warmup_steps(self) -> int:
        return int(round(self.recipe.pretrain.warmup_epochs * self.steps_per_epoch))


def pretrain(recipe: Recipe, data_root: Path, run_dir: Path, resume: bool = False,
             show_progress: bool = True) -> PretrainResult:
    """Pre-train (or resume) into run_dir/pretrain.pt, one checkpoint per epoch; raise
    `CollapseError` if the target embeddings end up constant."""
    device = distributed.init()
    rank, world = distributed.world()
    items = _items(recipe, data_root)
    ckpt_path = Path(run_dir) / CKPT
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    videos = recipe.pretrain.generated or len(items)
    vicreg = recipe.pretrain.vicreg_for(videos)
    if vicreg != recipe.pretrain.vicreg:
        log.info("variance/covariance term off: %d pre-training videos (on below %d)", videos,
                 recipe.pretrain.vicreg_below_videos)
    model = build(recipe, vicreg=vicreg).to(device)
    opt = make_optimizer(model, recipe.pretrain)
    start_epoch, history, skipped = _resume(ckpt_path, model, opt, recipe) if resume else (0, [], set())
    if start_epoch == 0:
        start_from(model, recipe)
    loop = _make_loop(recipe, model, opt, items, device, world, rank, skipped)
    loop.log_file = _open_log(RunDir(run_dir).pretrain_log, start_epoch) if rank == 0 else None
    try:
        for epoch in range(start_epoch, recipe.pretrain.epochs):
            losses, ranks, spread = _epoch(loop, epoch, show_progress and rank == 0)
            if not losses:
                raise DataLayoutError(f"{data_root}: no training video could be decoded "
                                      f"({len(loop.skipped)} failed)")
            history.append({"epoch": epoch, "loss": float(np.mean(losses)), "target_std": spread,
                            "target_rank": float(np.mean(ranks))})
            if rank == 0:
                checkpoint.save({"kind": "pretrain", "recipe": recipe.to_dict(), "epoch": epoch,
                                 "model": model.state_dict(), "optimizer": opt.state_dict(),
                                 "history": history, "skipped": sorted(loop.skipped)}, ckpt_path)
            distributed.barrier()
    finally:
        if loop.log_file:
            loop.log_file.close()
    _check_collapse(history[-1], recipe.pretrain, ckpt_path, rank)
    last = history[-1]
    return PretrainResult(ckpt_path, recipe.pretrain.epochs, last["loss"], last["target_std"],
                          checkpoint.state_hash(model.state_dict()), sorted(loop.skipped),
                          last.get("target_rank", float("nan")), vicreg, list(history))


def _items(recipe: Recipe, data_root: Path) -> list:
    """The pre-training videos of the data root (none where clips are generated)."""
    if recipe.pretrain.generated:
        return []
    items = read_items(Path(data_root) / "train" / "train.csv")
    if not items:
        raise DataLayoutError(f"{data_root}/train/train.csv: lists no videos")
    return items


def start_from(model: JEPA, recipe: Recipe) -> None:
    """Load the weights `pretrain.init` names into a new model ('scratch': keep its random ones)."""
    state = init_state(recipe.pretrain.init, recipe)
    if state is None:
        return
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a weight of another shape
        raise InitError(f"{recipe.pretrain.init}: does not fit this model ({one_line(exc, 160)})") from None
    allowed = {"predictor.pos_embed"} if recipe.model.pred_pos == "sincos" else set()
    if unexpected or set(missing) - allowed:
        raise InitError(f"{recipe.pretrain.init}: does not fit this model (missing "
                        f"{sorted(set(missing) - allowed)[:3]}, unexpected {sorted(unexpected)[:3]})")
    log.info("pre-training starts from %s", recipe.pretrain.init)


def _resume(ckpt_path: Path, model: JEPA, opt: torch.optim.AdamW, recipe: Recipe) -> tuple[int, list, set]:
    """Model and optimiser state from the last checkpoint -> (next epoch, history, skipped);
    refused where the checkpoint was trained with another recipe."""
    if not ckpt_path.exists():
        return 0, [], set()
    state = checkpoint.load(ckpt_path, kind="pretrain")
    checkpoint.check_resume(state, recipe.to_dict(), ckpt_path)
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise checkpoint.CheckpointError(f"{ckpt_path}: does not fit this model "
                                         f"({one_line(exc, 120)})") from None
    log.info("resumed from %s at epoch %d", ckpt_path, state["epoch"] + 1)
    return state["epoch"] + 1, state["history"], set(state["skipped"])


def _make_loop(recipe: Recipe, model: JEPA, opt, items, device, world: int, rank: int,
               skipped: set) -> _Loop:
    cfg = recipe.pretrain
    ddp = (torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
           if world > 1 else model)
    if cfg.generated:
        dataset = GeneratedDataset(recipe.clip, cfg.generated, recipe.seed)
    else:
        dataset = ClipDataset(items, recipe.clip, recipe.seed, "random", cfg.clips_per_video,
                              cfg.cache_mb if cfg.num_workers == 0 else 0.0, Augment(cfg.flip, cfg.crop_scale))
    sampler = DistributedSampler(dataset, world, rank, shuffle=True, seed=recipe.seed) if world > 1 else None
    steps = -(-len(dataset) // (cfg.batch_size * world))
    return _Loop(recipe, model, ddp, opt, dataset, sampler, device, world, steps, skipped=skipped)


def _epoch(loop: _Loop, epoch: int, show_progress: bool) -> tuple[list[float], list[float], float]:
    """One pass over the pre-training videos -> (step losses, target ranks, last target spread)."""
    recipe, cfg = loop.recipe, loop.recipe.pretrain
    loop.dataset.set_epoch(epoch)
    if loop.sampler is not None:
        loop.sampler.set_epoch(epoch)
    gen = torch.Generator().manual_seed(recipe.seed * 1000 + epoch)
    loader = DataLoader(loop.dataset, cfg.batch_size, shuffle=loop.sampler is None, sampler=loop.sampler,
                        generator=gen, num_workers=cfg.num_workers, collate_fn=collate, drop_last=False)
    bar = progress(loader, desc=f"pretrain {epoch + 1}/{cfg.epochs}", disable=not show_progress)
    losses, ranks, spread = [], [], float("nan")
    for i, batch in enumerate(bar):
        loop.skipped.update(batch["errors"])
        if batch["clip"] is None:
            continue
        t0 = time.perf_counter()
        step = epoch * loop.steps_per_epoch + i
        lr = lr_at(step, loop.total_steps, loop.warmup_steps, cfg.lr, cfg.final_lr)
        set_lr(loop.opt, lr)
        clips = batch["clip"].to(loop.device)
        ctx, tgt = (m.to(loop.device) for m in batch_masks(
            cfg.mask, loop.model.encoder.grid, cfg.mask_ratio, sample_seeds(recipe.seed, epoch, batch["index"])))
        loss, spread, rank = train_step(loop.model, loop.ddp, loop.opt, clips, ctx, tgt, cfg)
        ranks.append(rank)
        losses.append(distributed.all_mean(loss))
        rate = len(clips) * loop.world / (time.perf_counter() - t0)
        bar.set_postfix(loss=f"{losses[-1]:.4f}", clips_s=f"{rate:.1f}")
        if loop.log_file:
            loop.log_file.write(json.dumps({"stage": "pretrain", "epoch": epoch, "step": step,
                                            "loss": losses[-1], "lr": lr, "target_std": spread,
                                            "target_rank": rank, "clips_per_s": rate}) + "\n")
    return losses, ranks, spread


def _check_collapse(last: dict, cfg: PretrainConfig, ckpt_path: Path, rank: int) -> None:
    """A run whose target embeddings ended constant is moved aside and refused."""
    if last["target_std"] < cfg.collapse_std:
        bad = ckpt_path.with_name(COLLAPSED)
        if rank == 0:
            ckpt_path.replace(bad)
        raise CollapseError(f"{bad}: target embeddings collapsed (per-dimension std "
                            f"{last['target_std']:.4g} < {cfg.collapse_std}); not usable")


def load_encoder(run_dir: Path, which: str | None = None) -> tuple[VideoViT, Recipe, dict]:
    """The pre-trained encoder of a run: by default the EMA target encoder, as V-JEPA evaluates,
    and the trained student (`encoder`) where the teacher was frozen (`pretrain.teacher: frozen`),
    since that target never learned anything; `which` ("target" or "encoder") picks one."""
    state = checkpoint.load(Path(run_dir) / CKPT, kind="pretrain")
    recipe = recipe_from_dict(state["recipe"])
    enc = VideoViT(recipe.model, recipe.clip)
    if which is None:
        which = "encoder" if recipe.pretrain.teacher == "frozen" else "target"
    prefix = f"{which}."
    enc.load_state_dict({k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)})
    return enc.eval(), recipe, state
