"""`picojepa-run VIDEO...`: classify videos with a bundle's ensemble on onnxruntime.

Data goes to stdout (text, JSON lines or CSV); messages, progress and errors to stderr.
Exit codes: 0 all videos answered, 1 some failed, 2 usage error, 3 none answered or fatal error.
A live run that ends by itself (the streams ended, --duration) exits like a run of files: 1 or 3
when it printed errors; one stopped by SIGTERM or SIGINT, a service's normal end, exits 0.
"""
from __future__ import annotations

import csv
import dataclasses
import glob
import json
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import click
from click.core import ParameterSource

from picojepa.core.clips import Region
from picojepa.core.console import (
    EXIT_FAIL,
    EXIT_PARTIAL,
    EXIT_USAGE,
    error,
    examples,
    fail,
    one_line_errors,
    progress,
    warn,
)
from picojepa.core.decode import VIDEO_SUFFIXES, check_ffmpeg
from picojepa.core.options import Finite
from picojepa.core.redact import redact
from picojepa.core.roster import ANSWERS
from picojepa.core.vote import VOTES

from . import explain
from .ensemble import Ensemble, EnsembleBase
from .live.cameras import NAME_MAX, EventFilter, Reloader, load_cameras, same_topic
from .live.publish import check_targets, open_publisher
from .live.reader import LiveError, LiveOptions, LiveRunner, classify_streams, is_live, read_streams_file
from .live.recorder import ClipStore, Recorder, RecordOptions, recording_errors
from .live.status import Status, StatusServer, parse_listen
from .net.natsconn import NatsOptions, nats_options
from .net.network import NetworkEnsemble

DEFAULT_BUNDLE = "bundles/demo"
# options that mean something for one kind of input only: given for the other, a usage error
FILE_ONLY = ("clips", "placement", "decode_device", "prefetch", "labels_from_folders")
LIVE_ONLY = ("duration", "on_change", "publish", "stream_name", "http_listen", "reconnect_s", "rtsp_transport",
             "decoder_threads", "skip_frames")
NODES_ONLY = ("deadline_ms", "quorum")
BY_SIGNAL = ("stopped", "interrupted")  # how a live run stopped by SIGTERM / SIGINT says so


def expand(inputs: tuple[str, ...]) -> list[str]:
    """Files as given; folders -> their video files (recursive, sorted); globs expanded."""
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir() and p.suffix.lower() not in VIDEO_SUFFIXES:
            out += sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES)
        elif not os.path.lexists(item) and glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            out += matches if matches else [item]  # an unmatched pattern is reported as missing
        else:
            out.append(item)
    return out


def _text(pred) -> str:
    if pred.error:
        return f"{pred.file}: ERROR {pred.error}"
    members = ", ".join(f"{m}={r.label} ({r.probability:.2f})" for m, r in pred.members.items())
    line = f"{pred.file}: {pred.label} ({pred.confidence:.2f}, {pred.vote} vote) | {members}"
    if pred.missing:
        line += f" | missing: {', '.join(pred.missing)}"
    if pred.windows:
        line += "\n" + "\n".join(f"  {w['start_s']:8.2f}-{w['end_s']:8.2f}s  {w['label']} "
                                 f"({w['confidence']:.2f})" for w in pred.windows)
    return line


class _Sections(click.Command):
    """--help with the options grouped by what they are for (they are many, and most apply to
    one kind of input only)."""

    SECTIONS = (
        ("Bundle and model", ("bundle", "provider", "vote_method", "variant", "threads", "region_text")),
        ("Files", ("clips", "placement", "decode_device", "prefetch", "labels_from_folders", "no_progress")),
        ("Windows (files and live sources)", ("window", "stride")),
        ("Live sources", ("streams_file", "cameras_file", "duration", "on_change", "reconnect_s", "rtsp_transport",
                          "decoder_threads", "skip_frames", "connect_timeout")),
        ("Edge network", ("nats_servers", "nats_token", "nats_user", "nats_password", "nats_creds",
                          "deadline_ms", "quorum")),
        ("Output", ("fmt", "publish", "stream_name", "http_listen")),
        ("Explain one clip", ("explain_clip", "out_dir")),
    )

    def format_options(self, ctx, formatter):
        rows = {p.name: p.get_help_record(ctx) for p in self.get_params(ctx)}
        placed = set()
        for title, names in self.SECTIONS:
            got = [rows[n] for n in names if rows.get(n)]
            placed |= set(names)
            if got:
                with formatter.section(title):
                    formatter.write_dl(got)
        rest = [r for n, r in rows.items() if n not in placed and r]
        if rest:
            with formatter.section("Other"):
                formatter.write_dl(rest)


@click.command(cls=_Sections, epilog=examples(
    "picojepa-run --bundle bundles/demo clip.mp4 videos/ --format json",
    "picojepa-run --bundle bundles/demo rtsp://10.0.0.7/sub --window 2 --stride 1 --on-change",
    "picojepa-run --bundle bundles/demo-net --nodes nats://10.0.0.2:4222 --deadline-ms 2000 videos/"))
@click.argument("videos", nargs=-1)
@click.option("--bundle", type=click.Path(path_type=Path), envvar="PICOJEPA_BUNDLE",
              help=f"Bundle directory [default: $PICOJEPA_BUNDLE, else ./{DEFAULT_BUNDLE}, "
                   "the one `make demo` writes].")
@click.option("--provider", default="auto", show_default=True,
              type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--vote", "vote_method", type=click.Choice((*VOTES, *ANSWERS)),
              help="Vote method [default: the bundle's, majority].")
@click.option("--format", "fmt", default="text", show_default=True,
              type=click.Choice(["text", "json", "csv"]))
@click.option("--clips", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Clips spread uniformly over each video; probabilities averaged.")
@click.option("--window", type=Finite(min=0.01), help="Sliding window length in s.")
@click.option("--stride", type=Finite(min=0.01), help="Sliding window stride in s.")
@click.option("--variant", default="fp32", show_default=True, type=click.Choice(["fp32", "fp16", "int8"]))
@click.option("--placement", type=click.Choice(["exact", "keyframe"]),
              help="Where each clip starts: 'keyframe' moves it to the nearest keyframe so that "
                   "decoding starts at the clip [default: the bundle's recipe, usually exact].")
@click.option("--region", "region_text", metavar="X,Y,W,H",
              help="Classify only this rectangle of every frame (fractions of the frame, e.g. "
                   "0.25,0.1,0.5,0.8), files and live sources alike.")
@click.option("--decode-device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]),
              help="Where torchcodec decodes: cuda uses the GPU's NVDEC decoder.")
@click.option("--threads", default=0, type=click.IntRange(0, 256),
              help="onnxruntime threads (0: all cores, all but one while prefetching).")
@click.option("--labels-from-folders", is_flag=True,
              help="Treat each video's folder name as its true label; print accuracies at the end.")
@click.option("--prefetch/--no-prefetch", default=None,
              help="Decode the next video while the current one runs [default: on for more than "
                   "one video, with onnxruntime on all cores but one].")
@click.option("--no-progress", is_flag=True)
@click.option("--duration", type=Finite(min=0.1),
              help="Live source: stop after this many seconds (default: when the stream ends, or Ctrl-C).")
@click.option("--on-change", is_flag=True,
              help="Live source: a line only when the label changes (with the span the previous one held).")
@click.option("--publish", metavar="URL", multiple=True,
              help="Live source: also publish each result, repeatable: nats://host:4222 (subject "
                   "picojepa.live.<name>) or mqtt://host:1883 (topics picojepa/<name>/..., the "
                   "label retained, Home Assistant discovery; docs/cameras.md); credentials in the "
                   "URL: mqtt://user:password@host.")
@click.option("--name", "stream_name",
              help="Live source: its name in --publish topics and subjects, at most 64 characters [default: the URL].")
@click.option("--http", "http_listen", metavar="HOST:PORT",
              help="Live sources: serve /metrics (Prometheus), /api/status (JSON) and a status page "
                   "on HOST:PORT while the run lasts, e.g. 127.0.0.1:8080.")
@click.option("--streams", "streams_file", type=click.Path(dir_okay=False),
              help="Many live sources at once, one 'SOURCE [NAME]' per line: classified together "
                   "(windows ready at the same moment share one batch); JSON lines carry `stream`.")
@click.option("--reconnect-s", default=30.0, show_default=True, type=Finite(min=0.1),
              help="Live source: how long a dropped stream is reconnected before the run gives up.")
@click.option("--cameras", "cameras_file", type=click.Path(dir_okay=False),
              help="A camera file (YAML): each camera's name, url, window, stride and event labels, and "
                   "where results go (publish, http); docs/cameras.md.")
@click.option("--rtsp-transport", default="tcp", show_default=True, type=click.Choice(["tcp", "udp"]),
              help="RTSP sources: RTP interleaved over the RTSP connection (tcp) or over UDP, for "
                   "servers that only send UDP.")
@click.option("--decoder-threads", default=1, show_default=True, type=click.IntRange(0, 64),
              help="Live source: FFmpeg decoder threads per stream (0: FFmpeg's choice). One per "
                   "stream serves many cameras best (docs/results.md, streams).")
@click.option("--skip-frames", default="none", show_default=True, type=click.Choice(["none", "nonref"]),
              help="Live source: 'nonref' lets FFmpeg skip decoding non-reference frames (cheaper; "
                   "the clip is then taken from the frames that remain, so it spans more time).")
@nats_options("--nodes", "Vote over the edge network: NATS server URL(s), comma-separated; each member "
              "runs on its own node (`picojepa-serve`). The bundle must be the nodes' bundle.",
              "Seconds to reach the NATS server, or to open a live source and wait for each read, "
              "before giving up.", pass_timeout=True)
@click.option("--deadline-ms", default=2000.0, show_default=True, type=Finite(min=1),
              help="With --nodes: how long each video waits for the members' answers.")
@click.option("--quorum", type=click.IntRange(min=1),
              help="With --nodes: fewest voting members that must answer [default: a majority].")
@click.option("--explain", "explain_clip", metavar="CLIP",
              help="Draw where and when in CLIP the answer came from (an occlusion map) into --out.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="With --explain: the folder for its pictures.")
@one_line_errors
def main(videos, bundle, provider, vote_method, fmt, clips, window, stride, variant, placement,
         decode_device, region_text, threads, labels_from_folders, prefetch, no_progress, duration, on_change,
         publish, stream_name, http_listen, streams_file, cameras_file, reconnect_s, rtsp_transport,
         decoder_threads, skip_frames, nats, connect_timeout, deadline_ms, quorum, explain_clip, out_dir):
    """Classify videos, camera streams or both with a bundle's ensemble.

    VIDEO... are files, folders or globs; a live SOURCE (rtsp://, rtmp://, http(s)://, tcp://,
    udp://, srt://, /dev/videoN) gives one result per --window as its frames arrive. With --nodes
    the members run on edge nodes and vote over NATS."""
    if explain_clip is not None or out_dir is not None:  # one clip's occlusion map: runtime/explain.py
        return click.echo(explain.run(explain_clip, out_dir, videos, bundle or Path(DEFAULT_BUNDLE), provider,
                                      vote_method, variant, threads).summary())
    live = [v for v in videos if is_live(v)]
    live_run = bool(live or streams_file or cameras_file)
    if live_run and ((streams_file or cameras_file) and videos or len(live) != len(videos) or len(live) > 1
                     or streams_file and cameras_file):
        fail("live sources run alone: one SOURCE, or many with --streams FILE or --cameras FILE", EXIT_USAGE)
    _check_applies(click.get_current_context(), live_run, bool(streams_file or cameras_file), nats is not None)
    region = _region(region_text)
    opening = OpenOptions(bundle or Path(DEFAULT_BUNDLE), provider, variant, threads, decode_device, nats=nats,
                          deadline_ms=deadline_ms, quorum=quorum)
    if live_run:
        if stream_name is not None and len(stream_name) > NAME_MAX:
            fail(f"--name: at most {NAME_MAX} characters (it names the stream's MQTT topics and NATS subject), "
                 f"got {len(stream_name)}", EXIT_USAGE)
        check_targets(publish)
        opts = LiveOptions(window or 2.0, stride, duration, connect_timeout, reconnect_s, rtsp_transport,
                           decoder_threads, skip_frames, region)
        cams = load_cameras(cameras_file) if cameras_file else None
        if cams:
            streams = [(c.name, c.url, _camera_opts(opts, c)) for c in cams.cameras]
            publish, http_listen = (*publish, *cams.publish), http_listen or cams.http
        else:
            named = _streams_file(streams_file) if streams_file else [(stream_name or redact(live[0]), live[0])]
            streams = [(n, src, opts) for n, src in named]
        return _run_live(opening, streams, cams, LiveRequest(opts, vote_method, fmt, on_change, publish,
                                                             http_listen, connect_timeout))
    # clip placement and the region are how files are decoded; a live window takes its clip by the
    # window rule and its region from `opts`
    _run_files(expand(videos), dataclasses.replace(opening, placement=placement, region=region),
               FileOptions(vote_method, fmt, clips, window, stride, labels_from_folders, prefetch, no_progress))


def _streams_file(path: str) -> list[tuple[str, str]]:
    """The (name, source) lines of a --streams file; two names that would publish to one MQTT topic
    and NATS subject (`door.1`, `door_1`) are refused, naming both."""
    named = read_streams_file(path)
    clash = same_topic([n for n, _ in named])
    if clash:
        raise LiveError(f"{path}: the names {clash[1]!r} and {named[clash[0]][0]!r} would share the MQTT topic "
                        f"and NATS subject {clash[2]!r}: rename one")
    return named


def _check_applies(ctx: click.Context, live: bool, many: bool, nodes: bool) -> None:
    """An option given for an input it means nothing to (a file's --clips on a stream, a stream's
    --publish on files, --deadline-ms without --nodes) is a usage error naming it, not ignored."""
    for p in ctx.command.params:
        if ctx.get_parameter_source(p.name) in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
            continue
        flag = "/".join(p.opts + p.secondary_opts)
        if live and p.name in FILE_ONLY:
            fail(f"{flag}: applies to video files, not to live sources", EXIT_USAGE)
        if not live and p.name in LIVE_ONLY:
            fail(f"{flag}: applies to live sources (SOURCE, --streams, --cameras), not to video files", EXIT_USAGE)
        if many and p.name == "stream_name":
            fail(f"{flag}: names a single live SOURCE; with --streams or --cameras each name is in the file",
                 EXIT_USAGE)
        if not nodes and p.name in NODES_ONLY:
            fail(f"{flag} needs --nodes", EXIT_USAGE)


@dataclass(frozen=True)
class OpenOptions:
    """Which ensemble `picojepa-run` opens: the bundle's graphs here (provider, variant, threads),
    or with `nats` its member nodes over the network (deadline, quorum); how it decodes (device,
    clip placement, region of interest)."""

    bundle: Path
    provider: str = "auto"
    variant: str = "fp32"
    threads: int = 0
    decode_device: str = "cpu"
    placement: str | None = None
    region: Region | None = None
    nats: NatsOptions | None = None
    deadline_ms: float = 2000.0
    quorum: int | None = None


def _open(o: OpenOptions) -> EnsembleBase:
    """The in-process Ensemble, or with `o.nats` the NetworkEnsemble of the member nodes."""
    if o.nats is None:
        return Ensemble.load(o.bundle, o.provider, o.variant, o.threads, o.decode_device, placement=o.placement,
                             region=o.region)
    return NetworkEnsemble.connect(o.bundle, o.nats, deadline_ms=o.deadline_ms, quorum=o.quorum,
                                   decode_device=o.decode_device, placement=o.placement, region=o.region)


def _run_files(paths: list[str], opening: OpenOptions, o: FileOptions) -> None:
    """Files, folders or globs: one answer per video (or per window), then the summary line."""
    if not paths:
        fail("no input: give video files, folders or globs", EXIT_USAGE)
    if o.stride is not None and o.window is None:
        fail("--stride needs --window", EXIT_USAGE)
    if o.window is not None and o.clips != 1:
        fail("--clips and --window cannot be combined", EXIT_USAGE)
    if not opening.bundle.exists():
        fail(f"{opening.bundle}: no bundle there; run `make demo` (it writes {DEFAULT_BUNDLE}) or pass --bundle")
    check_ffmpeg()
    prefetch = len(paths) > 1 if o.prefetch is None else o.prefetch
    if prefetch and opening.threads == 0 and opening.provider != "cuda":  # a core for the decoding thread (measured)
        opening = dataclasses.replace(opening, threads=max(1, (os.cpu_count() or 2) - 1))
    ens = _open(opening)
    try:
        _classify(ens, paths, dataclasses.replace(o, prefetch=prefetch))
    finally:
        ens.close()


@dataclass(frozen=True)
class LiveRequest:
    """What a live run was asked for beside its streams: the live options every stream starts
    from, the vote, the output, where to publish."""

    live: LiveOptions
    vote: str | None
    fmt: str = "text"
    on_change: bool = False
    publish: tuple[str, ...] = ()
    http_listen: str | None = None
    connect_timeout: float = 10.0


def _run_live(opening: OpenOptions, streams: list, cams, req: LiveRequest) -> None:
    """Live sources (one, a --streams file's, or a --cameras file's): one line per window until
    they end or the run is stopped; the publishers, recorders and connection closed after, then
    the summary and the exit code (which counts the recorders' failed clips too)."""
    listen = parse_listen(req.http_listen) if req.http_listen else None
    events = EventFilter({c.name: set(c.events) for c in cams.cameras if c.events}) if cams else EventFilter()
    ens = _open(opening)
    publisher = None
    try:
        if cams:
            cams.check_labels(ens.classes)
        routes = {c.name: c.publish for c in cams.cameras if c.publish} if cams else {}
        if req.publish or routes:
            publisher = open_publisher(req.publish, req.connect_timeout, ens.bundle.checksum, routes)
        reloader = None
        if cams:
            events.recorders, record_camera = _recorders(cams, req.live)
            reloader = Reloader(cams, ens.classes, lambda c: LiveRunner(
                c.url, ens.bundle.clip, _camera_opts(req.live, c), tap=_tap(events, c.name)), events, record_camera)
        runners, stopped_by, failed = _classify_live(ens, streams, req.live, req.vote, req.fmt, req.on_change,
                                                     LiveOutputs(publisher, listen, reloader, events,
                                                                 cams.clips_dir if cams else None))
    finally:
        recorders = list(events.recorders.values())
        for rec in recorders:
            rec.close()  # writes the clips still waiting for their after_s
        if publisher:
            publisher.close()
        ens.close()
    _live_summary(runners, stopped_by, failed + recording_errors(recorders))


def _region(text: str | None):
    """--region X,Y,W,H -> a Region (None without); a usage error that says why otherwise."""
    if text is None:
        return None
    try:
        return Region.parse(text)
    except ValueError as exc:
        fail(f"--{exc}", EXIT_USAGE)


def _camera_opts(opts, cam):
    """The run's live options with a camera file's window, stride and region for one camera."""
    window = cam.window_s or opts.window_s
    return dataclasses.replace(opts, window_s=window, stride_s=cam.stride_s if cam.stride_s else
                               (None if cam.window_s else opts.stride_s), region=cam.region or opts.region)


def _recorders(cams, opts) -> tuple[dict, object]:
    """An event-clip recorder for each camera of the file that records, and the function that
    makes one (for cameras a SIGHUP adds or changes); one clips folder for all."""
    store = ClipStore(cams.clips_dir, cams.clips_max_gb * 1e9,
                      None if cams.clips_max_days is None else cams.clips_max_days * 86400)

    def record(c):  # recording the analysed source itself: fed its packets by the reader, one connection
        return Recorder(c.name, c.record_url or c.url, RecordOptions(*c.record), store, opts,
                        fed=c.record_url in (None, c.url))

    return {c.name: record(c) for c in cams.cameras if c.record}, record


def _tap(events, name: str):
    """The recorder a camera's reader hands its packets to (one fed by it), or None."""
    rec = events.recorders.get(name) if events is not None else None
    return rec if rec is not None and rec.fed else None


@dataclass(frozen=True)
class LiveOutputs:
    """What a live run does beside printing: publishing, the status server, camera-file reloads,
    events (and their clips)."""

    publisher: object = None
    listen: tuple[str, int] | None = None
    reloader: object = None  # cameras.Reloader: SIGHUP re-reads the camera file
    events: object = None  # cameras.EventFilter: which windows are events; their recorders
    clips_dir: str | None = None  # where event clips go (the status server serves them)


def _classify_live(ens, streams: list[tuple[str, str, object]], opts, vote_method, fmt, on_change: bool = False,
                   out: LiveOutputs = LiveOutputs()) -> tuple[dict, str, int]:
    """One line per window of every stream (JSON or text; with `on_change` only when a stream's
    label changes) until the streams end, --duration passes, or SIGINT/SIGTERM. Windows the
    classifier could not keep up with are dropped (counted). Returns the runners (closed), what
    stopped them, and the errors printed meanwhile (windows that failed, camera files refused)."""
    vote_method = ens.check_vote(vote_method)
    stop, why = threading.Event(), []
    timer = threading.Timer(opts.duration_s or 0, lambda: (why.append(f"--duration {opts.duration_s:g} s"), stop.set()))
    if opts.duration_s:
        timer.start()
    old_term = signal.signal(signal.SIGTERM, lambda *_: (why.append("stopped"), stop.set()))
    old_hup = signal.signal(signal.SIGHUP, out.reloader.request) if out.reloader else None
    runners = {name: LiveRunner(source, ens.bundle.clip, o, tap=_tap(out.events, name)) for name, source, o in streams}
    status = server = None
    publisher, listen = out.publisher, out.listen
    held: dict[str, dict] = {}  # per stream, the label being held: {"label", "from_s", "to_s"}
    failed = 0  # windows whose classification failed, each printed
    try:
        if listen:
            status = Status(runners, out.clips_dir, out.events.recorders if out.events else None, publisher)
            server = StatusServer(status, *listen)
        for name, w, pred in classify_streams(ens, runners, vote_method, stop,
                                              out.reloader.apply if out.reloader else None):
            failed += bool(pred.error)
            event = out.events.check(name, None if pred.error else pred.label, w.wall_time) if out.events else None
            if status:
                status.record(name, w, pred, {"label": pred.label, "confidence": pred.confidence,
                                              "start_s": round(w.start_s, 3), "end_s": round(w.end_s, 3),
                                              "wall_time": w.wall_time, "error": pred.error, "event": event})
            h = held.get(name)
            if on_change and h is not None and pred.label == h["label"]:
                h["to_s"] = w.end_s
                continue
            previous = None if h is None else {**h, "to_s": w.start_s, "held_s": round(w.start_s - h["from_s"], 3)}
            held[name] = {"label": pred.label, "from_s": round(w.start_s, 3), "to_s": w.end_s}
            row = _emit_window(pred, w, runners[name].stats, fmt, previous if on_change else None,
                               name if len(streams) > 1 else None, event)
            if publisher:
                publisher.publish(name, row)
    except KeyboardInterrupt:
        why.append("interrupted")
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, old_term)
        if old_hup is not None:
            signal.signal(signal.SIGHUP, old_hup)
        if server:
            server.close()
        for r in runners.values():
            r.close()
    return runners, why[0] if why else "the stream ended", failed + (out.reloader.refused if out.reloader else 0)


def _live_summary(runners: dict, stopped_by: str, failures: int = 0) -> None:
    """A line per stream, then each stream's error, and the exit code. Stopped by a signal, the run
    exits 0: a service's normal stop (what failed was printed when it did). Ended by itself (the
    streams ended, --duration), it exits 1 when a stream failed, one never sent a frame, or
    `failures` (windows, reloads, clips) printed errors, while some windows were answered; 3 when
    none were."""
    for name, r in runners.items():
        s = r.stats
        click.echo(f"{name}: {s.windows} windows classified, {s.dropped} dropped (classifier behind), "
                   f"{len(s.gaps)} gaps, {s.reconnects} reconnects"
                   + (f", {s.repicked} off the frame grid" if s.repicked else "") + f"; {stopped_by}", err=True)
    errors = [str(r.error) for r in runners.values() if r.error is not None]
    if stopped_by not in BY_SIGNAL:
        errors += [f"{name if name == redact(r.source) else f'{name} ({redact(r.source)})'}: no frame arrived "
                   f"({stopped_by}): the source never opened, or sent nothing" for name, r in runners.items()
                   if r.error is None and not r.stats.frames]
    for e in errors:
        error(e)
    if (errors or failures) and stopped_by not in BY_SIGNAL:
        sys.exit(EXIT_PARTIAL if any(r.stats.windows for r in runners.values()) else EXIT_FAIL)


def _emit_window(pred, w, stats, fmt, previous: dict | None = None, stream: str | None = None,
                 event: dict | None = None) -> dict:
    """Print one window's result; returns it as the JSON object (what --publish sends)."""
    row = pred.to_dict()
    row.update(start_s=round(w.start_s, 3), end_s=round(w.end_s, 3), wall_time=round(w.wall_time, 3),
               dropped=stats.dropped, gaps=len(stats.gaps), previous=previous)
    if stream is not None:
        row["stream"] = stream
    if event:
        row["event"] = event
    if fmt == "json":
        click.echo(json.dumps(row))
    elif pred.error:
        error(pred.error)
    else:
        was = f"  (after {previous['label']} for {previous['held_s']:.1f} s)" if previous else ""
        who = f"{stream}  " if stream is not None else ""
        clip = f"  [event; clip {event['clip']}]" if event and event.get("clip") else ""
        click.echo(f"{who}{w.start_s:9.2f}-{w.end_s:9.2f}s  {pred.label} ({pred.confidence:.2f}, "
                   f"{pred.vote} vote){was}{clip}")
    sys.stdout.flush()
    return row


@dataclass(frozen=True)
class FileOptions:
    """How `picojepa-run` classifies files: the vote, the output format, clips or windows."""

    vote: str | None
    fmt: str = "text"
    clips: int = 1
    window: float | None = None
    stride: float | None = None
    labels_from_folders: bool = False
    prefetch: bool | None = None
    no_progress: bool = False


def _classify(ens, paths, o: FileOptions):
    vote_method = ens.check_vote(o.vote)
    fmt, labels_from_folders = o.fmt, o.labels_from_folders
    if labels_from_folders:
        unknown = sorted({Path(p).parent.name for p in paths} - set(ens.classes))
        if unknown:
            fail(f"--labels-from-folders: {', '.join(map(repr, unknown[:5]))} "
                 f"{'is' if len(unknown) == 1 else 'are'} no class of {ens.bundle.root} (classes: "
                 f"{', '.join(ens.classes)}): give folders named after the classes", EXIT_USAGE)
    for note in ens.notes:
        warn(note)

    writer = csv.writer(sys.stdout) if fmt == "csv" else None
    if writer:
        writer.writerow(["file", "label", "index", "confidence", "vote",
                         *[f"{m}_label" for m in ens.bundle.members], "total_ms", "error"])
    preds = ens.predict_many(paths, vote_method, o.clips, o.window, o.stride, o.prefetch)
    ok = failed = 0
    hits: dict[str, int] = {}
    seen: dict[str, int] = {}  # videos each member answered (over the network, not always all)
    for pred in progress(preds, total=len(paths), desc="videos", unit="video",
                         disable=o.no_progress or len(paths) <= 3):
        if pred.error:
            failed += 1
            error(pred.error)
        else:
            ok += 1
        if fmt == "json":
            click.echo(json.dumps(pred.to_dict()))
        elif writer:
            writer.writerow([pred.file, pred.label, pred.index, pred.confidence, pred.vote,
                             *[pred.members[m].label if m in pred.members else "" for m in ens.bundle.members],
                             pred.timings_ms.get("total"), pred.error or ""])
            sys.stdout.flush()
        elif not pred.error:
            click.echo(_text(pred))
        if labels_from_folders and not pred.error:
            truth = Path(pred.file).parent.name
            for m, right in [("vote", pred.label == truth),
                             *((m, r.label == truth) for m, r in pred.members.items())]:
                hits[m] = hits.get(m, 0) + right
                seen[m] = seen.get(m, 0) + 1
    if labels_from_folders and ok:
        click.echo(f"accuracy on {ok} videos (label = folder name): " + ", ".join(
            f"{k} {100 * v / seen[k]:.1f}%" + (f" (of {seen[k]})" if seen[k] != ok else "")
            for k, v in hits.items()), err=True)
    click.echo(f"{ok} of {len(paths)} videos classified on {ens.provider.upper()}"
               + (f", {failed} failed" if failed else ""), err=True)
    if failed:
        sys.exit(EXIT_PARTIAL if ok else EXIT_FAIL)


if __name__ == "__main__":
    main()
