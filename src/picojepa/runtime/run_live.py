"""`picojepa-run SOURCE`, `--streams FILE` or `--cameras FILE`: live sources. Their options, the
streams a run reads (one source, a streams file's, a camera file's), and the run around the loop
(`live_loop`): publishers, the status server, event recorders, camera-file reloads, each closed
after it, then the summary and the exit code."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import click

from picojepa.core.console import EXIT_USAGE, fail
from picojepa.core.options import Finite
from picojepa.core.redact import redact

from .live.cameras import NAME_MAX, EventFilter, Reloader, load_cameras, same_topic
from .live.motion import DEFAULT_THRESHOLD
from .live.names import read_streams_file
from .live.options import LiveOptions
from .live.publish import check_targets, open_publisher
from .live.reader import LiveRunner
from .live.recorder import ClipStore, Recorder, RecordOptions, recording_errors
from .live.source import LiveError
from .live.status import parse_listen
from .live_loop import LiveOutputs, classify_live, live_summary, tap
from .open_ensemble import OpenOptions, open_ensemble

# where many live sources come from: each makes the run a live one
SOURCE_PARAMS = (
    click.Option(["--streams", "streams_file"], type=click.Path(dir_okay=False),
                 help="Many live sources at once, one 'SOURCE [NAME]' per line: classified together "
                      "(windows ready at the same moment share one batch); JSON lines carry `stream`."),
    click.Option(["--cameras", "cameras_file"], type=click.Path(dir_okay=False),
                 help="A camera file (YAML): each camera's name, url, window, stride and event labels, and "
                      "where results go (publish, http); docs/cameras.md."),
)
# the options that mean something for live sources only (given for video files: a usage error)
LIVE_PARAMS = (
    click.Option(["--duration"], type=Finite(min=0.1),
                 help="Live source: stop after this many seconds (default: when the stream ends, or Ctrl-C)."),
    click.Option(["--on-change"], is_flag=True,
                 help="Live source: a line only when the label changes (with the span the previous one held)."),
    click.Option(["--publish"], metavar="URL", multiple=True,
                 help="Live source: also publish each result, repeatable: nats://host:4222 (subject "
                      "picojepa.live.<name>) or mqtt://host:1883 (topics picojepa/<name>/..., the "
                      "label retained, Home Assistant discovery; docs/cameras.md); credentials in the "
                      "URL: mqtt://user:password@host."),
    click.Option(["--name", "stream_name"],
                 help="Live source: its name in --publish topics and subjects, at most 64 characters "
                      "[default: the URL]."),
    click.Option(["--http", "http_listen"], metavar="HOST:PORT",
                 help="Live sources: serve /metrics (Prometheus), /api/status (JSON) and a status page "
                      "on HOST:PORT while the run lasts, e.g. 127.0.0.1:8080."),
    click.Option(["--reconnect-s"], default=30.0, show_default=True, type=Finite(min=0.1),
                 help="Live source: how long a dropped stream is reconnected before the run gives up."),
    click.Option(["--rtsp-transport"], default="tcp", show_default=True, type=click.Choice(["tcp", "udp"]),
                 help="RTSP sources: RTP interleaved over the RTSP connection (tcp) or over UDP, for "
                      "servers that only send UDP."),
    click.Option(["--decoder-threads"], default=1, show_default=True, type=click.IntRange(0, 64),
                 help="Live source: FFmpeg decoder threads per stream (0: FFmpeg's choice). One per "
                      "stream serves many cameras best (docs/results.md, streams)."),
    click.Option(["--skip-frames"], default="none", show_default=True, type=click.Choice(["none", "nonref"]),
                 help="Live source: 'nonref' lets FFmpeg skip decoding non-reference frames (cheaper; "
                      "the clip is then taken from the frames that remain, so it spans more time)."),
    click.Option(["--motion-gate"], default=DEFAULT_THRESHOLD, show_default=True, type=Finite(min=0, max=100),
                 metavar="PCT", help="Live source: a window whose picked frames change in less than PCT % of the "
                 "picture is answered 'no motion' without inference (0: off; a camera file's `motion:` key "
                 "per camera); docs/cameras.md."),
    click.Option(["--loop-filter"], is_flag=True,
                 help="Live source: decode with H.264's deblocking filter, as files are (default: skipped, "
                      "cheaper, every frame still decoded; docs/cameras.md)."),
    click.Option(["--full-size-convert"], is_flag=True,
                 help="Live source: convert a clip's frames to RGB at full size and then resize them, as files "
                      "are (default: one FFmpeg step from the decoder's YUV to the clip's size, an order of "
                      "magnitude cheaper at 720p, pixels ~2 grey levels off; docs/cameras.md)."),
)
LIVE_ONLY = tuple(p.name for p in LIVE_PARAMS)
FORMATS = ("text", "json")  # a live run writes no CSV


@dataclass(frozen=True)
class LiveSources:
    """Where a live run's streams come from: one SOURCE (named by --name, else its URL without
    credentials), a --streams file, or a --cameras file."""

    source: str | None = None
    name: str | None = None
    streams_file: str | None = None
    cameras_file: str | None = None


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


def run_live(opening: OpenOptions, sources: LiveSources, req: LiveRequest) -> None:
    """Live sources (one, a --streams file's, or a --cameras file's): checked before anything
    opens, then one line per window until they end or the run is stopped."""
    if req.fmt not in FORMATS:
        fail(f"--format {req.fmt}: applies to video files; a live source writes {' or '.join(FORMATS)}", EXIT_USAGE)
    if sources.name is not None and len(sources.name) > NAME_MAX:
        fail(f"--name: at most {NAME_MAX} characters (it names the stream's MQTT topics and NATS subject), "
             f"got {len(sources.name)}", EXIT_USAGE)
    check_targets(req.publish)
    cams = load_cameras(sources.cameras_file) if sources.cameras_file else None
    if cams:
        streams = [(c.name, c.url, camera_opts(req.live, c)) for c in cams.cameras]
        req = dataclasses.replace(req, publish=(*req.publish, *cams.publish), http_listen=req.http_listen or cams.http)
    else:
        named = (_streams_file(sources.streams_file) if sources.streams_file
                 else [(sources.name or redact(sources.source), sources.source)])
        streams = [(n, src, req.live) for n, src in named]
    _run(opening, streams, cams, req)


def _streams_file(path: str) -> list[tuple[str, str]]:
    """The (name, source) lines of a --streams file; two names that would publish to one MQTT topic
    and NATS subject (`door.1`, `door_1`) are refused, naming both."""
    named = read_streams_file(path)
    clash = same_topic([n for n, _ in named])
    if clash:
        raise LiveError(f"{path}: the names {clash[1]!r} and {named[clash[0]][0]!r} would share the MQTT topic "
                        f"and NATS subject {clash[2]!r}: rename one")
    return named


def _run(opening: OpenOptions, streams: list, cams, req: LiveRequest) -> None:
    """The streams classified until they end or the run is stopped; the publishers, recorders and
    connection closed after, then the summary and the exit code (which counts the recorders'
    failed clips too)."""
    listen = parse_listen(req.http_listen) if req.http_listen else None
    events = EventFilter({c.name: set(c.events) for c in cams.cameras if c.events}) if cams else EventFilter()
    ens = open_ensemble(opening)
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
                c.url, ens.bundle.clip, camera_opts(req.live, c), tap=tap(events, c.name)), events, record_camera)
        runners, stopped_by, failed = classify_live(ens, streams, req.live, req.vote, req.fmt, req.on_change,
                                                    LiveOutputs(publisher, listen, reloader, events,
                                                                cams.clips_dir if cams else None))
    finally:
        recorders = list(events.recorders.values())
        for rec in recorders:
            rec.close()  # writes the clips still waiting for their after_s
        if publisher:
            publisher.close()
        ens.close()
    live_summary(runners, stopped_by, failed + recording_errors(recorders))


def camera_opts(opts, cam):
    """The run's live options with a camera file's window, stride, region and motion gate for one camera."""
    window = cam.window_s or opts.window_s
    return dataclasses.replace(opts, window_s=window, stride_s=cam.stride_s if cam.stride_s else
                               (None if cam.window_s else opts.stride_s), region=cam.region or opts.region,
                               motion_gate=cam.motion_gate(opts.motion_gate, DEFAULT_THRESHOLD))


def _recorders(cams, opts) -> tuple[dict, object]:
    """An event-clip recorder for each camera of the file that records, and the function that
    makes one (for cameras a SIGHUP adds or changes); one clips folder for all."""
    store = ClipStore(cams.clips_dir, cams.clips_max_gb * 1e9,
                      None if cams.clips_max_days is None else cams.clips_max_days * 86400)

    def record(c):  # recording the analysed source itself: fed its packets by the reader, one connection
        return Recorder(c.name, c.record_url or c.url, RecordOptions(*c.record), store, opts,
                        fed=c.record_url in (None, c.url))

    return {c.name: record(c) for c in cams.cameras if c.record}, record
