"""AdamW parameter groups and the warm-up + cosine schedule shared by every training loop."""
from __future__ import annotations

import math

from torch import nn


def param_groups(module: nn.Module, weight_decay: float, lr_mult: float = 1.0) -> list[dict]:
    """Decay only weights with p.dim() >= 2 (matrices, convs); biases, norms, embeddings 1-D not."""
    params = [p for p in module.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay, "lr_mult": lr_mult},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0, "lr_mult": lr_mult},
    ]


def lr_at(step: int, total: int, warmup: int, base: float, final: float) -> float:
    """Linear warm-up from 0 to `base` over `warmup` steps, then cosine down to `final`."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return final + 0.5 * (base - final) * (1 + math.cos(math.pi * min(1.0, progress)))


def set_lr(optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_mult", 1.0)
