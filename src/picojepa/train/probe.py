"""Training the heads on cached features: a stratified validation split, the training loop
with warm-up and cosine decay, and the probabilities a trained head gives."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import ClassifyConfig
from .features import Features
from .heads import new_head
from .optim import lr_at, param_groups, set_lr


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
    history = _fit_lbfgs(head, x, y, cfg.l2) if cfg.fit == "lbfgs" else _fit_sgd(head, x, y, cfg, seed)
    val_acc = None
    if len(va):
        with torch.no_grad():
            probs = F.softmax(head(train.feats[va]), -1).mean(1)
        val_acc = float((probs.argmax(-1) == train.labels[va]).float().mean())
    return head.eval(), {"history": history, "val_accuracy": val_acc, "train_videos": len(tr),
                         "val_videos": len(va), "val_paths": [train.paths[i] for i in va]}


def _fit_lbfgs(head: nn.Module, x: torch.Tensor, y: torch.Tensor, l2: float, iterations: int = 200) -> list[dict]:
    """A linear head's weights by full-batch L-BFGS on cross-entropy + l2/2 |W|^2 (the bias is not
    penalised), from zero weights; one history entry per evaluation of the loss."""
    nn.init.zeros_(head.fc.weight)
    nn.init.zeros_(head.fc.bias)
    opt = torch.optim.LBFGS(head.fc.parameters(), lr=1.0, max_iter=iterations, history_size=20,
                            line_search_fn="strong_wolfe")
    history: list[dict] = []

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(head(x), y) + 0.5 * l2 * head.fc.weight.pow(2).sum()
        loss.backward()
        history.append({"epoch": len(history), "loss": loss.item()})
        return loss

    opt.step(closure)
    return history


def _fit_sgd(head: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: ClassifyConfig, seed: int) -> list[dict]:
    """AdamW over minibatches for `cfg.epochs`, with warm-up and cosine decay; the mean loss of
    each epoch."""
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
    return history


@torch.no_grad()
def predict(head: nn.Module, feats: torch.Tensor) -> np.ndarray:
    """Probabilities (N, C), averaged over each video's cached clips."""
    return F.softmax(head(feats), -1).mean(1).numpy()
