"""The JEPA objective: predict the target encoder's latents of masked tubelets from visible ones."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .predictor import build_predictor
from .vit import VideoViT, gather_tokens


RANK_ROWS = 2048  # tokens the effective rank is measured on, per step (an SVD of 2048 x D)


def effective_rank(x: torch.Tensor) -> float:
    """exp(entropy) of the normalised squared singular values of the centred rows of x (N, D):
    D for features spread evenly over every dimension, 1 for features along a single line
    (Roy & Vetterli, 2007). The dimensional-collapse watch, also used on pooled features."""
    x = x.double() - x.double().mean(0)
    s2 = torch.linalg.svdvals(x) ** 2
    if s2.sum() <= 0:
        return 0.0
    p = s2 / s2.sum()
    return float(torch.exp(-(p * torch.log(p.clamp_min(1e-30))).sum()))


class JEPA(nn.Module):
    """Context encoder + predictor (trained) and an EMA target encoder (not trained).

    `context_all_tokens=True` reproduces the original's formulation (the context encoder attends
    over every token, masked ones included, and only the visible outputs are kept); it leaks the
    answer through attention and exists only for the benchmark that compares the two.
    """

    def __init__(self, encoder: VideoViT, loss: str = "mse", context_all_tokens: bool = False):
        super().__init__()
        self.encoder = encoder
        self.predictor = build_predictor(encoder)
        self.target = copy.deepcopy(encoder).requires_grad_(False)
        self.loss_kind, self.context_all_tokens = loss, context_all_tokens

    @torch.no_grad()
    def targets(self, clips: torch.Tensor, tgt_idx: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        """Layer-normed target latents at tgt_idx, plus the two collapse watches: the mean
        per-dimension std (complete collapse: every token the same) and the effective rank
        (dimensional collapse: the tokens vary along a few directions only)."""
        h = self.target(clips)
        h = F.layer_norm(h, (h.shape[-1],))
        flat = h.reshape(-1, h.shape[-1])
        spread = flat.std(dim=0).mean().item()
        return gather_tokens(h, tgt_idx), spread, effective_rank(flat[:RANK_ROWS])

    def forward(self, clips, ctx_idx, tgt_idx, targets) -> torch.Tensor:
        if self.context_all_tokens:
            z = gather_tokens(self.encoder(clips), ctx_idx)
        else:
            z = self.encoder(clips, keep=ctx_idx)
        pred = self.predictor(z, ctx_idx, tgt_idx)
        if self.loss_kind == "l1":
            return F.l1_loss(pred, targets)
        return F.mse_loss(pred, targets)

    @torch.no_grad()
    def update_target(self, decay: float) -> None:
        """EMA: target <- decay * target + (1 - decay) * encoder. Call after optimizer.step()."""
        for t, s in zip(self.target.parameters(), self.encoder.parameters()):
            t.lerp_(s.detach(), 1.0 - decay)
