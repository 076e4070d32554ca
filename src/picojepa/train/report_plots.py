"""A run's figures, drawn with matplotlib (imported only when they are drawn): the pre-training and
head losses (loss.png), the confusion matrices (confusion.png), the features' t-SNE (tsne.png) and
one pre-training mask over a clip (masking.png)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from picojepa.core.rundir import RunDir

from .report import COLUMNS, RunReport


def _plt():
    import matplotlib  # heavy: only when the report's figures are drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: only when the report's figures are drawn

    return plt


def plot_losses(run_dir: Path, members: dict[str, list], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    log = RunDir(run_dir).pretrain_log
    if log.exists():
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        ax[0].plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=0.8)
    ax[0].set(title="JEPA pre-training loss", xlabel="step", ylabel="loss")
    for name, hist in members.items():
        ax[1].plot([h["loss"] for h in hist], label=name)
    ax[1].set(title="linear heads: training loss", xlabel="epoch", ylabel="cross-entropy")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_confusions(r: RunReport, path: Path) -> None:
    plt = _plt()
    keys = [k for k in COLUMNS if k in r.confusion]
    fig, axes = plt.subplots(1, len(keys), figsize=(2.6 * len(keys), 3))
    for ax, k in zip(axes, keys):
        m = np.asarray(r.confusion[k])
        ax.imshow(m, cmap="Blues")
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
        ax.set_title(k, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks(range(len(r.classes)), r.classes if k == keys[0] else [], fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_tsne(feats: np.ndarray, labels: np.ndarray, classes: list[str], path: Path, seed: int) -> None:
    from sklearn.manifold import TSNE  # heavy: only when the report's figures are drawn

    plt = _plt()
    emb = TSNE(2, perplexity=min(30.0, max(2.0, (len(feats) - 1) / 3)), random_state=seed,
               init="pca").fit_transform(feats)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for c, name in enumerate(classes):
        ax.scatter(*emb[labels == c].T, s=8, label=name)
    ax.set_title("t-SNE of pre-trained encoder features")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_masking(frames: np.ndarray, ctx_idx: np.ndarray, grid, tubelet: int, patch: int,
                 path: Path) -> None:
    """The recipe's pre-training mask over a clip's frames: masked tubelets tinted red."""
    plt = _plt()
    t, h, w = grid
    visible = np.zeros(t * h * w, bool)
    visible[ctx_idx] = True
    visible = visible.reshape(t, h, w)
    n = frames.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.4))
    for i in range(n):
        img = frames[i].astype(np.float32) / 255
        keep = np.kron(visible[i // tubelet], np.ones((patch, patch)))[..., None]
        shown = img * keep + (1 - keep) * (0.3 * img + 0.7 * np.array([0.8, 0.1, 0.1]))
        axes[0, i].imshow(img)
        axes[1, i].imshow(shown)
        for a in axes[:, i]:
            a.axis("off")
        axes[0, i].set_title(f"frame {i}", fontsize=7)
    fig.suptitle("context (visible) vs masked tubelets (red), one mask draw")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
