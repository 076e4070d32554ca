"""The stacking meta-model (the paper's future work): a learned combiner of the partial members.

It is a multinomial logistic regression on the members' log-probabilities side by side
(`picojepa.core.vote.stack_features`), fitted on the videos that NONE of the partial members
trained on: the union of their validation splits (the quarters are disjoint, so each member's 20 %
validation videos are unseen by every member). Fitting it on the members' own training videos
would teach it to trust whichever member overfitted most.

Its weights are pulled towards the log-space soft vote (every member's log-probabilities
averaged), with a strength chosen by cross-validation on those same unseen videos, so that with a
few dozen of them it departs from averaging only as far as they support.
Its weights are a (C, M*C) matrix and a bias: small enough to travel in the bundle's manifest and
to be applied with numpy by the runtime (`vote.stacked`).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from picojepa.core.vote import stack_features

MIN_VIDEOS = 8  # fewer unseen videos than this and the combiner is not fitted
L2_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)  # chosen by cross-validation on the unseen videos
FOLDS = 5


def _prior(m: int, c: int) -> torch.Tensor:
    """The weights the penalty pulls towards: every member's log-probabilities averaged, i.e.
    the normalised geometric mean of the members (a soft vote in log space)."""
    return torch.cat([torch.eye(c, dtype=torch.float64) / m] * m, dim=1)


def _fit(x: torch.Tensor, y: torch.Tensor, m: int, c: int, l2: float, steps: int):
    w0 = _prior(m, c)
    w = w0.clone().requires_grad_(True)
    b = torch.zeros(c, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w.T + b, y) + l2 * ((w - w0) ** 2).sum() + l2 * (b * b).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def _cv_loss(x, y, m, c, l2, steps) -> float:
    """Mean held-out cross-entropy over FOLDS folds (video i in fold i % FOLDS)."""
    folds = torch.arange(len(y)) % FOLDS
    total = 0.0
    for k in range(FOLDS):
        tr, va = folds != k, folds == k
        w, b = _fit(x[tr], y[tr], m, c, l2, steps)
        total += float(F.cross_entropy(x[va] @ w.T + b, y[va], reduction="sum"))
    return total / len(y)


def fit(probs: np.ndarray, labels: np.ndarray, classes: int, l2: float | None = None,
        steps: int = 100) -> tuple[dict | None, str]:
    """probs (M, N, C) of the members on N unseen videos, labels (N,) -> (stacker, reason).

    The stacker is None, with the reason, where too few videos or classes are there to fit one.
    Multinomial logistic regression, full-batch L-BFGS, deterministic. Its weights are pulled
    towards the log-space soft vote with strength `l2`, chosen from `L2_GRID` by 5-fold
    cross-validated log-loss unless given: with a few dozen videos the combiner departs from
    averaging only as far as the unseen videos support."""
    m, n, c = probs.shape
    present = len(np.unique(labels))
    if n < MIN_VIDEOS or present < 2:
        return None, (f"not fitted: {n} unseen validation videos of {present} classes "
                      f"(needs >= {MIN_VIDEOS} videos of >= 2 classes)")
    x = torch.from_numpy(stack_features(probs)).double()
    y = torch.from_numpy(np.asarray(labels)).long()
    cv = None
    if l2 is None:
        cv = {g: _cv_loss(x, y, m, c, g, steps) for g in L2_GRID}
        l2 = min(L2_GRID, key=lambda g: (round(cv[g], 9), -g))  # ties: the stronger pull
    w, b = _fit(x, y, m, c, l2, steps)
    acc = float(((x @ w.T + b).argmax(-1) == y).double().mean() * 100)
    stacker = {"weight": w.tolist(), "bias": b.tolist(), "input": "log_prob",
               "fitted_on_videos": int(n), "fit_accuracy": acc, "l2": l2,
               "cv_log_loss": {str(g): v for g, v in cv.items()} if cv else None}
    return stacker, f"fitted on {n} videos none of the members trained on (l2 {l2:g})"
