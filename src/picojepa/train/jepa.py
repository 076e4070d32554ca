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


def variance_covariance(z: torch.Tensor) -> torch.Tensor:
    """VICReg's variance and covariance terms on rows z (N, D), as C-JEPA adds them to I-JEPA:
    a hinge keeping every dimension's std above 1, plus the squared off-diagonal covariances
    (per dimension), which push the dimensions apart. Zero for whitened features."""
    z = z - z.mean(0)
    std = torch.sqrt(z.var(0) + 1e-4)
    cov = (z.T @ z) / max(1, z.shape[0] - 1)
    off = cov - torch.diag(torch.diag(cov))
    return F.relu(1.0 - std).mean() + (off ** 2).sum() / z.shape[1]


SIGREG_DIRECTIONS = 64  # random directions the embeddings are projected on, fresh each step
SIGREG_T = torch.linspace(0.0, 5.0, 17)  # where the characteristic functions are compared (even: t >= 0)


def sigreg(z: torch.Tensor, directions: int = SIGREG_DIRECTIONS) -> torch.Tensor:
    """LeJEPA's sketched isotropic Gaussian regulariser on rows z (N, D): z projected on random unit
    directions, each projection's empirical characteristic function compared with a standard
    normal's, exp(-t^2/2), by the Epps-Pulley distance weighted by exp(-t^2/2) and integrated over
    t (the trapezoid rule on t >= 0, doubled: both functions are symmetric). Averaged over the
    directions and not scaled by N, so the weight does not depend on the batch. Zero in the limit
    for rows drawn from N(0, I); large for collapsed or stretched ones."""
    a = torch.randn(z.shape[1], directions, device=z.device, dtype=z.dtype)
    proj = z @ (a / a.norm(dim=0, keepdim=True))  # (N, directions)
    t = SIGREG_T.to(z.device, z.dtype)
    arg = proj.unsqueeze(-1) * t  # (N, directions, T)
    gauss = torch.exp(-0.5 * t ** 2)
    gap = (torch.cos(arg).mean(0) - gauss) ** 2 + torch.sin(arg).mean(0) ** 2  # |ecf - cf|^2
    return 2.0 * torch.trapezoid(gap * gauss, t, dim=-1).mean()


def patchify(clips: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """(B, 3, T, H, W) -> (B, N, 3*tubelet*patch*patch), tokens in the encoder's order (t, h, w)."""
    b, c, t, h, w = clips.shape
    x = clips.reshape(b, c, t // tubelet, tubelet, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(b, (t // tubelet) * (h // patch) * (w // patch), -1)


class JEPA(nn.Module):
    """Context encoder + predictor (trained) and an EMA target encoder (not trained).

    `context_all_tokens=True` reproduces the original's formulation (the context encoder attends
    over every token, masked ones included, and only the visible outputs are kept); it leaks the
    answer through attention and exists only for the benchmark that compares the two.
    """

    def __init__(self, encoder: VideoViT, loss: str = "mse", context_all_tokens: bool = False,
                 vicreg: float = 0.0, pixel: float = 0.0, motion: float = 0.0, sigreg: float = 0.0):
        super().__init__()
        self.encoder = encoder
        self.predictor = build_predictor(encoder)
        self.target = copy.deepcopy(encoder).requires_grad_(False)
        self.loss_kind, self.context_all_tokens = loss, context_all_tokens
        self.vicreg, self.pixel, self.motion, self.sigreg = vicreg, pixel, motion, sigreg
        cfg = encoder.cfg
        if pixel > 0:  # VideoMAE's target, as an auxiliary: the masked tubelets' own pixels
            self.pixel_head = nn.Linear(cfg.embed_dim, 3 * cfg.tubelet * cfg.patch_size ** 2)
        if motion > 0:  # a target that is itself motion: the masked tubelets' frame differences
            self.motion_head = nn.Linear(cfg.embed_dim, 3 * cfg.tubelet * cfg.patch_size ** 2)

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
        loss = F.l1_loss(pred, targets) if self.loss_kind == "l1" else F.mse_loss(pred, targets)
        if self.vicreg > 0:
            loss = loss + self.vicreg * variance_covariance(z.reshape(-1, z.shape[-1]))
        if self.sigreg > 0:
            loss = loss + self.sigreg * sigreg(z.reshape(-1, z.shape[-1]))
        if self.pixel > 0:
            pixels = gather_tokens(patchify(clips, self.encoder.cfg.tubelet, self.encoder.cfg.patch_size), tgt_idx)
            pixels = F.layer_norm(pixels, (pixels.shape[-1],))  # VideoMAE's per-patch normalised pixels
            loss = loss + self.pixel * F.mse_loss(self.pixel_head(pred), pixels)
        if self.motion > 0:
            loss = loss + self.motion * F.mse_loss(self.motion_head(pred), self._motion_target(clips, tgt_idx))
        return loss

    def _motion_target(self, clips: torch.Tensor, tgt_idx: torch.Tensor) -> torch.Tensor:
        """Each masked tubelet's frame differences (every frame minus the one before it; zero for
        the clip's first), scaled by one number, their RMS over the batch: clips keep how much
        more or less they move than the others, which a per-patch normalisation would erase."""
        diff = F.pad(clips[:, :, 1:] - clips[:, :, :-1], (0, 0, 0, 0, 1, 0))
        moves = gather_tokens(patchify(diff, self.encoder.cfg.tubelet, self.encoder.cfg.patch_size), tgt_idx)
        return moves / moves.pow(2).mean().sqrt().clamp_min(1e-6)

    @torch.no_grad()
    def update_target(self, decay: float) -> None:
        """EMA: target <- decay * target + (1 - decay) * encoder. Call after optimizer.step()."""
        for t, s in zip(self.target.parameters(), self.encoder.parameters()):
            t.lerp_(s.detach(), 1.0 - decay)
