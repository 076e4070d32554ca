"""Pre-training clips/s: this implementation (context encoder over the visible tokens only)
against the original formulation (context encoder over every token), same recipe, same run.

Both models take the real optimisation step (`pretrain.train_step`), alternating step by step on
the same batches and masks so that drift in the machine's speed hits both alike. Clip content
does not change the compute, so the batches are random tensors of the recipe's clip shape.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from picojepa.train.config import Recipe
from picojepa.train.masking import batch_masks
from picojepa.train.pretrain import build, make_optimizer, train_step

from .stats import summarize, turned


def pretrain_throughput(recipe: Recipe, steps: int = 12, warmup: int = 2) -> dict:
    cfg = recipe.pretrain
    models = {name: build(recipe, context_all_tokens=all_tokens)
              for name, all_tokens in (("visible_only", False), ("all_tokens", True))}
    opts = {name: make_optimizer(m, cfg) for name, m in models.items()}
    grid = models["visible_only"].encoder.grid
    gen = torch.Generator().manual_seed(0)
    times = {name: [] for name in models}
    for step in range(warmup + steps):
        clips = torch.randn((cfg.batch_size, *recipe.clip.input_shape), generator=gen)
        ctx, tgt = batch_masks(cfg.mask, grid, cfg.mask_ratio,
                               [step * cfg.batch_size + i for i in range(cfg.batch_size)])
        for name in turned(models, step):
            t0 = time.perf_counter()
            train_step(models[name], models[name], opts[name], clips, ctx, tgt, cfg)
            if step >= warmup:
                times[name].append((time.perf_counter() - t0) * 1e3)
    out = {"batch_size": cfg.batch_size, "steps": steps, "tokens": models["visible_only"].encoder.num_tokens,
           "context_tokens": int(ctx.shape[1])}
    for name, t in times.items():
        s = summarize(t)
        out[name] = {"step_ms": s, "clips_per_s": cfg.batch_size / (s["p50"] * 1e-3)}
    out["ratio"] = out["visible_only"]["clips_per_s"] / out["all_tokens"]["clips_per_s"]
    out["step_ratio_spread"] = float(np.std(np.array(times["all_tokens"]) / np.array(times["visible_only"])))
    return out
