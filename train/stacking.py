"""The stacking meta-model (the paper's future work): a learned combiner of the partial members.

It is a multinomial logistic regression on the members' log-probabilities side by side
(`picojepa.runtime.vote.stack_features`), fitted on the videos that NONE of the partial members
trained on: the union of their validation splits (the quarters are disjoint, so each member's 20 %
validation videos are unseen by every member). Fitting it on the members' own training videos
would teach it to trust whichever member overfitted most.

Its weights are a (C, M*C) matrix and a bias: small enough to travel in the bundle's manifest and
to be applied with numpy by the runtime (`vote.stacked`).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from picojepa.runtime.vote import stack_features

MIN_VIDEOS = 8  # fewer unseen videos than this and the combiner is not fitted
L2 = 1e-2  # on the weights; with a few dozen videos the combiner must stay close to averaging


def fit(probs: np.ndarray, labels: np.ndarray, classes: int, l2: float = L2,
        steps: int = 200) -> tuple[dict | None, str]:
    """probs (M, N, C) of the members on N unseen videos, labels (N,) -> (stacker, reason).

    The stacker is None, with the reason, where too few videos or classes are there to fit one.
    Deterministic: full-batch L-BFGS from an initialisation that equals the soft vote's ranking
    (weight = identity per member / M, bias 0)."""
    m, n, c = probs.shape
    present = len(np.unique(labels))
    if n < MIN_VIDEOS or present < 2:
        return None, (f"not fitted: {n} unseen validation videos of {present} classes "
                      f"(needs >= {MIN_VIDEOS} videos of >= 2 classes)")
    x = torch.from_numpy(stack_features(probs)).double()
    y = torch.from_numpy(np.asarray(labels)).long()
    w = torch.cat([torch.eye(c, dtype=torch.float64) / m] * m, dim=1).requires_grad_(True)
    b = torch.zeros(c, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w.T + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = (x @ w.T + b).argmax(-1)
        acc = float((pred == y).double().mean() * 100)
    stacker = {"weight": w.detach().tolist(), "bias": b.detach().tolist(), "input": "log_prob",
               "fitted_on_videos": int(n), "fit_accuracy": acc, "l2": l2}
    return stacker, f"fitted on {n} videos none of the members trained on"
