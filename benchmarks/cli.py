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
from dataclasses import dataclass, field
from pathlib import Path

import click

from picojepa.core.bundle import Bundle
from picojepa.core.console import examples, fail, one_line_errors, setup_logging, warn

from .errors import BenchError


def _videos(inputs: tuple[str, ...]) -> list[str]:
    from picojepa.runtime.cli import expand

    out = expand(inputs)
    missing = [v for v in out if not Path(v).is_file()]
    for v in missing:
        warn(f"{v}: not a file, left out of the benchmark")
    return [v for v in out if Path(v).is_file()]


@dataclass(frozen=True)
class BenchConfig:
    """What one `picojepa-bench` run measures, and how hard."""

    bundle: Path
    run_dir: Path | None
    videos: list[str]
    decode_videos: list[Path]
    out: Path
    rounds: int = 5
    process_per_model_videos: int = 3
    many: int = 1000
    threads: int = 0
    batch: int = 8
    skip: tuple[str, ...] = ()
    progress: bool = True
    hetero: Path | None = None  # a heterogeneous bundle to set beside the fused one


def check_out(out: Path) -> None:
    """The benchmark writes into a new or empty folder, or over its own earlier outputs; never
    into a training run or a folder of other files (BenchError before any work)."""
    from .report import CHARTS

    if out.exists() and not out.is_dir():
        raise BenchError(f"{out}: not a folder (--out)")
    if not out.is_dir() or not any(out.iterdir()):
        return
    report = out / "report.json"
    if report.is_file() and "headline" not in report.read_text(errors="replace"):
        raise BenchError(f"{out}: holds a report.json that is not a benchmark report (a training run's "
                         "would be overwritten); choose another --out")
    own = {"report.json", "report.md", "network.json", "network.md", "streams.json", "streams.md",
           *(c[1] for c in CHARTS)}
    other = sorted(p.name for p in out.iterdir() if p.name not in own)
    if other:
        raise BenchError(f"{out}: holds files that are not the benchmark's ({', '.join(other[:3])}); the "
                         "benchmark writes into a new folder or over its own earlier report (--out)")


@dataclass
class BenchRun:
    """The state the stages share: the bundle, a scratch folder, the videos that decoded, and
    the result being written."""

    cfg: BenchConfig
    bundle: Bundle
    tmp: Path
    result: dict
    bad: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, cfg: BenchConfig) -> "BenchRun":
        import torch

        from picojepa.core.bundle import load_bundle

        from . import machine

        b = load_bundle(cfg.bundle)
        if b.manifest["layout"] != "fused":
            raise BenchError(f"{cfg.bundle}: the benchmark compares against a fused bundle; this one is "
                             f"{b.manifest['layout']!r} (export without --layout separate)")
        if cfg.run_dir is not None and not (Path(cfg.run_dir) / "members").is_dir():
            raise BenchError(f"{cfg.run_dir}: not a training run (no members/ folder)")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        cfg.out.mkdir(parents=True, exist_ok=True)
        result = {"machine": machine.facts(cfg.threads or torch.get_num_threads()),
                  "bundle": str(cfg.bundle), "run": str(cfg.run_dir) if cfg.run_dir else None,
                  "videos": cfg.videos, "rounds": cfg.rounds,
                  "when": time.strftime("%Y-%m-%d %H:%M:%S"), "skipped": {}}
        return cls(cfg, b, Path(tempfile.mkdtemp(prefix="picojepa-bench-")), result)

    def decode(self, video: str):
        from picojepa.runtime.ensemble import decode_clips

        return decode_clips(video, self.bundle.clip)

    @property
    def ok_videos(self) -> list[str]:
        return [v for v in self.cfg.videos if v not in self.bad]

    def skip_reason(self, stage: str) -> str | None:
        """Why `stage` does not run in this benchmark (None: it runs)."""
        cfg = self.cfg
        if stage in cfg.skip:
            return "--skip"
        if stage in ("process_per_model", "training") and cfg.run_dir is None:
            return "needs --run (the training run's checkpoints)"
        if stage == "process_per_model" and not cfg.process_per_model_videos:
            return "--process-per-model-videos 0"
        if stage in ("decoding", "decode_share") and not cfg.decode_videos:
            return "no decoding videos"
        if stage == "hetero" and cfg.hetero is None:
            return "needs --hetero BUNDLE (a heterogeneous ensemble's bundle)"
        if stage == "long_batch" and not cfg.many:
            return "--many 0"
        if stage == "placement_accuracy" and not labelled(self.ok_videos, self.bundle.classes):
            return "the videos' folders are not the bundle's class names (no labels to score)"
        return None


def labelled(videos: list[str], classes) -> bool:
    return bool(videos) and all(Path(v).parent.name in classes for v in videos)


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


def streams_section(bundle: Path, videos: list[str], out: Path, threads: int) -> dict:
    from . import streams

    result = streams.streams_report(bundle, videos[0], threads=threads, labelled=[Path(v) for v in videos[1:]])
    out.mkdir(parents=True, exist_ok=True)
    (out / "streams.json").write_text(json.dumps(result, indent=1))
    (out / "streams.md").write_text(streams.markdown(result))
    click.echo(streams.markdown(result), err=True)
    return result


def run_benchmarks(cfg: BenchConfig) -> dict:
    """Run every stage of `STAGES` in order into one result; write report.{json,md} and charts."""
    from picojepa.core.console import progress as console_progress

    run = BenchRun.open(cfg)
    bar = console_progress(total=len(STAGES), desc="bench", disable=not cfg.progress)
    try:
        for name, stage in STAGES:
            bar.set_postfix_str(name)
            why_not = run.skip_reason(name)
            if why_not:
                run.result["skipped"][name] = why_not
            else:
                stage(run)
            bar.update()
        bar.close()
        r = run.result
        r["headline"] = headline(r)
        from . import report as rep

        r["targets"] = rep.targets(r)
        (cfg.out / "report.json").write_text(json.dumps(r, indent=1, default=str))
        rep.write(r, cfg.out)
    finally:  # the temporary bundles go, whether the benchmark finished or failed
        shutil.rmtree(run.tmp, ignore_errors=True)
    return run.result


def headline(r: dict) -> dict:
    from .stats import ratio

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


# -- the stages, in order ------------------------------------------------------------------------
def stage_peak(run: "BenchRun") -> None:
    from . import machine

    run.result["peak"] = machine.matmul_peak(run.cfg.threads)


def stage_configurations(run: "BenchRun") -> None:
    """a-f side by side, interleaved video by video."""
    from . import inference

    cfg, members = run.cfg, vote_members()
    cfgs = [inference.onnx_config("fused", "a: this runtime, fused ensemble", cfg.bundle, "cpu", "fp32", cfg.threads)]
    if cfg.run_dir:
        from picojepa.export.bundle import export_bundle

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
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        from . import machine

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


def stage_batching(run: "BenchRun") -> None:
    from . import inference

    run.result["batching"] = inference.batched_throughput(run.cfg.bundle, run.ok_videos, "cpu",
                                                          run.cfg.threads, run.cfg.batch, run.decode)


def stage_startup_memory(run: "BenchRun") -> None:
    from . import inference

    cfg, videos = run.cfg, run.ok_videos[:16]
    run.result["startup"] = inference.import_and_load(cfg.bundle, cfg.threads)
    rss = {"fused": inference.peak_rss("fused", cfg.bundle, None, videos, cfg.threads)}
    if cfg.run_dir:
        rss["separate"] = inference.peak_rss("separate", run.tmp / "separate", None, videos, cfg.threads)
        rss["single"] = inference.peak_rss("single", run.tmp / "single", None, videos, cfg.threads)
        rss["eager4"] = inference.peak_rss("eager4", cfg.bundle, cfg.run_dir, videos, cfg.threads)
    run.result["peak_rss_mb"] = rss


def stage_process_per_model(run: "BenchRun") -> None:
    from . import inference

    run.result["process_per_model"] = inference.process_per_model(
        run.cfg.run_dir, run.ok_videos[:run.cfg.process_per_model_videos], run.cfg.threads, vote_members())


def stage_compute(run: "BenchRun") -> None:
    from .compute import compute_figures

    run.result["compute"] = compute_figures(run.bundle, run.cfg.bundle, run.result["peak"]["gflops"])


def stage_paper_size(run: "BenchRun") -> None:
    from . import paper_size

    run.result["paper_size"] = {
        "encoder": paper_size.encoder_compute(run.result["peak"]["gflops"], run.cfg.threads),
        "pretraining": paper_size.pretrain_side_by_side()}


def stage_decoding(run: "BenchRun") -> None:
    from . import decoding

    spec, files, rounds = run.bundle.clip, run.cfg.decode_videos, max(3, run.cfg.rounds)
    d = decoding.decode_report(files, spec, rounds)
    target = next((p for p in files if p.name == "test__mmaction2-tests.mp4"), files[0])
    d["by_resolution"] = decoding.by_resolution(target, spec)
    d["by_keyframe_interval"] = decoding.by_keyframe_interval(target, spec)
    d["placement"] = decoding.placement_study(ten_second_clips(files), spec, rounds)
    run.result["decoding"] = d


def stage_decode_share(run: "BenchRun") -> None:
    from .compute import decode_share

    run.result["decode_share"] = decode_share(run.cfg.bundle, ten_second_clips(run.cfg.decode_videos),
                                              run.cfg.threads, run.cfg.rounds)


def stage_placement_accuracy(run: "BenchRun") -> None:
    from .compute import placement_accuracy

    run.result["placement_accuracy"] = placement_accuracy(run.cfg.bundle, run.ok_videos)


def stage_prefetch(run: "BenchRun") -> None:
    from . import inference

    run.result["prefetch"] = inference.prefetch_overlap(
        run.cfg.bundle, {"bench videos": run.ok_videos[:24],
                         "decoding set (longer, larger)": [str(p) for p in run.cfg.decode_videos]},
        run.cfg.threads, max(3, run.cfg.rounds))


def stage_training(run: "BenchRun") -> None:
    from picojepa.train.config import recipe_from_dict

    from .train_speed import pretrain_throughput

    run.result["training"] = pretrain_throughput(recipe_from_dict(run.bundle.manifest["recipe"]))


def stage_hetero(run: "BenchRun") -> None:
    from .hetero import hetero_section

    cfg = run.cfg
    run.result["hetero"] = hetero_section(cfg.bundle, cfg.hetero, run.ok_videos, cfg.rounds, cfg.threads,
                                          run.tmp)


def stage_long_batch(run: "BenchRun") -> None:
    from . import memory

    run.result["memory"] = memory.flat_memory(run.cfg.bundle, run.ok_videos, run.cfg.many, run.cfg.threads)


STAGES = (("peak", stage_peak), ("configurations", stage_configurations), ("batching", stage_batching),
          ("startup", stage_startup_memory), ("process_per_model", stage_process_per_model),
          ("compute", stage_compute), ("paper_size", stage_paper_size), ("decoding", stage_decoding),
          ("decode_share", stage_decode_share), ("placement_accuracy", stage_placement_accuracy),
          ("prefetch", stage_prefetch), ("training", stage_training), ("hetero", stage_hetero),
          ("long_batch", stage_long_batch))
STAGE_NAMES = tuple(name for name, _ in STAGES)


def vote_members() -> list[str]:
    from picojepa.core.roster import VOTE_MEMBERS

    return list(VOTE_MEMBERS)


def ten_second_clips(files: list[Path]) -> list[Path]:
    """The decoding set's ~10 s, ~340x256 clips that the decode-share target is about (all of
    its files when none of them is there)."""
    ten = [p for p in files if p.name in ("test__mmaction2-tests.mp4", "video3__pytorch-android-demo.mp4")]
    return ten or list(files)


@click.command(epilog=examples(
    "picojepa-bench data/synth/infer --run runs/demo --bundle bundles/demo",
    "picojepa-bench ../shared/data/real/bench/video3__pytorch-android-demo.mp4 --streams --bundle bundles/demo"))
@click.argument("videos", nargs=-1)
@click.option("--bundle", type=click.Path(path_type=Path),
              default=lambda: os.environ.get("PICOJEPA_BUNDLE", "bundles/demo"), show_default="bundles/demo",
              help="The bundle to measure (fused layout).")
@click.option("--run", "run_dir", type=click.Path(path_type=Path), default=None,
              help="The training run the bundle came from: needed for the separate, single, eager "
                   "and process-per-model configurations and the training benchmark.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/bench"), show_default=True)
@click.option("--decode-videos", multiple=True,
              help="Real files or folders for the decoding study (default: the VIDEOS).")
@click.option("--rounds", default=5, show_default=True, type=click.IntRange(1, 100),
              help="Timed rounds over the videos per configuration (one more is warm-up).")
@click.option("--process-per-model-videos", default=3, show_default=True, type=click.IntRange(0, 50),
              help="Videos for the original's way: a fresh process per model per video (slow).")
@click.option("--many", default=1000, show_default=True, type=click.IntRange(0),
              help="Length of the long batch whose memory is traced (0: skip).")
@click.option("--threads", default=0, show_default=True, type=click.IntRange(0),
              help="Threads for onnxruntime and PyTorch (0: onnxruntime's default, all cores).")
@click.option("--batch", default=8, show_default=True, type=click.IntRange(1))
@click.option("--skip", multiple=True, type=click.Choice(STAGE_NAMES),
              help="Leave out a stage (repeatable); the report lists what was skipped and why.")
@click.option("--network", is_flag=True,
              help="Only the edge-network section: a local nats-server and 1, 2, 4 member nodes "
                   "against the fused bundle (needs --run); writes network.{json,md} under --out.")
@click.option("--streams", "live_streams", is_flag=True,
              help="Only the live-streams section: the first video as 1280x720 and 640x360 30-fps "
                   "camera streams, more and more copies served over TCP and classified at once (window "
                   "2 s, stride 1 s) beside this machine's limit line; the other VIDEOS, in folders named after "
                   "the bundle's classes, measure the accuracy with non-reference frames skipped; writes "
                   "streams.{json,md} under --out.")
@click.option("--hetero", type=click.Path(path_type=Path), default=None,
              help="A heterogeneous ensemble's bundle (same clip spec) to measure beside the fused "
                   "bundle and beside its own largest graph alone.")
@click.option("--no-progress", is_flag=True)
@click.option("-v", "--verbose", is_flag=True)
@one_line_errors
def main(videos, bundle, run_dir, out, decode_videos, rounds, process_per_model_videos, many, threads,
         batch, skip, network, live_streams, hetero, no_progress, verbose):
    """Measure the runtime and its alternatives on VIDEOS (files, folders or globs)."""
    setup_logging(verbose)
    vids = _videos(videos)
    if not vids:
        fail("no video to benchmark: give files or folders (e.g. data/synth/infer)")
    check_out(out)
    if network:
        return network_section(bundle, run_dir, vids, out, rounds)
    if live_streams:
        return streams_section(bundle, vids, out, threads)
    dvids = [Path(v) for v in (_videos(decode_videos) if decode_videos else vids)]
    report = run_benchmarks(BenchConfig(bundle, run_dir, vids, dvids, out, rounds, process_per_model_videos,
                                        many, threads, batch, tuple(skip), not no_progress, hetero))
    for stage, why in report["skipped"].items():
        warn(f"stage {stage} skipped: {why}")
    h = report["headline"]
    click.echo("headline: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in h.items()), err=True)
    click.echo(f"report: {out / 'report.md'}", err=True)


if __name__ == "__main__":
    main()
