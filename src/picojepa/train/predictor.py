"""The JEPA predictor: mask tokens at the targets' positions cross-attend to the context tokens."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .vit import Attention, Mlp, gather_tokens, init_weights


class CrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.kv, self.proj = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)
        k, v = self.kv(ctx).view(b, ctx.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class DecoderBlock(nn.Module):
    """Self-attention over the queries, cross-attention to the context, MLP; all pre-norm."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1, self.self_attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.norm_ctx = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.cross = CrossAttention(dim, heads)
        self.norm3, self.mlp = nn.LayerNorm(dim), Mlp(dim, mlp_ratio)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.norm1(x))
        x = x + self.cross(self.norm2(x), self.norm_ctx(ctx))
        return x + self.mlp(self.norm3(x))


def _sincos_1d(n: int, dim: int) -> torch.Tensor:
    """(n, dim) sines and cosines of positions 0..n-1 at dim/2 geometric frequencies."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angle = pos * freq[None]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


def sincos_3d(grid: tuple[int, int, int], dim: int) -> torch.Tensor:
    """Fixed positions (1, t*h*w, dim) for tokens in (t, h, w) order: a third of the channels
    (rounded to even) for each of height and width, the rest for time, as in V-JEPA."""
    t, h, w = grid
    d_hw = dim // 3 // 2 * 2
    d_t = dim - 2 * d_hw
    if d_t < 2 or d_t % 2:
        raise ValueError(f"sin-cos positions need an even dim >= 8, got {dim}")
    et = _sincos_1d(t, d_t)[:, None, None].expand(t, h, w, d_t)
    eh = _sincos_1d(h, d_hw)[None, :, None].expand(t, h, w, d_hw)
    ew = _sincos_1d(w, d_hw)[None, None, :].expand(t, h, w, d_hw)
    return torch.cat([et, eh, ew], dim=-1).reshape(1, t * h * w, dim).float()


class Predictor(nn.Module):
    """`pos` 'sincos': fixed 3D sine-cosine positions (a buffer). Measured on the built-in data,
    the learned kind, started from noise of std 0.02, gives the mask tokens no usable geometry:
    the predictor falls back to each clip's mean target (see README, pre-training)."""

    def __init__(self, embed_dim: int, grid: tuple[int, int, int], dim: int, depth: int,
                 heads: int, mlp_ratio: float, pos: str = "sincos"):
        super().__init__()
        num_tokens = grid[0] * grid[1] * grid[2]
        self.embed = nn.Linear(embed_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        if pos == "sincos":
            self.register_buffer("pos_embed", sincos_3d(grid, dim))
        elif pos == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, dim))
        else:
            raise ValueError(f"unknown predictor positions {pos!r}; known: sincos, learned")
        self.blocks = nn.ModuleList(DecoderBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, embed_dim)
        init_weights(self)
        if pos == "learned":
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, ctx: torch.Tensor, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor) -> torch.Tensor:
        """ctx (B, Kc, D) at positions ctx_idx -> predicted latents (B, Kt, D) at tgt_idx."""
        pos = self.pos_embed.expand(ctx.shape[0], -1, -1)
        c = self.embed(ctx) + gather_tokens(pos, ctx_idx)
        q = self.mask_token + gather_tokens(pos, tgt_idx)
        for blk in self.blocks:
            q = blk(q, c)
        return self.out(self.norm(q))


def build_predictor(encoder) -> Predictor:
    cfg = encoder.cfg
    return Predictor(cfg.embed_dim, encoder.grid, cfg.pred_dim, cfg.pred_depth,
                     cfg.pred_heads, cfg.mlp_ratio, cfg.pred_pos)
