"""The paper's model size beside the recipe's own: the published encoder (224x224, 8 frames,
ViT 192/8 layers/8 heads, 2x16x16 tubelets: 784 tokens; `Recipe()`'s defaults, which
configs/paper.yaml keeps) on onnxruntime, fp32 against dynamic int8, FLOPs against the measured
matrix-multiply peak; and its pre-training step against the original formulation.

The weights are random: speed does not depend on their values.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from picojepa.core.bundle import GRAPH_INPUT
from picojepa.export.onnx_graph import export_graph
from picojepa.export.variants import quantize_int8
from picojepa.train.config import Recipe
from picojepa.train.vit import VideoViT

from . import flops
from .stats import summarize
from .train_speed import pretrain_throughput


def encoder_compute(peak_gflops: float, threads: int, repeats: int = 10) -> dict:
    """fp32 and int8 encoder latency at batch 1 (interleaved), GFLOP/s and % of the peak."""
    recipe = Recipe()
    enc = VideoViT(recipe.model, recipe.clip)
    form = flops.formula(recipe.model, recipe.clip, classes=1, heads=0)
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    x = np.random.default_rng(0).standard_normal((1, *recipe.clip.input_shape)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_graph(enc, recipe.clip, Path(tmp) / "paper.onnx", 17, {}, outputs=("tokens",))
        int8 = quantize_int8(fp32, Path(tmp) / "paper.int8.onnx")
        sessions = {name: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
                    for name, p in (("fp32", fp32), ("int8", int8))}
        times: dict[str, list[float]] = {k: [] for k in sessions}
        for r in range(repeats + 2):  # two warm-up rounds
            for name, sess in sessions.items():
                t0 = time.perf_counter()
                sess.run(None, {GRAPH_INPUT: x})
                if r >= 2:
                    times[name].append((time.perf_counter() - t0) * 1e3)
    out = {"tokens": form["tokens"], "encoder_gflop": form["encoder"] / 1e9,
           "attention_gflop": form["attention"] / 1e9, "peak_gflops": peak_gflops}
    for name, t in times.items():
        s = summarize(t)
        gflops = form["encoder"] / (s["p50"] * 1e-3) / 1e9
        out[name] = {"ms": s, "gflops": gflops, "fraction_of_peak": gflops / peak_gflops}
    out["int8_speedup"] = out["fp32"]["ms"]["p50"] / out["int8"]["ms"]["p50"]
    return out


def pretrain_side_by_side(batch_size: int = 4, steps: int = 3) -> dict:
    """Pre-training clips/s at the paper's size: visible-only context against the original's
    context over every token (the original code's way; the figures are in docs/results.md)."""
    recipe = Recipe()
    recipe = replace(recipe, pretrain=replace(recipe.pretrain, batch_size=batch_size))
    return pretrain_throughput(recipe, steps=steps, warmup=1)
