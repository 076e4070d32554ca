"""Variants of a verified fp32 bundle: the transformer-optimised fp32 graph, fp16, dynamic int8.

Each is measured against the PyTorch reference on the same decoded clips, and against the fp32
graph for speed, and is kept only when it pays; what was tried and why it was (not) kept goes into
verification.json. They work on the bundle's temporary directory before it is renamed into place.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from picojepa.runtime.ensemble import Ensemble

from .verify import compare, median_latencies_ms, ort_logits, passes

log = logging.getLogger(__name__)
FP16_TOLERANCE = 1e-2  # max |logit difference| of an fp16 graph against fp32 PyTorch


class Ctx:
    """What every variant needs: the bundle being built and the fp32 reference on its clips."""

    def __init__(self, tmp: Path, manifest: dict, write_manifest, fp32: Ensemble, ref: np.ndarray,
                 clips: np.ndarray, names: list[str], vote_idx: list[int], tolerance: float):
        self.tmp, self.manifest, self.write_manifest = tmp, manifest, write_manifest
        self.tolerance = tolerance
        self.fp32, self.ref, self.clips, self.names, self.vote_idx = fp32, ref, clips, names, vote_idx

    def fp32_graphs(self) -> list[dict]:
        return [g for g in self.manifest["graphs"] if g["variant"] == "fp32"]

    def add(self, variant: str, files: dict[str, str]) -> list[dict]:
        """Register `files` ({fp32 file: new file}) as graphs of `variant`; returns the entries."""
        new = [{"file": files[g["file"]], "members": g["members"], "variant": variant}
               for g in self.fp32_graphs()]
        self.manifest["graphs"] += new
        self.write_manifest(self.tmp, self.manifest)
        return new

    def drop(self, variant: str) -> None:
        for g in [g for g in self.manifest["graphs"] if g["variant"] == variant]:
            (self.tmp / g["file"]).unlink(missing_ok=True)
        self.manifest["graphs"] = [g for g in self.manifest["graphs"] if g["variant"] != variant]
        self.write_manifest(self.tmp, self.manifest)


def optimise(ctx: Ctx, heads: int, hidden: int) -> dict:
    """onnxruntime's transformer optimiser (LayerNorm, GELU, attention fusion) on every fp32 graph;
    the optimised graph replaces the fp32 one only when it is verified at the fp32 tolerance and
    at least 3 % faster on the CPU provider (medians, interleaved)."""
    from onnxruntime.transformers.optimizer import optimize_model

    files, fused = {}, {}
    for g in ctx.fp32_graphs():
        model = optimize_model(str(ctx.tmp / g["file"]), model_type="vit", num_heads=heads,
                               hidden_size=hidden, opt_level=1)
        stats = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
        fused = {k: fused.get(k, 0) + v for k, v in stats.items()}
        files[g["file"]] = g["file"].replace(".onnx", ".opt.onnx")
        model.save_model_to_file(str(ctx.tmp / files[g["file"]]))
    new = ctx.add("fp32-opt", files)
    opt = Ensemble.load(ctx.tmp, provider="cpu", variant="fp32-opt")
    res = compare(ctx.ref, ort_logits(opt, ctx.clips), ctx.names, ctx.vote_idx, ctx.tolerance)
    base, fast = median_latencies_ms([ctx.fp32, opt], ctx.clips[:1])
    res |= {"fused_operators": fused, "latency_ms_fp32": base, "latency_ms_optimised": fast,
            "speedup": base / fast,
            "attention_fused": bool(fused.get("Attention") or fused.get("MultiHeadAttention"))}
    verified = passes(res)
    res["kept"] = verified and res["speedup"] >= 1.03
    if res["kept"]:
        for g in new:  # the optimised graph becomes the fp32 graph, under the fp32 file name
            fp32_file = next(k for k, v in files.items() if v == g["file"])
            (ctx.tmp / g["file"]).replace(ctx.tmp / fp32_file)
        ctx.manifest["graphs"] = [g for g in ctx.manifest["graphs"] if g not in new]
        ctx.manifest["optimised"] = {"applied": fused, "by": "onnxruntime.transformers.optimizer"}
        ctx.write_manifest(ctx.tmp, ctx.manifest)
        ctx.fp32 = Ensemble.load(ctx.tmp, provider="cpu")
    else:
        res["reason"] = ("not verified at the fp32 tolerance" if not verified else
                         f"only {res['speedup']:.2f}x the plain graph's speed") + ": not kept"
        ctx.drop("fp32-opt")
    return res


def fp16(ctx: Ctx) -> dict:
    """Weights and activations in fp16, inputs and outputs kept fp32 (the runtime feeds fp32).
    Verified on the CPU provider here, and on CUDA where onnxruntime really has it; shipped when
    every check that could run passed."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    files = {}
    for g in ctx.fp32_graphs():
        files[g["file"]] = g["file"].replace(".onnx", ".fp16.onnx")
        model = convert_float_to_float16(onnx.load(str(ctx.tmp / g["file"])), keep_io_types=True)
        onnx.save(model, str(ctx.tmp / files[g["file"]]))
    ctx.add("fp16", files)
    res: dict = {"tolerance": FP16_TOLERANCE, "providers": {}}
    ok = True
    for provider in ("cpu", "cuda"):
        try:
            ens = Ensemble.load(ctx.tmp, provider=provider, variant="fp16")
        except Exception as exc:  # noqa: BLE001 - recorded: CUDA absent, or no fp16 kernel
            res["providers"][provider] = {"verified": None, "reason": " ".join(str(exc).split())[:200]}
            continue
        r = compare(ctx.ref, ort_logits(ens, ctx.clips), ctx.names, ctx.vote_idx, FP16_TOLERANCE)
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


def int8(ctx: Ctx, paths: list[str], labels: list[int]) -> dict:
    """Dynamic int8 quantisation (QUInt8 weights); shipped only when as accurate and faster."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    files = {}
    for g in ctx.fp32_graphs():
        files[g["file"]] = g["file"].replace(".onnx", ".int8.onnx")
        quantize_dynamic(str(ctx.tmp / g["file"]), str(ctx.tmp / files[g["file"]]),
                         weight_type=QuantType.QUInt8)
    ctx.add("int8", files)
    q = Ensemble.load(ctx.tmp, provider="cpu", variant="int8")
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
    worse, slower = lost > 1.0, res["speedup"] < 1.1
    res["shipped"] = not (worse or slower)
    if not res["shipped"]:
        why = [w for w, c in ((f"loses {lost:.1f} accuracy points", worse),
                              (f"is only {res['speedup']:.2f}x the fp32 speed", slower)) if c]
        res["reason"] = "int8 " + " and ".join(why) + ": not shipped"
        ctx.drop("int8")
    return res
