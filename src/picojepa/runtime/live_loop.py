"""The loop of a live run: a line per window of every stream (text or JSON, with `--on-change`
only when a stream's label changes), each published and shown on the status server, until the
streams end, `--duration` passes or a signal stops it; then a summary line per stream and the
exit code."""
from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import dataclass

import click

from picojepa.core.console import EXIT_FAIL, EXIT_PARTIAL, error
from picojepa.core.redact import redact

from .live.classify import classify_streams
from .live.reader import LiveRunner
from .live.status import Status, StatusServer

BY_SIGNAL = ("stopped", "interrupted")  # how a live run stopped by SIGTERM / SIGINT says so


@dataclass(frozen=True)
class LiveOutputs:
    """What a live run does beside printing: publishing, the status server, camera-file reloads,
    events (and their clips)."""

    publisher: object = None
    listen: tuple[str, int] | None = None
    reloader: object = None  # cameras.Reloader: SIGHUP re-reads the camera file
    events: object = None  # cameras.EventFilter: which windows are events; their recorders
    clips_dir: str | None = None  # where event clips go (the status server serves them)


def tap(events, name: str):
    """The recorder a camera's reader hands its packets to (one fed by it), or None."""
    rec = events.recorders.get(name) if events is not None else None
    return rec if rec is not None and rec.fed else None


def classify_live(ens, streams: list[tuple[str, str, object]], opts, vote_method, fmt, on_change: bool = False,
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
    runners = {name: LiveRunner(source, ens.bundle.clip, o, tap=tap(out.events, name)) for name, source, o in streams}
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
            row = emit_window(pred, w, runners[name].stats, fmt, previous if on_change else None,
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


def live_summary(runners: dict, stopped_by: str, failures: int = 0) -> None:
    """A line per stream, then each stream's error, and the exit code. Stopped by a signal, the run
    exits 0: a service's normal stop (what failed was printed when it did). Ended by itself (the
    streams ended, --duration), it exits 1 when a stream failed, one never sent a frame, or
    `failures` (windows, reloads, clips) printed errors, while some windows were answered; 3 when
    none were."""
    for name, r in runners.items():
        s = r.stats
        click.echo(f"{name}: {s.windows} windows classified, {s.dropped} dropped (classifier behind), "
                   f"{len(s.gaps)} gaps, {s.reconnects} reconnects"
                   + (f", {s.repicked} off the frame grid" if s.repicked else "")
                   + (f", {s.no_motion} answered no motion" if s.no_motion else "") + f"; {stopped_by}", err=True)
    errors = [str(r.error) for r in runners.values() if r.error is not None]
    if stopped_by not in BY_SIGNAL:
        errors += [f"{name if name == redact(r.source) else f'{name} ({redact(r.source)})'}: no frame arrived "
                   f"({stopped_by}): the source never opened, or sent nothing" for name, r in runners.items()
                   if r.error is None and not r.stats.frames]
    for e in errors:
        error(e)
    if (errors or failures) and stopped_by not in BY_SIGNAL:
        sys.exit(EXIT_PARTIAL if any(r.stats.windows + r.stats.no_motion for r in runners.values()) else EXIT_FAIL)


def emit_window(pred, w, stats, fmt, previous: dict | None = None, stream: str | None = None,
                event: dict | None = None) -> dict:
    """Print one window's result; returns it as the JSON object (what --publish sends)."""
    row = pred.to_dict()
    row.update(start_s=round(w.start_s, 3), end_s=round(w.end_s, 3), wall_time=round(w.wall_time, 3),
               dropped=stats.dropped, gaps=len(stats.gaps), previous=previous)
    if stream is not None:
        row["stream"] = stream
    if getattr(w, "motion", None) is not None:  # the motion gate's score, % of the picture
        row["motion"] = round(w.motion, 3)
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
        how = f"motion {w.motion:.3f} %" if getattr(w, "gated", False) else f"{pred.confidence:.2f}, {pred.vote} vote"
        click.echo(f"{who}{w.start_s:9.2f}-{w.end_s:9.2f}s  {pred.label} ({how}){was}{clip}")
    sys.stdout.flush()
    return row
