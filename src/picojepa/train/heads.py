"""What sits on the frozen encoder: pooling its tokens, the heads (linear, V-JEPA's attentive
probe), and the classifier module (encoder + pooling + head) that export turns into ONNX."""
from __future__ import annotations

import math

import torch
from torch import nn

from .vit import VideoViT


class LinearHead(nn.Module):
    """Standardise pooled features with fixed training statistics, then one Linear layer."""

    def __init__(self, dim: int, classes: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.fc = nn.Linear(dim, classes)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.fc((feats - self.mean) / self.std)


class AttentiveHead(nn.Module):
    """V-JEPA's attentive probe: one learned query cross-attends (multi-head) to the normalised
    tokens; the attended vector, normalised, feeds a Linear layer. Tokens (..., N, D) -> logits
    (..., C). Written with plain matrix products so that every ONNX opset exports it."""

    def __init__(self, dim: int, classes: int, heads: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attentive head: dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.query = nn.Parameter(torch.zeros(1, heads, 1, dim // heads))
        self.kv = nn.Linear(dim, 2 * dim)
        self.out_norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, classes)
        nn.init.trunc_normal_(self.query, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        lead, (n, d) = tokens.shape[:-2], tokens.shape[-2:]
        x = self.norm(tokens.reshape(-1, n, d))
        k, v = self.kv(x).reshape(x.shape[0], n, 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(self.query @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1)
        pooled = (attn @ v).reshape(x.shape[0], d)  # (B, heads, 1, d/heads) -> (B, D)
        return self.fc(self.out_norm(pooled)).reshape(*lead, self.fc.out_features)


HEADS = ("linear", "attentive")


def new_head(kind: str, dim: int, classes: int) -> nn.Module:
    if kind == "linear":
        return LinearHead(dim, classes)
    if kind == "attentive":
        return AttentiveHead(dim, classes)
    raise ValueError(f"unknown head {kind!r}; known: {', '.join(HEADS)}")


def head_from_state(state: dict, kind: str = "linear") -> nn.Module:
    """Rebuild a trained head from its state dict (the one place that knows each head's shape)."""
    w = state["fc.weight"]
    head = new_head(kind, w.shape[1], w.shape[0])
    head.load_state_dict(state)
    return head.eval()


def token_input(kind: str, pool: str) -> str:
    """What a head reads from the encoder: the pooled vector, or every token ('tokens')."""
    return "tokens" if kind == "attentive" else pool


POOLS = ("mean", "meanstd", "max", "meandelta", "changemap", "tokens")
MAP_CELLS = 4  # the change map's cells per side (fewer where the token grid's side is not divisible)


def map_cells(side: int) -> int:
    """Cells per side of the change map on a token grid `side` tokens wide: the most, up to
    MAP_CELLS, that divide it (each cell an equal block of tokens)."""
    return max(c for c in range(1, MAP_CELLS + 1) if side % c == 0)


def pool_tokens(tokens: torch.Tensor, kind: str = "mean", steps: int = 1) -> torch.Tensor:
    """Tokens (B, N, D) -> one vector per clip. 'mean': (B, D), the paper's protocol. 'meanstd':
    (B, 2D), the mean and the standard deviation over tokens side by side; the spread keeps what
    a mean of near-linear features averages away (which object parts, where, how they change).
    'max': (B, D), the largest value of each channel over tokens (whether a pattern occurs
    anywhere, however few tokens show it). 'meandelta': (B, 2D), the mean beside the root mean
    square of each channel's change from one time step of the token grid to the next at the same
    place: how much, and in which features, the clip moves, which an average over time discards
    (`steps`: the grid's time steps; tokens are ordered time-major as the ViT makes them).
    'changemap': (B, 2D + (steps-1) x cells^2), 'meandelta' beside a map of where and when the
    tokens change: for each step to the next and each cell of a coarse grid (`map_cells`), the
    root mean square change of its tokens; it keeps the layout of motion over time, which every
    pooling over places or over time averages away (a gesture's path, not only how much moves).
    'tokens': (B, N, D) unchanged, for the attentive head."""
    if kind == "tokens":
        return tokens
    if kind == "max":
        return tokens.amax(dim=1)
    mean = tokens.mean(dim=1)
    if kind == "mean":
        return mean
    if kind == "meanstd":
        std = torch.sqrt(((tokens - mean.unsqueeze(1)) ** 2).mean(dim=1) + 1e-6)
        return torch.cat([mean, std], dim=-1)
    if kind in ("meandelta", "changemap"):
        b, n, d = tokens.shape
        if steps < 2 or n % steps:
            raise ValueError(f"pooling {kind!r} needs a token grid of >= 2 time steps, got {n} tokens "
                             f"in {steps} steps")
        grid = tokens.reshape(b, steps, n // steps, d)
        change = grid[:, 1:] - grid[:, :-1]  # (B, steps-1, places, D)
        rms = torch.sqrt((change ** 2).mean(dim=(1, 2)) + 1e-6)
        if kind == "meandelta":
            return torch.cat([mean, rms], dim=-1)
        return torch.cat([mean, rms, _change_map(change)], dim=-1)
    raise ValueError(f"unknown pooling {kind!r}; known: {', '.join(POOLS)}")


def _change_map(change: torch.Tensor) -> torch.Tensor:
    """Token changes (B, steps-1, side * side, D) -> how much the tokens of each cell of a
    `map_cells` grid change, per step, (B, (steps-1) x cells^2)."""
    b, s, n, _ = change.shape
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"pooling 'changemap' needs a square token grid, got {n} places per time step")
    c = map_cells(side)
    mag = torch.sqrt((change ** 2).mean(dim=-1) + 1e-6)  # (B, steps-1, places)
    return mag.reshape(b, s, c, side // c, c, side // c).mean(dim=(3, 5)).reshape(b, s * c * c)


def time_steps(encoder: nn.Module) -> int:
    """The time steps of an encoder's token grid (1 for an encoder without one)."""
    return encoder.grid[0] if hasattr(encoder, "grid") else 1


class VideoClassifier(nn.Module):
    """Clip (B, 3, T, H, W) -> logits (B, C): encoder, pooled tokens (or all of them), head."""

    def __init__(self, encoder: VideoViT, head: nn.Module, pool: str = "mean"):
        super().__init__()
        self.encoder, self.head, self.pool = encoder, head, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(pool_tokens(self.encoder(x), self.pool, time_steps(self.encoder)))
