"""The foundation encoder: weights pre-trained on generated video, shipped inside the package,
from which a user's pre-training starts (`pretrain.init: foundation`).

The shipped file holds the target encoder and the predictor (the context encoder is not needed:
a run starts both encoders from the same weights, as V-JEPA's target starts as a copy), the
model and clip they were trained with, and how they were made; `foundation.json` beside it holds
its sha256, which the loader checks before anything is read. A run whose clip has another number
of frames or another size starts from the positions resampled to its token grid (trilinear, as
ViTs are fine-tuned at other resolutions); another model shape is refused.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from picojepa.core.console import one_line
from picojepa.core.errors import PicoJepaError

from . import checkpoint
from .config import ConfigError, Recipe, token_grid
from .files import write_text
from .recipe_file import recipe_from_dict
from .vit import VideoViT

FOUNDATION_DIR = Path(__file__).parent / "weights"
WEIGHTS, CARD = "foundation.pt", "foundation.json"
# the model keys that fix the weights' shapes; the clip's frames and size may differ (positions
# are resampled), the input kind and the model kind may not
SHAPE_KEYS = ("kind", "input", "patch_size", "tubelet", "embed_dim", "depth", "heads", "mlp_ratio",
              "pred_depth", "pred_heads", "pred_dim", "pred_pos")


class InitError(PicoJepaError, ValueError):
    """The weights a run was asked to start from are missing, corrupt or of another shape."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_foundation(ckpt_path: Path, out_dir: Path, made_by: str) -> Path:
    """The target encoder and predictor of a pre-training checkpoint as shipped weights in
    `out_dir` (foundation.pt and foundation.json with its sha256) -> the weights' path."""
    state = checkpoint.load(ckpt_path, kind="pretrain")
    weights = {k: v.clone() for k, v in state["model"].items() if k.startswith(("target.", "predictor."))}
    out = Path(out_dir) / WEIGHTS
    checkpoint.save({"kind": "foundation", "recipe": state["recipe"], "model": weights,
                     "history": state["history"]}, out)
    card = {"sha256": sha256_file(out), "bytes": out.stat().st_size, "recipe": state["recipe"]["name"],
            "epochs": state["epoch"] + 1, "made_by": made_by, "history": state["history"]}
    write_text(Path(out_dir) / CARD, json.dumps(card, indent=1) + "\n")
    return out


def _verified(path: Path) -> dict:
    """The weights file at `path`, its sha256 checked against the card beside it (shipped
    weights) -> its checkpoint dict."""
    card_path = path.with_name(CARD)
    if path.parent == FOUNDATION_DIR or card_path.exists():
        try:
            want = json.loads(card_path.read_text())["sha256"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InitError(f"{card_path}: cannot read the weights' card ({type(exc).__name__})") from None
        if not path.is_file():
            raise InitError(f"{path}: no such weights file")
        if sha256_file(path) != want:
            raise InitError(f"{path}: sha256 differs from {card_path.name}'s: the file is corrupt or "
                            "was replaced; reinstall the package or rebuild it (make foundation)")
    try:
        return checkpoint.load(path)
    except checkpoint.CheckpointError as exc:
        raise InitError(str(exc)) from None


def _encoder_weights(state: dict) -> tuple[dict, dict]:
    """(encoder weights, predictor weights) of a foundation or pre-training checkpoint."""
    model = state.get("model")
    if state.get("kind") not in ("foundation", "pretrain") or not isinstance(model, dict):
        raise InitError(f"expected a foundation or pre-training checkpoint, found {state.get('kind')!r}")
    enc = {k[len("target."):]: v for k, v in model.items() if k.startswith("target.")}
    pred = {k[len("predictor."):]: v for k, v in model.items() if k.startswith("predictor.")}
    return enc, pred


def resample_positions(pos: torch.Tensor, old: tuple[int, int, int], new: tuple[int, int, int]) -> torch.Tensor:
    """Learned positions (1, T*H*W, D) on the grid `old` -> on the grid `new` (trilinear)."""
    if tuple(old) == tuple(new):
        return pos
    d = pos.shape[-1]
    grid = pos.reshape(1, *old, d).permute(0, 4, 1, 2, 3)
    out = F.interpolate(grid, size=tuple(new), mode="trilinear", align_corners=False)
    return out.permute(0, 2, 3, 4, 1).reshape(1, -1, d)


def init_state(spec: str, recipe: Recipe) -> dict | None:
    """The JEPA state dict a run starts from ('scratch': None): the encoder's weights for both
    encoders, the predictor's, learned positions resampled to the recipe's token grid (the
    predictor's fixed sine-cosine positions are left out: the model has its own). InitError where
    the weights are missing, corrupt or of another model shape."""
    if spec == "scratch":
        return None
    path = FOUNDATION_DIR / WEIGHTS if spec == "foundation" else Path(spec)
    if spec == "foundation" and not path.is_file():
        raise InitError(f"{path}: the foundation weights are not in this install; reinstall the "
                        "package, or start from scratch (--init scratch)")
    state = _verified(path)
    saved = _saved_recipe(state, path)
    want, have = dataclasses.asdict(recipe.model), dataclasses.asdict(saved.model)
    differ = [k for k in SHAPE_KEYS if have[k] != want[k]]
    if differ:
        raise InitError(f"{path}: trained for another model ({', '.join(f'{k} {have[k]!r}' for k in differ)}; "
                        f"this recipe has {', '.join(repr(want[k]) for k in differ)})")
    enc, pred = _encoder_weights(state)
    if recipe.model.pred_pos == "sincos":  # fixed positions: the model computes its own grid's
        pred.pop("pos_embed", None)
    old = token_grid(saved.model, saved.clip)
    for weights in (enc, pred):
        for key in [k for k in weights if k.endswith("pos_embed") and weights[k].shape[1] == old[0] * old[1] * old[2]]:
            weights[key] = resample_positions(weights[key], old, token_grid(recipe.model, recipe.clip))
    out = {f"encoder.{k}": v for k, v in enc.items()}
    out.update({f"target.{k}": v for k, v in enc.items()})
    out.update({f"predictor.{k}": v for k, v in pred.items()})
    return out


def _saved_recipe(state: dict, path: Path) -> Recipe:
    """The recipe the weights were trained with, keys added since at their defaults."""
    try:
        return recipe_from_dict(state.get("recipe") or {})
    except (ConfigError, TypeError, ValueError) as exc:
        raise InitError(f"{path}: its recipe cannot be read ({one_line(exc, 120)})") from None


def start_encoder(recipe: Recipe) -> VideoViT | None:
    """The encoder a run's pre-training started from, frozen (None for 'scratch'): the report's
    yardstick of what pre-training on the user's clips added to it."""
    state = init_state(recipe.pretrain.init, recipe)
    if state is None:
        return None
    enc = VideoViT(recipe.model, recipe.clip)
    enc.load_state_dict({k[len("target."):]: v for k, v in state.items() if k.startswith("target.")})
    return enc.eval()
