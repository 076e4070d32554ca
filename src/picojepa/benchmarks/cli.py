"""`picojepa-bench [VIDEOS...] --bundle DIR --run DIR --out DIR`: the benchmark report.

Measures on the same videos in one run: the runtime's configurations side by side (fused,
separate, single member, eager PyTorch, the original's process-per-model way, int8/fp16 variants,
every provider), stage times, batching, peak memory, import and load times, FLOPs against the
measured matrix-multiply peak, decoding choices, pre-training throughput, and memory over a long
batch. Writes report.json, report.md and PNG charts under --out. The measurements are the stages
of `benchmarks.stages.STAGES`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import click

from picojepa.core.console import examples, fail, one_line_errors, setup_logging, warn
from picojepa.core.errors import UsageError
from picojepa.core.rundir import RunDir
from picojepa.runtime.run_files import expand

from . import network, streams
from .errors import BenchError
from .run import BenchConfig
from .stages import CHART_FILES, STAGE_NAMES, run_benchmarks


def _videos(inputs: tuple[str, ...]) -> list[str]:
    out = expand(inputs)
    missing = [v for v in out if not Path(v).is_file()]
    for v in missing:
        warn(f"{v}: not a file, left out of the benchmark")
    return [v for v in out if Path(v).is_file()]


def check_out(out: Path) -> None:
    """The benchmark writes into a new or empty folder, or over its own earlier outputs; never
    into a training run or a folder of other files (BenchError before any work)."""
    if out.exists() and not out.is_dir():
        raise BenchError(f"{out}: not a folder (--out)")
    if not out.is_dir() or not any(out.iterdir()):
        return
    report = out / "report.json"
    if report.is_file() and "headline" not in report.read_text(errors="replace"):
        raise BenchError(f"{out}: holds a report.json that is not a benchmark report (a training run's "
                         "would be overwritten); choose another --out")
    own = {"report.json", "report.md", "network.json", "network.md", "streams.json", "streams.md", *CHART_FILES}
    other = sorted(p.name for p in out.iterdir() if p.name not in own)
    if other:
        raise BenchError(f"{out}: holds files that are not the benchmark's ({', '.join(other[:3])}); the "
                         "benchmark writes into a new folder or over its own earlier report (--out)")


def network_section(bundle: Path, run_dir: Path | None, videos: list[str], out: Path, rounds: int) -> dict:
    if run_dir is None or not RunDir(run_dir).members.is_dir():
        raise BenchError("--network needs --run RUN_DIR (a training run) to export its member nodes from")
    result = network.network_report(bundle, run_dir, videos, rounds)
    out.mkdir(parents=True, exist_ok=True)
    (out / "network.json").write_text(json.dumps(result, indent=1))
    (out / "network.md").write_text(network.markdown(result))
    click.echo(network.markdown(result), err=True)
    return result


def streams_section(bundle: Path, videos: list[str], out: Path, threads: int, seconds: float,
                    levers: tuple[str, ...]) -> dict:
    chosen = tuple(name for short, name in streams.LEVER_NAMES.items() if short in levers) or tuple(streams.LEVERS)
    result = streams.streams_report(bundle, videos[0], seconds, threads, labelled=[Path(v) for v in videos[1:]],
                                    levers=chosen)
    out.mkdir(parents=True, exist_ok=True)
    (out / "streams.json").write_text(json.dumps(result, indent=1))
    (out / "streams.md").write_text(streams.markdown(result))
    click.echo(streams.markdown(result), err=True)
    return result


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
@click.option("--stream-seconds", default=streams.SECONDS, show_default=True, type=click.FloatRange(4.0, 600.0),
              help="With --streams: how long each rung of a ladder runs.")
@click.option("--lever", "levers", multiple=True, type=click.Choice(list(streams.LEVER_NAMES)),
              help="With --streams: measure only this lever's ladder (repeatable; default all: today's reader, the "
                   "deblocking skip, the motion gate, the one-step conversion, all three: the defaults; measured in that order); the last measured also gets the "
                   "variants at its top.")
@click.option("--hetero", type=click.Path(path_type=Path), default=None,
              help="A heterogeneous ensemble's bundle (same clip spec) to measure beside the fused "
                   "bundle and beside its own largest graph alone.")
@click.option("--no-progress", is_flag=True)
@click.option("-v", "--verbose", is_flag=True)
@one_line_errors
def main(videos, bundle, run_dir, out, decode_videos, rounds, process_per_model_videos, many, threads,
         batch, skip, network, live_streams, stream_seconds, levers, hetero, no_progress, verbose):
    """Measure the runtime and its alternatives on VIDEOS (files, folders or globs)."""
    setup_logging(verbose)
    vids = _videos(videos)
    if not vids:
        fail("no video to benchmark: give files or folders (e.g. data/synth/infer)")
    check_out(out)
    if (stream_seconds != streams.SECONDS or levers) and not live_streams:
        raise UsageError("--stream-seconds and --lever apply to --streams only")
    if network:
        return network_section(bundle, run_dir, vids, out, rounds)
    if live_streams:
        return streams_section(bundle, vids, out, threads, stream_seconds, levers)
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
