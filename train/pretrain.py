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

from picojepa.runtime.console import progress
from picojepa.runtime.errors import DataLayoutError, PicoJepaError

from . import checkpoint, distributed
from .config import PretrainConfig, Recipe
from .dataset import ClipDataset, collate
from .jepa import JEPA
from .layout import read_items
from .masking import batch_masks
from .optim import lr_at, param_groups, set_lr
from .vit import VideoViT

log = logging.getLogger(__name__)
CKPT = "pretrain.pt"


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


def sample_seeds(seed: int, epoch: int, indices: torch.Tensor) -> list[int]:
    return [int(np.random.SeedSequence([seed, epoch, int(i)]).generate_state(1)[0])
            for i in indices]


def build(recipe: Recipe, context_all_tokens: bool = False) -> JEPA:
    torch.manual_seed(recipe.seed)
    cfg = recipe.pretrain
    return JEPA(VideoViT(recipe.model, recipe.clip), cfg.loss, context_all_tokens, cfg.vicreg, cfg.pixel,
                cfg.vicreg_on)


def make_optimizer(model: JEPA, cfg: PretrainConfig) -> torch.optim.AdamW:
    """AdamW; decay only on weights with p.dim() >= 2; the predictor at `predictor_lr_mult` x lr."""
    groups = [*param_groups(model.encoder, cfg.weight_decay),
              *param_groups(model.predictor, cfg.weight_decay, cfg.predictor_lr_mult)]
    if cfg.pixel > 0:
        groups += param_groups(model.pixel_head, cfg.weight_decay, cfg.predictor_lr_mult)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999))


def train_step(model: JEPA, wrapped: torch.nn.Module, opt: torch.optim.Optimizer,
               clips: torch.Tensor, ctx: torch.Tensor, tgt: torch.Tensor,
               cfg: PretrainConfig) -> tuple[float, float, float]:
    """One optimisation step: targets, prediction loss, clipped update, then the EMA update.
    `wrapped` is the model itself or its DistributedDataParallel wrapper.
    -> (loss, target spread, target effective rank)"""
    targets, spread, rank = model.targets(clips, tgt)
    loss = wrapped(clips, ctx, tgt, targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
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
    checkpoint.write_text(path, "".join(kept))
    return path.open("a")


def pretrain(recipe: Recipe, data_root: Path, run_dir: Path, resume: bool = False,
             show_progress: bool = True) -> PretrainResult:
    device = distributed.init()
    rank, world = distributed.world()
    cfg = recipe.pretrain
    items = read_items(Path(data_root) / "train" / "train.csv")
    if not items:
        raise DataLayoutError(f"{data_root}/train/train.csv: lists no videos")
    ckpt_path = Path(run_dir) / CKPT
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)

    model = build(recipe).to(device)
    opt = make_optimizer(model, cfg)
    start_epoch, history, skipped = 0, [], set()
    if resume and ckpt_path.exists():
        state = checkpoint.load(ckpt_path, kind="pretrain")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, history, skipped = state["epoch"] + 1, state["history"], set(state["skipped"])
        log.info("resumed from %s at epoch %d", ckpt_path, start_epoch)
    ddp = (torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
           if world > 1 else model)

    dataset = ClipDataset(items, recipe.clip, recipe.seed, "random", cfg.clips_per_video,
                          cfg.cache_mb if cfg.num_workers == 0 else 0.0)
    sampler = DistributedSampler(dataset, world, rank, shuffle=True, seed=recipe.seed) if world > 1 else None
    steps_per_epoch = -(-len(dataset) // (cfg.batch_size * world))
    total = steps_per_epoch * cfg.epochs
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    grid = model.encoder.grid
    log_file = _open_log(Path(run_dir) / "pretrain.jsonl", start_epoch) if rank == 0 else None
    loss_v, spread = float("nan"), float("nan")
    try:
        for epoch in range(start_epoch, cfg.epochs):
            dataset.set_epoch(epoch)
            if sampler is not None:
                sampler.set_epoch(epoch)
            gen = torch.Generator().manual_seed(recipe.seed * 1000 + epoch)
            loader = DataLoader(dataset, cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                                generator=gen, num_workers=cfg.num_workers, collate_fn=collate,
                                drop_last=False)
            bar = progress(loader, desc=f"pretrain {epoch + 1}/{cfg.epochs}",
                           disable=not (show_progress and rank == 0))
            losses, ranks = [], []
            for i, batch in enumerate(bar):
                skipped.update(batch["errors"])
                if batch["clip"] is None:
                    continue
                t0 = time.perf_counter()
                step = epoch * steps_per_epoch + i
                lr = lr_at(step, total, warmup, cfg.lr, cfg.final_lr)
                set_lr(opt, lr)
                clips = batch["clip"].to(device)
                ctx, tgt = (m.to(device) for m in batch_masks(
                    cfg.mask, grid, cfg.mask_ratio, sample_seeds(recipe.seed, epoch, batch["index"])))
                loss, spread, rank_ = train_step(model, ddp, opt, clips, ctx, tgt, cfg)
                ranks.append(rank_)
                loss_v = distributed.all_mean(loss)
                losses.append(loss_v)
                rate = len(clips) * world / (time.perf_counter() - t0)
                bar.set_postfix(loss=f"{loss_v:.4f}", clips_s=f"{rate:.1f}")
                if log_file:
                    log_file.write(json.dumps({"stage": "pretrain", "epoch": epoch, "step": step,
                                               "loss": loss_v, "lr": lr, "target_std": spread,
                                               "target_rank": rank_, "clips_per_s": rate}) + "\n")
            if not losses:
                raise DataLayoutError(f"{data_root}: no training video could be decoded "
                                      f"({len(skipped)} failed)")
            history.append({"epoch": epoch, "loss": float(np.mean(losses)), "target_std": spread,
                            "target_rank": float(np.mean(ranks))})
            if rank == 0:
                checkpoint.save({"kind": "pretrain", "recipe": recipe.to_dict(), "epoch": epoch,
                                 "model": model.state_dict(), "optimizer": opt.state_dict(),
                                 "history": history, "skipped": sorted(skipped)}, ckpt_path)
            distributed.barrier()
    finally:
        if log_file:
            log_file.close()
    last = history[-1]
    if last["target_std"] < cfg.collapse_std:
        bad = ckpt_path.with_name("pretrain.collapsed.pt")
        if rank == 0:
            ckpt_path.replace(bad)
        raise CollapseError(f"{bad}: target embeddings collapsed (per-dimension std "
                            f"{last['target_std']:.4g} < {cfg.collapse_std}); not usable")
    return PretrainResult(ckpt_path, cfg.epochs, last["loss"], last["target_std"],
                          checkpoint.state_hash(model.state_dict()), sorted(skipped),
                          last.get("target_rank", float("nan")))


def load_encoder(run_dir: Path, which: str = "target") -> tuple[VideoViT, Recipe, dict]:
    """The pre-trained encoder of a run (the EMA target encoder by default, as V-JEPA evaluates)."""
    from .config import recipe_from_dict

    state = checkpoint.load(Path(run_dir) / CKPT, kind="pretrain")
    recipe = recipe_from_dict(state["recipe"])
    enc = VideoViT(recipe.model, recipe.clip)
    prefix = f"{which}."
    enc.load_state_dict({k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)})
    return enc.eval(), recipe, state
