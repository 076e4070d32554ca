"""`picojepa-run VIDEO...`: classify videos with a bundle's ensemble on onnxruntime.

Data goes to stdout (text, JSON lines or CSV); messages, progress and errors to stderr.
Exit codes: 0 all videos answered, 1 some failed, 2 usage error, 3 none answered or fatal error.
A live run that ends by itself (the streams ended, --duration) exits like a run of files: 1 or 3
when it printed errors; one stopped by SIGTERM or SIGINT, a service's normal end, exits 0.

This module parses and routes only: files to `run_files`, live sources to `run_live`, one clip's
occlusion map to `explain`; `open_ensemble` opens the bundle here or, with --nodes, on the nodes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import click
from click.core import ParameterSource

from picojepa.core.clips import Region
from picojepa.core.console import EXIT_USAGE, examples, fail, one_line_errors
from picojepa.core.options import Finite
from picojepa.core.roster import ANSWERS
from picojepa.core.vote import VOTES

from . import explain
from .cli_help import Sections
from .live.options import LiveOptions
from .live.source import is_live
from .open_ensemble import DEFAULT_BUNDLE, IN_PROCESS_ONLY, NODES_ONLY, NODES_PARAMS, OpenOptions, nodes_options
from .run_files import FILE_ONLY, FILE_PARAMS, FileOptions, expand, run_files
from .run_live import LIVE_ONLY, LIVE_PARAMS, SOURCE_PARAMS, LiveRequest, LiveSources, run_live

# the options every input takes (--explain: those it names in explain.APPLIES)
COMMON_PARAMS = (
    click.Argument(["videos"], nargs=-1),
    click.Option(["--bundle"], type=click.Path(path_type=Path), envvar="PICOJEPA_BUNDLE",
                 help=f"Bundle directory [default: $PICOJEPA_BUNDLE, else ./{DEFAULT_BUNDLE}, "
                      "the one `make demo` writes]."),
    click.Option(["--provider"], default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"])),
    click.Option(["--vote", "vote_method"], type=click.Choice((*VOTES, *ANSWERS)),
                 help="Vote method [default: the bundle's, majority]."),
    click.Option(["--format", "fmt"], default="text", show_default=True, type=click.Choice(["text", "json", "csv"])),
    click.Option(["--window"], type=Finite(min=0.01), help="Sliding window length in s."),
    click.Option(["--stride"], type=Finite(min=0.01), help="Sliding window stride in s."),
    click.Option(["--variant"], default="fp32", show_default=True, type=click.Choice(["fp32", "fp16", "int8"])),
    click.Option(["--region", "region_text"], metavar="X,Y,W,H",
                 help="Classify only this rectangle of every frame (fractions of the frame, e.g. "
                      "0.25,0.1,0.5,0.8), files and live sources alike."),
    click.Option(["--threads"], default=0, type=click.IntRange(0, 256),
                 help="onnxruntime threads (0: all cores, all but one while prefetching)."),
    click.Option(["--no-progress"], is_flag=True),
)


@dataclass(frozen=True)
class Input:
    """What a run was given: one clip to explain, live sources (`many`: from a --streams or
    --cameras file) or video files; with --nodes or not."""

    explain: bool = False
    live: bool = False
    many: bool = False
    nodes: bool = False


# (the options, when they do not apply, the one-line usage error naming the flag)
REFUSED = (
    (FILE_ONLY, lambda i: i.live, "{}: applies to video files, not to live sources"),
    (LIVE_ONLY, lambda i: not i.live, "{}: applies to live sources (SOURCE, --streams, --cameras), not to video files"),
    (("stream_name",), lambda i: i.many,
     "{}: names a single live SOURCE; with --streams or --cameras each name is in the file"),
    (NODES_ONLY, lambda i: not i.nodes, "{} needs --nodes"),
    (("connect_timeout",), lambda i: not (i.live or i.nodes),
     "{}: applies to live sources and --nodes, not to video files classified in this process"),
    (IN_PROCESS_ONLY, lambda i: i.nodes,
     "{}: applies to the graphs in this process; with --nodes each node runs its member as its picojepa-serve says"),
)
NOT_GIVEN = (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP,
             ParameterSource.ENVIRONMENT)  # an environment variable is the host's setting, not this run's request


def _check_applies(ctx: click.Context, given: Input) -> None:
    """An option given for an input it means nothing to (a file's --clips on a stream, a stream's
    --publish on files, --deadline-ms without --nodes, --window with --explain) is a usage error
    naming it, not ignored."""
    for p in ctx.command.params:
        if not isinstance(p, click.Option) or ctx.get_parameter_source(p.name) in NOT_GIVEN:
            continue
        flag = "/".join(p.opts + p.secondary_opts)
        if given.explain and p.name not in explain.APPLIES:
            fail(f"{flag}: does not apply to --explain (one clip's occlusion map)", EXIT_USAGE)
        for names, refused, message in REFUSED:
            if p.name in names and refused(given):
                fail(message.format(flag), EXIT_USAGE)


def _is_live(videos: tuple[str, ...], streams_file: str | None, cameras_file: str | None) -> bool:
    """Whether the run reads live sources; they run alone (one SOURCE, or a --streams or --cameras file)."""
    live = [v for v in videos if is_live(v)]
    live_run = bool(live or streams_file or cameras_file)
    if live_run and ((streams_file or cameras_file) and videos or len(live) != len(videos) or len(live) > 1
                     or streams_file and cameras_file):
        fail("live sources run alone: one SOURCE, or many with --streams FILE or --cameras FILE", EXIT_USAGE)
    return live_run


def _region(text: str | None):
    """--region X,Y,W,H -> a Region (None without); a usage error that says why otherwise."""
    if text is None:
        return None
    try:
        return Region.parse(text)
    except ValueError as exc:
        fail(f"--{exc}", EXIT_USAGE)


@click.command(cls=Sections, params=[*COMMON_PARAMS, *FILE_PARAMS, *SOURCE_PARAMS, *LIVE_PARAMS, *NODES_PARAMS,
                                     *explain.EXPLAIN_PARAMS], epilog=examples(
    "picojepa-run --bundle bundles/demo clip.mp4 videos/ --format json",
    "picojepa-run --bundle bundles/demo rtsp://10.0.0.7/sub --window 2 --stride 1 --on-change",
    "picojepa-run --bundle bundles/demo-net --nodes nats://10.0.0.2:4222 --deadline-ms 2000 videos/"))
@nodes_options
@one_line_errors
def main(videos, bundle, provider, vote_method, fmt, clips, window, stride, variant, placement,
         decode_device, region_text, threads, labels_from_folders, prefetch, no_progress, duration, on_change,
         publish, stream_name, http_listen, streams_file, cameras_file, reconnect_s, rtsp_transport,
         decoder_threads, skip_frames, motion_gate, loop_filter, full_size_convert, nats, connect_timeout, deadline_ms, quorum, explain_clip, out_dir):
    """Classify videos, camera streams or both with a bundle's ensemble.

    VIDEO... are files, folders or globs; a live SOURCE (rtsp://, rtmp://, http(s)://, tcp://,
    udp://, srt://, /dev/videoN) gives one result per --window as its frames arrive. With --nodes
    the members run on edge nodes and vote over NATS."""
    ctx = click.get_current_context()
    opening = OpenOptions(bundle or Path(DEFAULT_BUNDLE), provider, variant, threads, decode_device, nats=nats,
                          deadline_ms=deadline_ms, quorum=quorum)
    if explain_clip is not None or out_dir is not None:  # one clip's occlusion map: runtime/explain.py
        _check_applies(ctx, Input(explain=True))
        return click.echo(explain.run(explain_clip, out_dir, videos, opening.bundle, provider, vote_method, variant,
                                      threads).summary())
    live = _is_live(videos, streams_file, cameras_file)
    _check_applies(ctx, Input(live=live, many=bool(streams_file or cameras_file), nodes=nats is not None))
    region = _region(region_text)
    if live:  # a live window takes its clip by the window rule and its region from the live options
        opts = LiveOptions(window or 2.0, stride, duration, connect_timeout, reconnect_s, rtsp_transport,
                           decoder_threads, skip_frames, region, not loop_filter, motion_gate or None,
                           not full_size_convert)
        return run_live(opening, LiveSources(videos[0] if videos else None, stream_name, streams_file, cameras_file),
                        LiveRequest(opts, vote_method, fmt, on_change, publish, http_listen, connect_timeout))
    # clip placement and the region are how files are decoded
    run_files(expand(videos), dataclasses.replace(opening, placement=placement, region=region),
              FileOptions(vote_method, fmt, clips, window, stride, labels_from_folders, prefetch, no_progress))


if __name__ == "__main__":
    main()
