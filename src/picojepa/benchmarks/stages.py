"""The benchmark's measurements as stages: `STAGES`, the one list that `run_benchmarks` runs in
order, that the report renders its sections and charts from, and that names the skippable stages
(`--skip`) and the chart files (`check_out`).

Each `Stage` says what it runs, the result keys it writes, the Markdown sections (each shown when
its key is in the result) and the PNG charts it brings to the report.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import onnxruntime as ort

from picojepa.core.console import progress as console_progress
from picojepa.train.recipe_file import recipe_from_dict

from . import decoding, inference, machine, memory, report
from .errors import BenchError
from .hetero import hetero_section
from .run import BenchConfig, BenchRun, ten_second_clips, vote_members
from .stats import ratio


class Section(NamedTuple):
    """A part of report.md: `render(result)` lines, shown where `key` is in the result."""

    key: str
    render: Callable[[dict], list[str]]


class Chart(NamedTuple):
    """A PNG of the report: `draw(result, axes)` into `file`, drawn where `key` is in the result."""

    key: str
    file: str
    draw: Callable[[dict, Any], None]


@dataclass(frozen=True)
class Stage:
    """One named measurement: `run(BenchRun)` writes `writes` into the result."""

    name: str
    run: Callable[[BenchRun], None]
    writes: tuple[str, ...]
    sections: tuple[Section, ...] = ()
    charts: tuple[Chart, ...] = ()


def stage_peak(run: BenchRun) -> None:
    run.result["peak"] = machine.matmul_peak(run.cfg.threads)


def stage_configurations(run: BenchRun) -> None:
    """a-f side by side, interleaved video by video."""
    cfg, members = run.cfg, vote_members()
    cfgs = [inference.onnx_config("fused", "a: this runtime, fused ensemble", cfg.bundle, "cpu", "fp32", cfg.threads)]
    if cfg.run_dir:
        from picojepa.export.bundle import export_bundle  # heavy (torch): off `picojepa-bench --help`'s path

        export_bundle(cfg.run_dir, run.tmp / "separate", members, layout="separate", max_verify=4)
        export_bundle(cfg.run_dir, run.tmp / "single", members[:1], max_verify=4)
        cfgs.append(inference.onnx_config("separate", f"b: {len(members)} members, {len(members)} ONNX "
                                          "sessions", run.tmp / "separate", "cpu", "fp32", cfg.threads))
        cfgs.append(inference.onnx_config("single", "c: one member alone", run.tmp / "single", "cpu",
                                          "fp32", cfg.threads))
        cfgs.append(inference.eager_config(cfg.run_dir, members, cfg.threads))
    variants = sorted({g.variant for g in run.bundle.graphs} - {"fp32"})
    for var in variants:
        cfgs.append(inference.onnx_config(f"fused_{var}", f"f: fused, {var}", cfg.bundle, "cpu", var, cfg.threads))
    if "CUDAExecutionProvider" in ort.get_available_providers():
        gpu = machine.gpu_name() or "GPU"
        for var in ["fp32", *variants]:
            cfgs.append(inference.onnx_config(f"fused_{var}_cuda", f"f: fused, {var}, CUDA ({gpu})",
                                              cfg.bundle, "cuda", var, cfg.threads))
    run.bad = inference.run_rounds(cfgs, run.decode, cfg.videos, cfg.rounds)
    if cfg.videos and not run.ok_videos:
        raise BenchError(f"none of the {len(cfg.videos)} videos could be decoded: nothing to measure "
                         f"(first: {run.bad[0]})")
    run.result["failed_videos"] = run.bad
    run.result["configs"] = {c.name: inference.summary(c) for c in cfgs}


def stage_batching(run: BenchRun) -> None:
    run.result["batching"] = inference.batched_throughput(run.cfg.bundle, run.ok_videos, "cpu",
                                                          run.cfg.threads, run.cfg.batch, run.decode)


def stage_startup_memory(run: BenchRun) -> None:
    cfg, videos = run.cfg, run.ok_videos[:16]
    run.result["startup"] = inference.import_and_load(cfg.bundle, cfg.threads)
    rss = {"fused": inference.peak_rss("fused", cfg.bundle, None, videos, cfg.threads)}
    if cfg.run_dir:
        rss["separate"] = inference.peak_rss("separate", run.tmp / "separate", None, videos, cfg.threads)
        rss["single"] = inference.peak_rss("single", run.tmp / "single", None, videos, cfg.threads)
        rss["eager4"] = inference.peak_rss("eager4", cfg.bundle, cfg.run_dir, videos, cfg.threads)
    run.result["peak_rss_mb"] = rss


def stage_process_per_model(run: BenchRun) -> None:
    run.result["process_per_model"] = inference.process_per_model(
        run.cfg.run_dir, run.ok_videos[:run.cfg.process_per_model_videos], run.cfg.threads, vote_members())


def stage_compute(run: BenchRun) -> None:
    from .compute import compute_figures  # heavy (torch): off `picojepa-bench --help`'s path

    run.result["compute"] = compute_figures(run.bundle, run.cfg.bundle, run.result["peak"]["gflops"])


def stage_paper_size(run: BenchRun) -> None:
    from . import paper_size  # heavy (torch): off `picojepa-bench --help`'s path

    run.result["paper_size"] = {
        "encoder": paper_size.encoder_compute(run.result["peak"]["gflops"], run.cfg.threads),
        "pretraining": paper_size.pretrain_side_by_side()}


def stage_decoding(run: BenchRun) -> None:
    spec, files, rounds = run.bundle.clip, run.cfg.decode_videos, max(3, run.cfg.rounds)
    d = decoding.decode_report(files, spec, rounds)
    target = next((p for p in files if p.name == "test__mmaction2-tests.mp4"), files[0])
    d["by_resolution"] = decoding.by_resolution(target, spec)
    d["by_keyframe_interval"] = decoding.by_keyframe_interval(target, spec)
    d["placement"] = decoding.placement_study(ten_second_clips(files), spec, rounds)
    run.result["decoding"] = d


def stage_decode_share(run: BenchRun) -> None:
    from .compute import decode_share  # heavy (torch): off `picojepa-bench --help`'s path

    run.result["decode_share"] = decode_share(run.cfg.bundle, ten_second_clips(run.cfg.decode_videos),
                                              run.cfg.threads, run.cfg.rounds)


def stage_placement_accuracy(run: BenchRun) -> None:
    from .compute import placement_accuracy  # heavy (torch): off `picojepa-bench --help`'s path

    run.result["placement_accuracy"] = placement_accuracy(run.cfg.bundle, run.ok_videos)


def stage_prefetch(run: BenchRun) -> None:
    run.result["prefetch"] = inference.prefetch_overlap(
        run.cfg.bundle, {"bench videos": run.ok_videos[:24],
                         "decoding set (longer, larger)": [str(p) for p in run.cfg.decode_videos]},
        run.cfg.threads, max(3, run.cfg.rounds))


def stage_training(run: BenchRun) -> None:
    from .train_speed import pretrain_throughput  # heavy (torch): off `picojepa-bench --help`'s path

    run.result["training"] = pretrain_throughput(recipe_from_dict(run.bundle.recipe))


def stage_hetero(run: BenchRun) -> None:
    cfg = run.cfg
    run.result["hetero"] = hetero_section(cfg.bundle, cfg.hetero, run.ok_videos, cfg.rounds, cfg.threads,
                                          run.tmp)


def stage_long_batch(run: BenchRun) -> None:
    run.result["memory"] = memory.flat_memory(run.cfg.bundle, run.ok_videos, run.cfg.many, run.cfg.threads)


STAGES = (
    Stage("peak", stage_peak, ("peak",)),
    # configuration e, the original's process per model, is measured by its own stage further on
    # (slow, and it needs --run), but its line belongs under this stage's table and in its chart
    Stage("configurations", stage_configurations, ("failed_videos", "configs"),
          (Section("configs", report._configs), Section("process_per_model", report._process_per_model)),
          (Chart("configs", "latency.png", report._latency_chart),
           Chart("configs", "stages.png", report._stages_chart))),
    Stage("batching", stage_batching, ("batching",), (Section("batching", report._throughput),)),
    Stage("startup", stage_startup_memory, ("startup", "peak_rss_mb"), (Section("startup", report._startup),)),
    Stage("process_per_model", stage_process_per_model, ("process_per_model",)),
    Stage("compute", stage_compute, ("compute",), (Section("compute", report._compute),),
          (Chart("compute", "peak.png", report._peak_chart),)),
    Stage("paper_size", stage_paper_size, ("paper_size",), (Section("paper_size", report._paper_size),)),
    Stage("decoding", stage_decoding, ("decoding",), (Section("decoding", report._decoding),)),
    Stage("decode_share", stage_decode_share, ("decode_share",), (Section("decode_share", report._decode_share),)),
    Stage("placement_accuracy", stage_placement_accuracy, ("placement_accuracy",),
          (Section("placement_accuracy", report._placement_accuracy),)),
    Stage("prefetch", stage_prefetch, ("prefetch",), (Section("prefetch", report._prefetch),)),
    Stage("training", stage_training, ("training",), (Section("training", report._training),)),
    Stage("hetero", stage_hetero, ("hetero",), (Section("hetero", report._hetero),)),
    Stage("long_batch", stage_long_batch, ("memory",), (Section("memory", report._memory),),
          (Chart("memory", "memory.png", report._memory_chart),)),
)
STAGE_NAMES = tuple(s.name for s in STAGES)
CHART_FILES = tuple(c.file for s in STAGES for c in s.charts)


def run_benchmarks(cfg: BenchConfig) -> dict:
    """Run every stage of `STAGES` in order into one result; write report.{json,md} and charts."""
    run = BenchRun.open(cfg)
    bar = console_progress(total=len(STAGES), desc="bench", disable=not cfg.progress)
    try:
        for stage in STAGES:
            bar.set_postfix_str(stage.name)
            why_not = run.skip_reason(stage.name)
            if why_not:
                run.result["skipped"][stage.name] = why_not
            else:
                stage.run(run)
            bar.update()
        bar.close()
        r = run.result
        r["headline"] = headline(r)
        r["targets"] = report.targets(r)
        (cfg.out / "report.json").write_text(json.dumps(r, indent=1, default=str))
        report.write(r, cfg.out, STAGES)
    finally:  # the temporary bundles go, whether the benchmark finished or failed
        shutil.rmtree(run.tmp, ignore_errors=True)
    return run.result


def headline(r: dict) -> dict:
    cf = r.get("configs", {})
    per_model = r.get("process_per_model", {}).get("total", {})
    share = r.get("decode_share", {})
    return {
        "fused_over_single": ratio(cf["fused"]["total"], cf["single"]["total"]) if "single" in cf else None,
        "process_per_model_over_fused": ratio(per_model, cf["fused"]["total"]) if per_model and cf else None,
        "eager4_over_fused": ratio(cf["eager4"]["total"], cf["fused"]["total"]) if "eager4" in cf else None,
        "decode_share": share.get("exact", {}).get("share"),
        "decode_share_keyframe": share.get("keyframe", {}).get("share"),
        "e2e_p50_ms": share.get("exact", {}).get("total_ms_p50"),
        "e2e_p50_ms_keyframe": share.get("keyframe", {}).get("total_ms_p50"),
        "fraction_of_peak": r.get("compute", {}).get("fraction_of_peak"),
        "hetero_over_fused_inference": r.get("hetero", {}).get("inference_ratio_hetero_vs_homogeneous"),
    }
