"""The honest yardstick beside every learned probe: frame differencing + logistic regression.

The 38 motion-energy numbers of `motion.motion_energy`, on 16 grey frames spread evenly over the
whole video at 64x64, and a standardised logistic regression on them, trained on the same labelled
videos as the general model. A pre-trained encoder that cannot beat this has learned nothing a few
lines of frame differencing do not already see; the report says so at its top.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from picojepa.core.decode import open_video
from picojepa.core.errors import DecodeError

from .motion import motion_energy, n_features

log = logging.getLogger(__name__)
FRAMES, SIZE = 16, 64
N_FEATURES = n_features(FRAMES)
BASELINE = "motion_energy_baseline"  # its key in every report


def motion_features(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB frames (T, S, S, 3) -> the motion-energy numbers, (n_features(T),)."""
    rgb = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)[None].float() / 255.0
    with torch.no_grad():
        return motion_energy(rgb)[0].numpy()


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
    from sklearn.linear_model import LogisticRegression  # heavy: only when the baseline is fitted
    from sklearn.pipeline import make_pipeline  # heavy: only when the baseline is fitted
    from sklearn.preprocessing import StandardScaler  # heavy: only when the baseline is fitted

    xtr, ok_tr = _features(train_paths)
    xte, ok_te = _features(test_paths)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))
    model.fit(xtr, np.asarray(train_labels)[ok_tr])
    pred = np.full(len(test_paths), -1)
    if ok_te:
        pred[ok_te] = model.predict(xte)
    return pred, np.asarray(ok_te)
