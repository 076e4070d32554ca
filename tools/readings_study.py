"""Which clip sampling and which reading of frozen tokens carry an action, on the real labelled sets.

For each set under ../shared/data/real/labeled/ (class folders of clips): the clips of 64 px as
the recipe reads them (`middle8`: 8 frames, every 4th, from the middle; `spread8` / `spread16`:
8 or 16 frames spread over the whole video), through a randomly initialised encoder of
`configs/real.yaml`'s shape, read by each pooling; a standardised logistic regression, 5 stratified
folds, mean +- sd. Beside them: the video's length alone (a confound check) and frame differencing
(the yardstick of every report). Used for docs/results.md, "The whole action in view":

    .venv/bin/python tools/readings_study.py egogestar typing_vs_exercise

`--init W` (repeatable: `foundation`, or a pre-training checkpoint or weights file) adds the
spread16 readings of that encoder, frozen, beside the random one's (docs/results.md, "The
foundation encoder"):

    .venv/bin/python tools/readings_study.py egogestar typing_vs_exercise --init foundation
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from picojepa.core.clips import center_indices, normalize
from picojepa.core.decode import open_video
from picojepa.core.mdtable import row, table
from picojepa.train.recipe_file import load_recipe
from picojepa.train.foundation import start_encoder
from picojepa.train.heads import pool_tokens
from picojepa.train.motion_baseline import motion_features
from picojepa.train.vit import VideoViT

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real" / "labeled"
SAMPLINGS = {"middle8": ("window", 8), "spread8": ("spread", 8), "spread16": ("spread", 16)}
POOLS = ("mean", "meandelta", "changemap")


def clips(name: str, recipe) -> dict:
    """Every video's uint8 clips under each sampling, its label and its length in frames."""
    root = REAL / name
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    out = {"y": [], "n": [], **{k: [] for k in SAMPLINGS}}
    for y, c in enumerate(classes):
        for path in sorted(p for p in (root / c).iterdir() if p.is_file()):
            v = open_video(path, recipe.clip.size, "exact")
            for key, (sampling, frames) in SAMPLINGS.items():
                spec = dataclasses.replace(recipe.clip, sampling=sampling, frames=frames, frame_step=4)
                out[key].append(v.read(center_indices(v.num_frames, spec)))
            out["y"].append(y)
            out["n"].append(v.num_frames)
    return {k: np.asarray(v) if k in ("y", "n") else np.stack(v) for k, v in out.items()}


def cv(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean per-class accuracy (percent) over 5 stratified folds: mean and sample sd."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    accs = []
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[tr], y[tr])
        p = clf.predict(x[te])
        accs.append(100 * np.mean([np.mean(p[y[te] == c] == c) for c in np.unique(y[te])]))
    return float(np.mean(accs)), float(np.std(accs, ddof=1))


@torch.no_grad()
def readings(frames: np.ndarray, recipe, spec, init: str = "scratch") -> dict[str, np.ndarray]:
    """Each pooling of the tokens of an encoder of `recipe`'s shape: random (seed 0), or started
    from the weights `init` names, positions fitted to `spec`."""
    torch.manual_seed(0)
    started = dataclasses.replace(recipe, clip=spec, pretrain=dataclasses.replace(recipe.pretrain, init=init))
    enc = start_encoder(started) or VideoViT(recipe.model, spec).eval()
    x = torch.from_numpy(np.stack([normalize(f, spec) for f in frames]))
    tokens = torch.cat([enc(x[i:i + 32]) for i in range(0, len(x), 32)])
    return {p: pool_tokens(tokens, p, enc.grid[0]).numpy() for p in POOLS}


def main(names: list[str], inits: list[str]) -> None:
    torch.set_num_threads(1)
    recipe = load_recipe(REPO / "configs" / "real.yaml")
    print("\n".join(table(["set", "reading", "accuracy (5 folds)"])))
    for name in names:
        d = clips(name, recipe)
        rows = {"length alone": cv(d["n"][:, None].astype(float), d["y"]),
                "frame differencing (16 spread)": cv(np.stack([motion_features(c) for c in d["spread16"]]), d["y"])}
        for key, (sampling, frames) in SAMPLINGS.items():
            spec = dataclasses.replace(recipe.clip, sampling=sampling, frames=frames, frame_step=4)
            for pool, x in readings(d[key], recipe, spec).items():
                rows[f"random encoder, {key}, {pool}"] = cv(x, d["y"])
        spec = dataclasses.replace(recipe.clip, sampling="spread", frames=16)
        for init in inits:
            for pool, x in readings(d["spread16"], recipe, spec, init).items():
                rows[f"{init}, spread16, {pool}"] = cv(x, d["y"])
        for k, (m, s) in rows.items():
            print(row([name, k, f"{m:.1f} ± {s:.1f}"]), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    given = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--init"]
    sets = [a for i, a in enumerate(args) if a != "--init" and (i == 0 or args[i - 1] != "--init")]
    main(sets or ["egogestar", "typing_vs_exercise"], given)
