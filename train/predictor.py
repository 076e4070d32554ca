"""The JEPA predictor: mask tokens at the targets' positions cross-attend to the context tokens."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .vit import Mlp, gather_tokens, init_weights


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
        from .vit import Attention

        self.norm1, self.self_attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.norm_ctx = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.cross = CrossAttention(dim, heads)
        self.norm3, self.mlp = nn.LayerNorm(dim), Mlp(dim, mlp_ratio)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.norm1(x))
        x = x + self.cross(self.norm2(x), self.norm_ctx(ctx))
        return x + self.mlp(self.norm3(x))


class Predictor(nn.Module):
    def __init__(self, embed_dim: int, num_tokens: int, dim: int, depth: int, heads: int,
                 mlp_ratio: float):
        super().__init__()
        self.embed = nn.Linear(embed_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, dim))
        self.blocks = nn.ModuleList(DecoderBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, embed_dim)
        init_weights(self)
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
    return Predictor(cfg.embed_dim, encoder.num_tokens, cfg.pred_dim, cfg.pred_depth,
                     cfg.pred_heads, cfg.mlp_ratio)
