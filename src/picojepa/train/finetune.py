"""Fine-tuning a member's encoder with its head (`classify.finetune: true`).

The head is first fitted on the frozen encoder's cached features (train_head), then encoder and
head are trained together on random clips of the member's training videos (linear probing, then
fine-tuning: the head does not start from noise and wreck the pre-trained features). Each member
then has an encoder of its own, so the bundle exports one graph per member. The member's
validation videos stay out of the fine-tuning and give its validation accuracy, as for frozen heads.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from .config import Recipe
from .dataset import ClipDataset, collate
from .features import Features, extract
from .heads import VideoClassifier, token_input
from .optim import lr_at, param_groups, set_lr
from .probe import predict
from .vit import VideoViT


def finetune(encoder: VideoViT, head: nn.Module, items: list[tuple[Path, int]], recipe: Recipe,
             seed: int) -> tuple[VideoViT, nn.Module, list[dict]]:
    """Train copies of `encoder` and `head` end to end on random clips of `items`; the originals
    stay untouched. -> (encoder, head, per-epoch history)."""
    cfg = recipe.classify
    torch.manual_seed(seed)
    model = VideoClassifier(copy.deepcopy(encoder), copy.deepcopy(head),
                            token_input(cfg.head, cfg.pool)).train()
    data = ClipDataset(items, recipe.clip, seed, "random", cfg.feature_clips)
    steps_per_epoch = -(-len(data) // cfg.batch_size)
    total = steps_per_epoch * cfg.finetune_epochs
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.finetune_lr)
    history, step = [], 0
    for epoch in range(cfg.finetune_epochs):
        data.set_epoch(epoch)
        loader = DataLoader(data, cfg.batch_size, shuffle=True, collate_fn=collate,
                            generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        losses = []
        for batch in loader:
            if batch["clip"] is None:
                continue
            set_lr(opt, lr_at(step, total, steps_per_epoch, cfg.finetune_lr, cfg.final_lr))
            loss = F.cross_entropy(model(batch["clip"]), batch["label"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
            step += 1
        history.append({"epoch": epoch, "finetune_loss": float(np.mean(losses)) if losses else None})
    return model.encoder.eval(), model.head.eval(), history


def member_features(encoder: VideoViT, items: list[tuple[Path, int]], recipe: Recipe, clips: int = 1,
                    show_progress: bool = False) -> Features:
    """Features of `items` through a member's own (fine-tuned) encoder, pooled for its head."""
    cfg = recipe.classify
    return extract(encoder, items, clips, num_workers=recipe.pretrain.num_workers, desc="features (fine-tuned)",
                   show_progress=show_progress, pool=token_input(cfg.head, cfg.pool))


def validation_accuracy(encoder: VideoViT, head: nn.Module, items: list[tuple[Path, int]],
                        recipe: Recipe) -> float | None:
    if not items:
        return None
    f = member_features(encoder, items, recipe)
    return float((predict(head, f.feats).argmax(-1) == f.labels.numpy()).mean())
