"""The honest yardstick beside every learned probe: frame differencing + logistic regression.

38 hand-made motion-energy numbers per video, from 16 grey frames spread evenly over the whole
video at 64x64: the absolute difference of consecutive frames, averaged over a 4x4 grid of cells
(16), over each of the 15 frame transitions (15), and 7 global statistics (mean, spread and peak of
the motion energy, the fraction of moving pixels, the drift of the motion's centre of mass along x
and y, the mean brightness). A standardised logistic regression on them, trained on the same
labelled videos as the general model. A pre-trained encoder that cannot beat this has learned
nothing a few lines of NumPy do not already see; the report says so at its top.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from picojepa.core.decode import open_video
from picojepa.core.errors import DecodeError

log = logging.getLogger(__name__)
FRAMES, SIZE, GRID = 16, 64, 4
MOVING = 0.1  # a pixel "moves" when its grey level changes by more than this (0..1 scale)
N_FEATURES = GRID * GRID + (FRAMES - 1) + 7


def motion_features(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB frames (FRAMES, SIZE, SIZE, 3) -> the N_FEATURES motion-energy numbers."""
    grey = frames.astype(np.float32).mean(-1) / 255.0  # (T, H, W)
    d = np.abs(np.diff(grey, axis=0))  # (T-1, H, W)
    cell = SIZE // GRID
    grid = d.mean(0).reshape(GRID, cell, GRID, cell).mean((1, 3)).ravel()
    per_step = d.mean((1, 2))
    w = d.sum((1, 2)) + 1e-6
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    cx, cy = (d * xs).sum((1, 2)) / w, (d * ys).sum((1, 2)) / w
    t = np.arange(len(cx)) - (len(cx) - 1) / 2
    drift = lambda c: float((t * (c - c.mean())).sum() / (t * t).sum())  # noqa: E731 - slope over time
    glob = [d.mean(), per_step.std(), d.max(), (d > MOVING).mean(), drift(cx), drift(cy), grey.mean()]
    return np.concatenate([grid, per_step, np.asarray(glob, np.float32)]).astype(np.float32)


def video_features(path: str | Path) -> np.ndarray:
    """The motion features of one video; DecodeError for a file that cannot be read."""
    v = open_video(path, SIZE)
    idx = np.linspace(0, v.num_frames - 1, FRAMES).round().astype(int)
    return motion_features(v.read(idx.tolist()))


def _features(paths: list[str]) -> tuple[np.ndarray, list[int]]:
    rows, ok = [], []
    for i, p in enumerate(paths):
        try:
            rows.append(video_features(p))
            ok.append(i)
        except DecodeError as exc:
            log.warning("motion baseline: %s", exc)
    return (np.stack(rows) if rows else np.zeros((0, N_FEATURES), np.float32)), ok


def motion_baseline(train_paths: list[str], train_labels: np.ndarray, test_paths: list[str],
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fit on the labelled training videos, predict the held-out ones -> (predictions for
    every held-out video, or -1 where it could not be decoded; the held-out labels' indices used)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, ok_tr = _features(train_paths)
    xte, ok_te = _features(test_paths)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))
    model.fit(xtr, np.asarray(train_labels)[ok_tr])
    pred = np.full(len(test_paths), -1)
    if ok_te:
        pred[ok_te] = model.predict(xte)
    return pred, np.asarray(ok_te)
