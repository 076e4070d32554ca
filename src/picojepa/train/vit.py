"""The video ViT encoder: Conv3d tubelet embedding, learned positions, pre-norm blocks, final norm."""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from picojepa.core.clips import ClipSpec

from .config import ModelConfig, token_grid


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, ratio: float):
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (B, N, D), idx (B, K) -> (B, K, D)."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class VideoViT(nn.Module):
    def __init__(self, cfg: ModelConfig, clip: ClipSpec):
        super().__init__()
        self.cfg, self.clip = cfg, clip
        self.grid = token_grid(cfg, clip)
        self.num_tokens = self.grid[0] * self.grid[1] * self.grid[2]
        d = self.dim = cfg.embed_dim  # the width of each token (MotionEncoder has the same attribute)
        k = (cfg.tubelet, cfg.patch_size, cfg.patch_size)
        self.patch_embed = nn.Conv3d(6 if cfg.input == "rgb+diff" else 3, d, kernel_size=k, stride=k)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_tokens, d))
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d)
        init_weights(self)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Clips (B, 3, T, H, W) -> tokens (B, N, D); with `keep` (B, K) only those tokens are
        encoded (the JEPA context encoder never sees the masked ones)."""
        if self.cfg.input == "rgb+diff":
            x = torch.cat([x, frame_differences(x)], dim=1)
        t = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        if keep is not None:
            t = gather_tokens(t, keep)
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)


def frame_differences(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> the signed difference of each frame from the one before, (B, C, T, H, W);
    the first frame takes the first difference, so every tubelet sees motion."""
    d = x[:, :, 1:] - x[:, :, :-1]
    return torch.cat([d[:, :, :1], d], dim=2)


def init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# Named sizes (timm-style factories): the published model, and smaller ones for CPUs.
SIZES = {
    "paper": ModelConfig(),
    "pico": ModelConfig(patch_size=8, embed_dim=96, depth=4, heads=4, mlp_ratio=3.0,
                        pred_depth=2, pred_heads=4, pred_dim=96),
}


def video_vit(name: str, clip: ClipSpec = ClipSpec(), **overrides) -> VideoViT:
    """Build a named size, e.g. `video_vit("paper")` is the 192-dim, 8-layer, 8-head ViT."""
    if name not in SIZES:
        raise ValueError(f"unknown model size {name!r}; known: {sorted(SIZES)}")
    return VideoViT(dataclasses.replace(SIZES[name], **overrides), clip)
