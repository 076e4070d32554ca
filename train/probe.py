"""Linear probes on a frozen encoder: cached features, one head per member, and the classifier
module (encoder + head) that export turns into ONNX."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from picojepa.runtime.console import progress

from .config import ClassifyConfig
from .dataset import MultiClipDataset, collate
from .optim import lr_at, param_groups, set_lr
from .vit import VideoViT

log = logging.getLogger(__name__)


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


POOLS = ("mean", "meanstd", "max", "tokens")


def pool_tokens(tokens: torch.Tensor, kind: str = "mean") -> torch.Tensor:
    """Tokens (B, N, D) -> one vector per clip. 'mean': (B, D), the paper's protocol. 'meanstd':
    (B, 2D), the mean and the standard deviation over tokens side by side; the spread keeps what
    a mean of near-linear features averages away (which object parts, where, how they change).
    'max': (B, D), the largest value of each channel over tokens (whether a pattern occurs
    anywhere, however few tokens show it). 'tokens': (B, N, D) unchanged, for the attentive head."""
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
    raise ValueError(f"unknown pooling {kind!r}; known: {', '.join(POOLS)}")


class VideoClassifier(nn.Module):
    """Clip (B, 3, T, H, W) -> logits (B, C): encoder, pooled tokens (or all of them), head."""

    def __init__(self, encoder: VideoViT, head: nn.Module, pool: str = "mean"):
        super().__init__()
        self.encoder, self.head, self.pool = encoder, head, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(pool_tokens(self.encoder(x), self.pool))


@dataclass
class Features:
    """Mean-pooled features of each readable video: feats (N, clips, D), labels (N,), paths."""

    feats: torch.Tensor
    labels: torch.Tensor
    paths: list[str]
    errors: list[str]


@torch.no_grad()
def extract(encoder: VideoViT, items: list[tuple[Path, int]], clips: int, batch_size: int = 8,
            num_workers: int = 0, desc: str = "features", show_progress: bool = True,
            pool: str = "mean") -> Features:
    encoder.eval()
    loader = DataLoader(MultiClipDataset(items, encoder.clip, clips), batch_size,
                        num_workers=num_workers, collate_fn=collate)
    feats, labels, paths, errors = [], [], [], []
    for batch in progress(loader, desc=desc, disable=not show_progress):
        errors += batch["errors"]
        if batch["clip"] is None:
            continue
        x = batch["clip"]  # (B, clips, 3, T, H, W)
        b = x.shape[0]
        f = pool_tokens(encoder(x.flatten(0, 1)), pool)
        f = f.view(b, clips, *f.shape[1:])  # (B, clips, D) or, for 'tokens', (B, clips, N, D)
        feats.append(f)
        labels.append(batch["label"])
        paths += [str(items[i][0]) for i in batch["index"].tolist()]
    if not feats:
        dim = encoder.cfg.embed_dim * (2 if pool == "meanstd" else 1)
        shape = (0, clips, encoder.num_tokens, dim) if pool == "tokens" else (0, clips, dim)
        return Features(torch.zeros(shape), torch.zeros(0, dtype=torch.long), [], errors)
    return Features(torch.cat(feats), torch.cat(labels), paths, errors)


def subset(f: Features, paths: list[str]) -> Features:
    pos = {p: i for i, p in enumerate(f.paths)}
    idx = [pos[p] for p in paths if p in pos]
    return Features(f.feats[idx], f.labels[idx], [f.paths[i] for i in idx], [])


def split_val(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) positions, stratified: `fraction` of each class's videos (rounded)
    is held out, so every class is validated on and the split keeps the class balance."""
    labels = np.asarray(labels)
    if len(labels) <= 4:
        return np.arange(len(labels)), np.zeros(0, dtype=int)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        val += idx[:min(len(idx) - 1, int(round(len(idx) * fraction)))].tolist()  # keep one to train
    val = np.sort(np.asarray(val, dtype=int))
    return np.setdiff1d(np.arange(len(labels)), val), val


def train_head(train: Features, classes: int, cfg: ClassifyConfig, seed: int) -> tuple[nn.Module, dict]:
    """Fit the recipe's head on cached features (every cached clip a sample); a stratified
    `cfg.val_fraction` of the videos is held out for validation."""
    torch.manual_seed(seed)
    tr, va = split_val(train.labels.numpy(), cfg.val_fraction, seed)
    x = train.feats[tr].flatten(0, 1)  # (n, D), or (n, N, D) for the attentive head
    y = train.labels[tr].repeat_interleave(train.feats.shape[1])
    head = new_head(cfg.head, x.shape[-1], classes)
    if cfg.head == "linear":
        head.mean.copy_(x.mean(0))
        head.std.copy_(x.std(0).clamp_min(1e-6))
    opt = torch.optim.AdamW(param_groups(head, cfg.weight_decay), lr=cfg.lr)
    steps_per_epoch = -(-len(x) // cfg.batch_size)
    total, warmup = steps_per_epoch * cfg.epochs, int(round(cfg.warmup_epochs * steps_per_epoch))
    gen = torch.Generator().manual_seed(seed)
    history, step = [], 0
    for epoch in range(cfg.epochs):
        order, losses = torch.randperm(len(x), generator=gen), []
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            set_lr(opt, lr_at(step, total, warmup, cfg.lr, cfg.final_lr))
            loss = F.cross_entropy(head(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
        history.append({"epoch": epoch, "loss": float(np.mean(losses))})
    val_acc = None
    if len(va):
        with torch.no_grad():
            probs = F.softmax(head(train.feats[va]), -1).mean(1)
        val_acc = float((probs.argmax(-1) == train.labels[va]).float().mean())
    return head.eval(), {"history": history, "val_accuracy": val_acc, "train_videos": len(tr),
                         "val_videos": len(va), "val_paths": [train.paths[i] for i in va]}


@torch.no_grad()
def predict(head: nn.Module, feats: torch.Tensor) -> np.ndarray:
    """Probabilities (N, C), averaged over each video's cached clips."""
    return F.softmax(head(feats), -1).mean(1).numpy()
