"""`picojepa-bench [VIDEOS...] --bundle DIR --run DIR --out DIR`: the benchmark report.

Measures on the same videos in one run: the runtime's configurations side by side (fused,
separate, single member, eager PyTorch, the original's process-per-model way, int8/fp16 variants,
every provider), stage times, batching, peak memory, import and load times, FLOPs against the
measured matrix-multiply peak, decoding choices, pre-training throughput, and memory over a long
batch. Writes report.json, report.md and PNG charts under --out.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import click

from picojepa.runtime.console import fail, one_line_errors, setup_logging, warn
from picojepa.runtime.errors import PicoJepaError


class BenchError(PicoJepaError):
    """The benchmark cannot run with what it was given."""


def _videos(inputs: tuple[str, ...]) -> list[str]:
    from picojepa.runtime.cli import expand

    out = expand(inputs)
    missing = [v for v in out if not Path(v).is_file()]
    for v in missing:
        warn(f"{v}: not a file, left out of the benchmark")
    return [v for v in out if Path(v).is_file()]


@click.command()
@click.argument("videos", nargs=-1)
@click.option("--bundle", type=click.Path(path_type=Path),
              default=lambda: os.environ.get("PICOJEPA_BUNDLE", "bundles/demo"), show_default="bundles/demo",
              help="The bundle to measure (fused layout).")
@click.option("--run", "run_dir", type=click.Path(path_type=Path), default=None,
              help="The training run the bundle came from: needed for the separate, single, eager "
                   "and original-style configurations and the training benchmark.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/bench"), show_default=True)
@click.option("--decode-videos", multiple=True,
              help="Real files or folders for the decoding study (default: the VIDEOS).")
@click.option("--rounds", default=5, show_default=True, type=click.IntRange(1, 100),
              help="Timed rounds over the videos per configuration (one more is warm-up).")
@click.option("--seed-videos", default=3, show_default=True, type=click.IntRange(0, 50),
              help="Videos for the original's process-per-model way (slow).")
@click.option("--many", default=1000, show_default=True, type=click.IntRange(0),
              help="Length of the long batch whose memory is traced (0: skip).")
@click.option("--threads", default=0, show_default=True, type=click.IntRange(0),
              help="Threads for onnxruntime and PyTorch (0: onnxruntime's default, all cores).")
@click.option("--batch", default=8, show_default=True, type=click.IntRange(1))
@click.option("--network", is_flag=True,
              help="Only the edge-network section: a local nats-server and 1, 2, 4 member nodes "
                   "against the fused bundle (needs --run); writes network.{json,md} under --out.")
@click.option("--no-progress", is_flag=True)
@click.option("-v", "--verbose", is_flag=True)
@one_line_errors
def main(videos, bundle, run_dir, out, decode_videos, rounds, seed_videos, many, threads, batch,
         network, no_progress, verbose):
    """Measure the runtime and its alternatives on VIDEOS (files, folders or globs)."""
    setup_logging(verbose)
    vids = _videos(videos)
    if not vids:
        fail("no video to benchmark: give files or folders (e.g. data/synth/infer)")
    if network:
        return network_section(bundle, run_dir, vids, out, rounds)
    dvids = [Path(v) for v in (_videos(decode_videos) if decode_videos else vids)]
    report = run_benchmarks(bundle, run_dir, vids, dvids, out, rounds, seed_videos, many, threads,
                            batch, not no_progress)
    h = report["headline"]
    click.echo("headline: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in h.items()), err=True)
    click.echo(f"report: {out / 'report.md'}", err=True)


def network_section(bundle: Path, run_dir: Path | None, videos: list[str], out: Path, rounds: int) -> dict:
    from . import network

    if run_dir is None or not (Path(run_dir) / "members").is_dir():
        raise BenchError("--network needs --run RUN_DIR (a training run) to export its member nodes from")
    result = network.network_report(bundle, run_dir, videos, rounds)
    out.mkdir(parents=True, exist_ok=True)
    (out / "network.json").write_text(json.dumps(result, indent=1))
    (out / "network.md").write_text(network.markdown(result))
    click.echo(network.markdown(result), err=True)
    return result


def run_benchmarks(bundle: Path, run_dir: Path | None, videos: list[str], decode_videos: list[Path],
                   out: Path, rounds: int, seed_videos: int, many: int, threads: int, batch: int,
                   progress: bool) -> dict:
    import torch
    from picojepa.runtime.console import progress as console_progress

    from picojepa.runtime.bundle import load_bundle
    from picojepa.runtime.ensemble import decode_clips

    from . import decoding, flops, inference, machine, memory, report as rep
    from .stats import ratio

    b = load_bundle(bundle)
    if b.manifest["layout"] != "fused":
        raise BenchError(f"{bundle}: the benchmark compares against a fused bundle; this one is "
                         f"{b.manifest['layout']!r} (export without --layout separate)")
    if run_dir is not None and not (Path(run_dir) / "members").is_dir():
        raise BenchError(f"{run_dir}: not a training run (no members/ folder)")
    if threads:
        torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    spec = b.clip
    steps = 9 + (2 if run_dir else 0)
    bar = console_progress(total=steps, desc="bench", disable=not progress)

    def stage(name: str):
        bar.set_postfix_str(name)

    result: dict = {"machine": machine.facts(threads or torch.get_num_threads()),
                    "bundle": str(bundle), "run": str(run_dir) if run_dir else None,
                    "videos": videos, "rounds": rounds, "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    stage("matmul peak")
    result["peak"] = machine.matmul_peak(threads)
    bar.update()

    stage("configurations")
    decode = lambda v: decode_clips(v, spec)  # noqa: E731
    cfgs = [inference.onnx_config("fused", "a: this runtime, fused ensemble", bundle, "cpu", "fp32", threads)]
    tmp = Path(tempfile.mkdtemp(prefix="picojepa-bench-"))
    try:
        if run_dir:
            from picojepa.export.bundle import export_bundle

            export_bundle(run_dir, tmp / "separate", ["1", "2", "3", "4"], layout="separate", max_verify=4)
            export_bundle(run_dir, tmp / "single", ["1"], max_verify=4)
            cfgs.append(inference.onnx_config("separate", "b: 4 members, 4 ONNX sessions",
                                              tmp / "separate", "cpu", "fp32", threads))
            cfgs.append(inference.onnx_config("single", "c: one member alone", tmp / "single", "cpu",
                                              "fp32", threads))
            cfgs.append(inference.eager_config(run_dir, ["1", "2", "3", "4"], threads))
        variants = sorted({g.variant for g in b.graphs} - {"fp32"})
        for var in variants:
            cfgs.append(inference.onnx_config(f"fused_{var}", f"f: fused, {var}", bundle, "cpu", var, threads))
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            gpu = machine.gpu_name() or "GPU"
            for var in ["fp32", *variants]:
                cfgs.append(inference.onnx_config(f"fused_{var}_cuda", f"f: fused, {var}, CUDA ({gpu})",
                                                  bundle, "cuda", var, threads))
        bad = inference.run_rounds(cfgs, decode, videos, rounds)
        result["failed_videos"] = bad
        result["configs"] = {c.name: inference.summary(c) for c in cfgs}
        bar.update()

        stage("batching")
        result["batching"] = inference.batched_throughput(bundle, [v for v in videos if v not in bad],
                                                          "cpu", threads, batch, decode)
        bar.update()

        stage("import/load/memory")
        result["startup"] = inference.import_and_load(bundle, threads)
        ok_videos = [v for v in videos if v not in bad][:16]
        result["peak_rss_mb"] = {"fused": inference.peak_rss("fused", bundle, None, ok_videos, threads)}
        if run_dir:
            result["peak_rss_mb"]["separate"] = inference.peak_rss("separate", tmp / "separate", None, ok_videos, threads)
            result["peak_rss_mb"]["single"] = inference.peak_rss("single", tmp / "single", None, ok_videos, threads)
            result["peak_rss_mb"]["eager4"] = inference.peak_rss("eager4", bundle, run_dir, ok_videos, threads)
        bar.update()

        if run_dir and seed_videos:
            stage("original's way")
            result["seed_style"] = inference.seed_style(run_dir, ok_videos[:seed_videos], threads,
                                                        ["1", "2", "3", "4"])
            bar.update()

        stage("flops")
        result["compute"] = compute_figures(b, bundle, result, flops)
        bar.update()

        stage("decoding")
        result["decoding"] = decoding.decode_report(decode_videos, spec, max(3, rounds))
        target = next((p for p in decode_videos if p.name == "test__mmaction2-tests.mp4"),
                      decode_videos[0] if decode_videos else None)
        if target is not None:
            result["decoding"]["by_resolution"] = decoding.by_resolution(target, spec)
            result["decoding"]["by_keyframe_interval"] = decoding.by_keyframe_interval(target, spec)
        bar.update()

        stage("decode share")
        result["decode_share"] = decode_share(cfgs[0], bundle, decode_videos, threads, rounds)
        bar.update()

        stage("prefetch")
        ok = [v for v in videos if v not in bad]
        result["prefetch"] = inference.prefetch_overlap(
            bundle, {"bench videos": ok[:24], "decoding set (longer, larger)": [str(p) for p in decode_videos]},
            threads, max(3, rounds))
        bar.update()

        if run_dir:
            stage("training")
            from picojepa.train.config import recipe_from_dict

            result["training"] = training_throughput(recipe_from_dict(b.manifest["recipe"]))
            bar.update()

        if many:
            stage(f"{many} videos")
            result["memory"] = memory.flat_memory(bundle, [v for v in videos if v not in bad], many, threads)
        bar.update()
        bar.close()

        cf = result["configs"]
        seed_ms = result.get("seed_style", {}).get("total", {})
        result["headline"] = {
            "fused_over_single": ratio(cf["fused"]["total"], cf["single"]["total"]) if "single" in cf else None,
            "seed_style_over_fused": ratio(seed_ms, cf["fused"]["total"]) if seed_ms else None,
            "eager4_over_fused": ratio(cf["eager4"]["total"], cf["fused"]["total"]) if "eager4" in cf else None,
            "decode_share": result["decode_share"]["share"],
            "fraction_of_peak": result["compute"]["fraction_of_peak"],
        }
        result["targets"] = rep.targets(result)
        (out / "report.json").write_text(json.dumps(result, indent=1, default=str))
        rep.write(result, out)
    finally:  # the temporary bundles go, whether the benchmark finished or failed
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def compute_figures(b, bundle: Path, result: dict, flops) -> dict:
    """FLOPs per clip (counted and by formula) and the encoder's achieved GFLOP/s against peak.
    The encoder alone is timed on onnxruntime with the runtime's session options."""
    import numpy as np

    from picojepa.runtime.ensemble import Ensemble
    from picojepa.train.config import recipe_from_dict
    from picojepa.train.vit import VideoViT

    from .stats import repeat_ms, summarize

    recipe = recipe_from_dict(b.manifest["recipe"])
    enc = VideoViT(recipe.model, recipe.clip)
    counted = flops.counted(enc, (1, *recipe.clip.input_shape))
    form = flops.formula(recipe.model, recipe.clip, len(b.classes), len(b.members))
    ens = Ensemble.load(bundle, provider="cpu")
    out = {"encoder_flops_counted": counted, "formula": form,
           "counted_matches_formula": abs(counted - form["encoder_without_attention"]) <= 0.01 * counted,
           "method": "encoder FLOPs from the config's formula (matrix products, 2 FLOPs per "
                     "multiply-add); torch.utils.flop_counter.FlopCounterMode's count of the real "
                     "module, which cannot see the fused CPU attention kernel, checks the rest"}
    for bs in (1, 8):
        x = np.random.default_rng(0).standard_normal((bs, *recipe.clip.input_shape)).astype(np.float32)
        t = summarize(repeat_ms(lambda: ens.member_probs(x), 20, warmup=3))
        out[f"batch{bs}_ms"] = t
        out[f"batch{bs}_gflops"] = bs * form["total"] / (t["p50"] * 1e-3) / 1e9
    best = max(out["batch1_gflops"], out["batch8_gflops"])
    out["achieved_gflops"] = best
    out["peak_gflops"] = result["peak"]["gflops"]
    out["fraction_of_peak"] = best / result["peak"]["gflops"]
    return out


def decode_share(fused_cfg, bundle: Path, decode_videos: list[Path], threads: int, rounds: int) -> dict:
    """(decode + preprocess) / end-to-end of the fused runtime on the ~10 s, ~340x256 clips of
    the decoding set (all of its files when none matches)."""
    import numpy as np

    from picojepa.runtime.ensemble import Ensemble

    ten = [p for p in decode_videos if p.name in ("test__mmaction2-tests.mp4", "video3__pytorch-android-demo.mp4")]
    chosen = ten or decode_videos
    ens = Ensemble.load(bundle, provider="cpu", threads=threads)
    shares, totals = [], []
    for _ in range(rounds + 1):
        for p in chosen:
            pred = ens.finish(ens.decode(p))
            if pred.error:
                continue
            t = pred.timings_ms
            shares.append((t["decode"] + t["preprocess"]) / t["total"])
            totals.append(t["total"])
    shares, totals = shares[len(chosen):], totals[len(chosen):]  # first round: warm-up
    return {"videos": [p.name for p in chosen], "share": float(np.median(shares)) if shares else None,
            "total_ms_p50": float(np.median(totals)) if totals else None,
            "which": "the 10 s clips of about 340x256" if ten else "all decoding files"}


def training_throughput(recipe) -> dict:
    from .train_speed import pretrain_throughput

    return pretrain_throughput(recipe)


if __name__ == "__main__":
    main()
