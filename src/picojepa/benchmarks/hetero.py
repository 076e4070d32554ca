"""A heterogeneous bundle (members with different encoders) beside the fused homogeneous bundle
and beside its own largest graph alone: latency stage by stage, interleaved video by video in one
run, and the peak RSS of each in a fresh process (`picojepa-bench --hetero BUNDLE`)."""
from __future__ import annotations

import shutil
from pathlib import Path

from picojepa.core.bundle import Manifest, load_bundle
from picojepa.runtime.decoding import decode_clips
from picojepa.train.recipe_file import recipe_from_dict

from . import inference
from .errors import BenchError


def _encoder_flops(bundle, graph) -> float:
    """FLOPs of one clip through the graph's encoder, from its first member's recipe (by file
    size where the manifest has no recipes: an older bundle)."""
    from .flops import formula  # heavy (torch): off `picojepa-bench --help`'s path

    recipes = bundle.member_recipes
    if not recipes:
        return float(graph.path.stat().st_size)
    r = recipe_from_dict(recipes[graph.members[0]])
    return float(formula(r.model, bundle.clip, len(bundle.classes), len(graph.members))["total"])


def largest_alone(root: Path, out: Path) -> tuple[Path, list[str]]:
    """A bundle of `root`'s largest fp32 graph (most FLOPs per clip) and only its members."""
    b = load_bundle(root)
    g = max(b.graphs_of("fp32"), key=lambda g: _encoder_flops(b, g))
    members = list(g.members)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(g.path, out / g.path.name)
    Manifest.of(b).only(g.path.name).write(out)
    return out, members


def hetero_section(homogeneous: Path, hetero: Path, videos: list[str], rounds: int, threads: int,
                   tmp: Path) -> dict:
    hb, fb = load_bundle(hetero), load_bundle(homogeneous)
    if hb.clip != fb.clip:
        raise BenchError(f"{hetero}: its clip spec differs from {homogeneous}'s; the comparison "
                         "decodes one clip for all three")
    largest, members = largest_alone(hetero, tmp / "largest")
    graphs = len(hb.graphs_of("fp32"))
    bundles = {"homogeneous": homogeneous, "hetero": hetero, "largest": largest}
    labels = {"homogeneous": f"homogeneous, fused: {len(fb.members)} heads on one encoder",
              "hetero": f"heterogeneous: {len(hb.members)} members in {graphs} graphs",
              "largest": f"its largest graph alone ({', '.join(members)})"}
    cfgs = [inference.onnx_config(k, labels[k], p, "cpu", "fp32", threads) for k, p in bundles.items()]
    bad = inference.run_rounds(cfgs, lambda v: decode_clips(v, hb.clip), videos, rounds)
    ok = [v for v in videos if v not in bad][:16]
    rss = {k: inference.peak_rss("fused", p, None, ok, threads) for k, p in bundles.items()}
    out = {"configs": {c.name: inference.summary(c) for c in cfgs}, "peak_rss_mb": rss,
           "members": hb.members, "graphs": graphs, "largest_members": members,
           "member_recipes": {m: {k: r["model"][k] for k in ("depth", "patch_size", "embed_dim")}
                              for m, r in hb.member_recipes.items()}}
    p50 = {k: out["configs"][k]["inference"]["p50"] for k in bundles}
    out["inference_ratio_hetero_vs_homogeneous"] = p50["hetero"] / p50["homogeneous"]
    out["inference_ratio_hetero_vs_largest"] = p50["hetero"] / p50["largest"]
    return out
