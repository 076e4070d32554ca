"""Variants of a verified fp32 bundle: the transformer-optimised fp32 graph, fp16, dynamic int8.

Each is measured against the PyTorch reference on the same decoded clips, and against the fp32
graph for speed, and is kept only when it pays; what was tried and why it was (not) kept goes into
verification.json. They work on the bundle's temporary directory before it is renamed into place.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import onnx

from picojepa.core.bundle import GraphEntry, Manifest
from picojepa.core.console import one_line
from picojepa.runtime.ensemble import Ensemble

from .config import ExportConfig
from .verify import compare, median_latencies_ms, ort_logits, passes

if TYPE_CHECKING:
    from picojepa.train.config import ModelConfig

log = logging.getLogger(__name__)


@dataclass
class BundleDraft:
    """The bundle being built in its temporary folder, with what every variant is measured
    against: the fp32 ensemble and PyTorch's logits on the verification clips."""

    tmp: Path
    manifest: Manifest
    fp32: Ensemble
    ref: np.ndarray
    clips: np.ndarray
    names: list[str]
    vote_idx: list[int]
    cfg: ExportConfig
    videos: list[str] = field(default_factory=list)
    fp32_check: dict = field(default_factory=dict)

    def fp32_graphs(self) -> list[GraphEntry]:
        return self.manifest.graphs_of("fp32")

    def add(self, variant: str, files: dict[str, str]) -> list[GraphEntry]:
        """Register `files` ({fp32 file: new file}) as graphs of `variant`; returns the entries."""
        new = [GraphEntry(files[g.file], list(g.members), variant) for g in self.fp32_graphs()]
        self.manifest.graphs += new
        self.manifest.write(self.tmp)
        return new

    def drop(self, variant: str) -> None:
        for g in self.manifest.graphs_of(variant):
            (self.tmp / g.file).unlink(missing_ok=True)
        self.manifest.graphs = [g for g in self.manifest.graphs if g.variant != variant]
        self.manifest.write(self.tmp)


def optimise(ctx: BundleDraft, model_of: Callable[[GraphEntry], "ModelConfig"]) -> dict:
    """onnxruntime's transformer optimiser (LayerNorm, GELU, attention fusion) on every fp32 graph,
    each with its own encoder's heads and width (`model_of(graph entry)`); the optimised graphs
    replace the fp32 ones only when verified at the fp32 tolerance and together at least
    `optimiser_min_speedup` faster on the CPU provider (medians, interleaved)."""
    from onnxruntime.transformers.optimizer import optimize_model  # heavy (~1 s): only where the optimiser runs

    files, fused = {}, {}
    for g in ctx.fp32_graphs():
        enc = model_of(g)
        model = optimize_model(str(ctx.tmp / g.file), model_type="vit", num_heads=enc.heads,
                               hidden_size=enc.embed_dim, opt_level=1)
        stats = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
        fused = {k: fused.get(k, 0) + v for k, v in stats.items()}
        files[g.file] = g.file.replace(".onnx", ".opt.onnx")
        model.save_model_to_file(str(ctx.tmp / files[g.file]))
    new = ctx.add("fp32-opt", files)
    opt = Ensemble.load(ctx.tmp, provider="cpu", variant="fp32-opt", draft=True)
    res = compare(ctx.ref, ort_logits(opt, ctx.clips), ctx.names, ctx.vote_idx, ctx.cfg.tolerance)
    base, fast = median_latencies_ms([ctx.fp32, opt], ctx.clips[:1])
    res |= {"fused_operators": fused, "latency_ms_fp32": base, "latency_ms_optimised": fast,
            "speedup": base / fast,
            "attention_fused": bool(fused.get("Attention") or fused.get("MultiHeadAttention"))}
    verified = passes(res)
    res["kept"] = verified and res["speedup"] >= ctx.cfg.optimiser_min_speedup
    if res["kept"]:
        for g in new:  # the optimised graph becomes the fp32 graph, under the fp32 file name
            fp32_file = next(k for k, v in files.items() if v == g.file)
            (ctx.tmp / g.file).replace(ctx.tmp / fp32_file)
        ctx.manifest.graphs = [g for g in ctx.manifest.graphs if g not in new]
        ctx.manifest.optimised = {"applied": fused, "by": "onnxruntime.transformers.optimizer"}
        ctx.manifest.write(ctx.tmp)
        ctx.fp32 = Ensemble.load(ctx.tmp, provider="cpu", draft=True)
    else:
        res["reason"] = ("not verified at the fp32 tolerance" if not verified else
                         f"only {res['speedup']:.2f}x the plain graph's speed") + ": not kept"
        ctx.drop("fp32-opt")
    return res


def fp16(ctx: BundleDraft) -> dict:
    """Weights and activations in fp16, inputs and outputs kept fp32 (the runtime feeds fp32).
    Verified on the CPU provider here, and on CUDA where onnxruntime really has it; shipped when
    every check that could run passed."""
    from onnxruntime.transformers.float16 import convert_float_to_float16  # heavy (~1 s): only --fp16

    files = {}
    for g in ctx.fp32_graphs():
        files[g.file] = g.file.replace(".onnx", ".fp16.onnx")
        model = convert_float_to_float16(onnx.load(str(ctx.tmp / g.file)), keep_io_types=True)
        onnx.save(model, str(ctx.tmp / files[g.file]))
    ctx.add("fp16", files)
    res: dict = {"tolerance": ctx.cfg.fp16_tolerance, "providers": {}}
    ok = True
    for provider in ("cpu", "cuda"):
        try:
            ens = Ensemble.load(ctx.tmp, provider=provider, variant="fp16", draft=True)
        except Exception as exc:  # noqa: BLE001 - recorded: CUDA absent, or no fp16 kernel
            res["providers"][provider] = {"verified": None, "reason": one_line(exc, 200)}
            continue
        r = compare(ctx.ref, ort_logits(ens, ctx.clips), ctx.names, ctx.vote_idx, ctx.cfg.fp16_tolerance)
        r["verified"] = passes(r)
        ok &= r["verified"]
        res["providers"][provider] = r
    ran = [p for p, r in res["providers"].items() if r["verified"] is not None]
    res["shipped"] = ok and bool(ran)
    res["cuda_verified"] = bool(res["providers"].get("cuda", {}).get("verified"))
    if not res["shipped"]:
        res["reason"] = "fp16 " + ("could not run on any provider" if not ran else
                                   "differs from PyTorch beyond its tolerance") + ": not shipped"
        ctx.drop("fp16")
    return res


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantisation (QUInt8 weights) of an ONNX file. onnxruntime's advice to
    pre-process the model first is logged on every call; it is not ours to act on, so it is
    kept off stderr."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # heavy: only for int8 variants

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8)
    finally:
        root.setLevel(level)
    return dst


def int8(ctx: BundleDraft, paths: list[str], labels: list[int]) -> dict:
    """Dynamic int8 quantisation (QUInt8 weights); shipped only when as accurate and faster."""
    files = {}
    for g in ctx.fp32_graphs():
        files[g.file] = g.file.replace(".onnx", ".int8.onnx")
        quantize_int8(ctx.tmp / g.file, ctx.tmp / files[g.file])
    ctx.add("int8", files)
    q = Ensemble.load(ctx.tmp, provider="cpu", variant="int8", draft=True)
    res = compare(ctx.ref, ort_logits(q, ctx.clips), ctx.names, ctx.vote_idx, None)
    res["latency_ms_fp32"], res["latency_ms_int8"] = median_latencies_ms([ctx.fp32, q], ctx.clips[:1])
    res["speedup"] = res["latency_ms_fp32"] / res["latency_ms_int8"]
    if paths:
        acc = {}
        for name, ens in (("fp32", ctx.fp32), ("int8", q)):
            preds = [p.index for p in ens.predict_many(paths)]
            acc[name] = float(np.mean([a == b for a, b in zip(preds, labels)]) * 100)
        res["vote_accuracy_fp32"], res["vote_accuracy_int8"] = acc["fp32"], acc["int8"]
    lost = res.get("vote_accuracy_fp32", 0) - res.get("vote_accuracy_int8", 0)
    worse, slower = lost > ctx.cfg.int8_max_accuracy_loss, res["speedup"] < ctx.cfg.int8_min_speedup
    res["shipped"] = not (worse or slower)
    if not res["shipped"]:
        why = [w for w, c in ((f"loses {lost:.1f} accuracy points", worse),
                              (f"is only {res['speedup']:.2f}x the fp32 speed", slower)) if c]
        res["reason"] = "int8 " + " and ".join(why) + ": not shipped"
        ctx.drop("int8")
    return res
