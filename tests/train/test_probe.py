"""Fitting heads on cached features: the two ways a linear head is fitted."""
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from picojepa.train.config import ClassifyConfig
from picojepa.train.features import Features
from picojepa.train.probe import predict, train_head


def _blobs(n_per_class=30, classes=3, dim=12, clips=2, seed=0) -> Features:
    """Videos around `classes` Gaussian centres in `dim` dimensions (the same centres for every
    seed), each video `clips` noisy copies of its point."""
    centres = np.random.default_rng(99).normal(0, 3, (classes, dim))
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    points = centres[labels] + rng.normal(0, 1, (len(labels), dim))
    feats = points[:, None, :] + rng.normal(0, 0.3, (len(labels), clips, dim))
    return Features(torch.tensor(feats, dtype=torch.float32), torch.tensor(labels), [f"v{i}" for i in range(len(labels))], [])


def test_lbfgs_solves_the_regularised_logistic_regression_and_gives_the_same_head_every_time():
    train, held = _blobs(), _blobs(seed=1)
    cfg = ClassifyConfig(fit="lbfgs", l2=1e-2, val_fraction=0.2)
    a, info = train_head(train, 3, cfg, seed=0)
    c, _ = train_head(train, 3, cfg, seed=0)
    assert torch.equal(a.fc.weight, c.fc.weight)  # deterministic
    assert info["history"][-1]["loss"] < info["history"][0]["loss"]
    # at the optimum the gradient of the penalised loss vanishes
    tr_idx = [train.paths.index(p) for p in train.paths if p not in set(info["val_paths"])]
    x = train.feats[tr_idx].flatten(0, 1)
    y = train.labels[tr_idx].repeat_interleave(train.feats.shape[1])
    w = a.fc.weight.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(((x - a.mean) / a.std) @ w.T + a.fc.bias.detach(), y) + 0.5 * 1e-2 * w.pow(2).sum()
    (grad,) = torch.autograd.grad(loss, w)
    assert grad.abs().max() < 1e-3
    acc = (predict(a, held.feats).argmax(-1) == held.labels.numpy()).mean()
    assert acc > 0.9


def test_a_stronger_penalty_gives_smaller_weights_and_sgd_is_still_the_default():
    train = _blobs()
    small, _ = train_head(train, 3, ClassifyConfig(fit="lbfgs", l2=1e-3), 0)
    large, _ = train_head(train, 3, ClassifyConfig(fit="lbfgs", l2=1.0), 0)
    assert large.fc.weight.norm() < small.fc.weight.norm()
    assert ClassifyConfig().fit == "sgd"
    sgd, info = train_head(train, 3, dataclasses.replace(ClassifyConfig(), epochs=5), 0)
    assert len(info["history"]) == 5  # one entry per epoch


def test_the_head_study_fits_a_runs_heads_again_both_ways(smoke_run):
    """tools/head_study.py on a finished run: the recorded fit reproduces the run's own general
    accuracy, and each L-BFGS variant gives a row."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from picojepa.core.rundir import RunDir

    tool = Path(__file__).resolve().parents[2] / "tools" / "head_study.py"
    r = subprocess.run([sys.executable, str(tool), str(smoke_run[0])], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    recorded = json.loads(RunDir(smoke_run[0]).report_json.read_text())["accuracy"]["general"]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in r.stdout.splitlines() if line.startswith("| ")}
    assert rows["as recorded"].startswith(f"| as recorded | {recorded:.1f} |")
    assert {"lbfgs, l2 1e-3", "lbfgs, l2 1e-2"} <= set(rows)
