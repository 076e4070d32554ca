"""The camera file: `picojepa-run --cameras cameras.yaml`, a box's cameras and where their results
go, instead of flags.

```yaml
cameras:
  - name: door                   # unique; names the camera in JSON lines, MQTT topics, metrics
    url: rtsp://10.0.0.7/sub     # the stream analysed (any live source picojepa-run reads)
    window: 2                    # seconds of stream per result (default: --window, else 2)
    stride: 1                    # seconds between results (default: the window)
    events: [typing]             # labels whose onset is an event (default: every label change)
    motion: 0.05                 # the motion gate's threshold (% of the picture); false: off
publish: [mqtt://127.0.0.1:1883] # where results go (also --publish)
http: 127.0.0.1:8080             # metrics and status (also --http)
```

Validated like recipes, before any stream opens: unknown keys, a key given twice, wrong types, a
repeated name, two names that would share an MQTT topic or NATS subject, a malformed `publish`
URL or `http` address, an empty list are refused as `file: camera N (name): key: reason`; event
labels the bundle does not have are refused once the bundle is loaded.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Callable

import click

from picojepa.core.clips import Region
from picojepa.core.console import error
from picojepa.core.errors import PicoJepaError, UsageError
from picojepa.core.redact import redact
from picojepa.core.shown import cut, shown
from picojepa.core.textio import read_yaml

from .motion import NO_MOTION
from .names import token
from .publish import target_problem
from .source import is_live
from .status import parse_listen

CAMERA_KEYS = {"name", "url", "window", "stride", "events", "record_url", "record", "region", "publish", "motion"}
RECORD_KEYS = {"before_s", "after_s"}
CLIPS_KEYS = {"dir", "max_gb", "max_days"}
TOP_KEYS = {"cameras", "publish", "http", "clips"}
NAME_MAX = 64  # a camera's (or a --name's) length: topics, subjects and entity ids stay short
NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9 _.-]{{0,{NAME_MAX - 1}}}$")
MAX_S = 3600.0


class CameraFileError(PicoJepaError, ValueError):
    """A camera file that does not validate."""


@dataclass(frozen=True)
class Camera:
    name: str
    url: str
    window_s: float | None = None  # None: the run's --window
    stride_s: float | None = None  # None: the window
    events: tuple[str, ...] = ()  # () : every label change is an event
    record_url: str | None = None  # the stream clips are cut from (default: url), with `record`
    record: tuple[float, float] | None = None  # (before_s, after_s): write a clip around each event
    region: Region | None = None  # only this part of the frame is classified
    publish: tuple[str, ...] = ()  # where this camera's results go too, beside the file's `publish`
    motion: float | bool | None = None  # the motion gate: a threshold (%), False off, None/True the run's

    def motion_gate(self, run: float | None, default: float) -> float | None:
        """This camera's motion gate threshold (None: off), given the run's (None: off) and the
        default threshold (what `motion: true` asks for when the run has the gate off)."""
        if self.motion is None:
            return run
        if isinstance(self.motion, bool):
            return (run if run is not None else default) if self.motion else None
        return self.motion


@dataclass(frozen=True)
class CameraFile:
    cameras: tuple[Camera, ...]
    publish: tuple[str, ...] = ()
    http: str | None = None
    path: str = ""
    clips_dir: str = "clips"
    clips_max_gb: float = 20.0
    clips_max_days: float | None = None  # clips older than this are deleted too

    def check_labels(self, classes) -> None:
        """Refuse event labels that are no class of the bundle."""
        for i, c in enumerate(self.cameras, 1):
            unknown = [e for e in c.events if e not in classes]
            if unknown:
                raise CameraFileError(f"{self.path}: camera {i} ({c.name}): events: {', '.join(map(shown, unknown))} "
                                      f"{'is' if len(unknown) == 1 else 'are'} no class of the bundle "
                                      f"(classes: {', '.join(classes)})")


def _seconds(value, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.01 <= value <= MAX_S:
        raise CameraFileError(f"{where}: expected seconds in [0.01, {MAX_S:g}], got {shown(value)}")
    return float(value)


def _motion(value, where: str) -> float | bool | None:
    """`motion`: true, false, or a threshold in % of the picture, [0, 100]."""
    if value is None or isinstance(value, bool):
        return value
    if not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise CameraFileError(f"{where}: expected true, false or a threshold in % of the picture in [0, 100], "
                              f"got {shown(value)}")
    return float(value)


def _strings(value, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise CameraFileError(f"{where}: expected a list of strings, got {shown(value)}")
    return tuple(v.strip() for v in value)


def _camera(i: int, item, path: str) -> Camera:
    if not isinstance(item, dict):
        raise CameraFileError(f"{path}: camera {i}: expected a mapping (name, url, ...), got {shown(item)}")
    name = item.get("name")
    where = f"{path}: camera {i}" + (f" ({cut(name)})" if isinstance(name, str) else "")
    unknown = sorted(set(map(str, item)) - CAMERA_KEYS)
    if unknown:
        raise CameraFileError(f"{where}: {cut(unknown[0])}: unknown key (known: {', '.join(sorted(CAMERA_KEYS))})")
    if not isinstance(name, str) or not NAME.match(name):
        raise CameraFileError(f"{where}: name: expected 1-{NAME_MAX} letters, digits, spaces, '_', '.' or '-', "
                              f"got {shown(name)}")
    url = item.get("url")
    if not isinstance(url, str) or not is_live(url.strip()):
        raise CameraFileError(f"{where}: url: expected a live source (rtsp://, rtmp://, http(s)://, tcp://, "
                              f"udp://, srt://, /dev/videoN), got {shown(url)}")
    window = _seconds(item.get("window"), f"{where}: window")
    stride = _seconds(item.get("stride"), f"{where}: stride")
    events = _strings(item["events"], f"{where}: events") if "events" in item else ()
    record_url = item.get("record_url")
    if record_url is not None and (not isinstance(record_url, str) or not is_live(record_url.strip())):
        raise CameraFileError(f"{where}: record_url: expected a live source, got {shown(record_url)}")
    record = None
    if "record" in item or record_url is not None:
        r = item.get("record") or {}
        if not isinstance(r, dict) or set(map(str, r)) - RECORD_KEYS:
            raise CameraFileError(f"{where}: record: expected {{before_s: S, after_s: S}}, got {shown(r)}")
        record = (_seconds(r.get("before_s", 5.0), f"{where}: record: before_s"),
                  _seconds(r.get("after_s", 10.0), f"{where}: record: after_s"))
    region = None
    if "region" in item:
        r = item["region"]
        try:
            if not isinstance(r, list) or len(r) != 4:
                raise ValueError(f"region: expected [x, y, w, h] as fractions of the frame, got {shown(r)}")
            region = Region(*r)
        except (ValueError, TypeError) as exc:
            raise CameraFileError(f"{where}: {exc}") from None
    publish = _targets(item["publish"], f"{where}: publish") if "publish" in item else ()
    return Camera(name, url.strip(), window, stride, events, record_url and record_url.strip(), record, region,
                  publish, _motion(item.get("motion"), f"{where}: motion"))


def _targets(value, where: str) -> tuple[str, ...]:
    """A `publish` list: each a well-formed nats:// or mqtt:// URL."""
    urls = _strings(value, where)
    for url in urls:
        problem = target_problem(url)
        if problem:
            raise CameraFileError(f"{where}: {cut(redact(url))}: {problem}")
    return urls


def same_topic(names) -> tuple[int, str, str] | None:
    """The first name that publishing would confuse with an earlier one, their `token` (the MQTT
    topic level, Home Assistant object id and NATS subject token) being equal: (its index, the
    earlier name, the token); None when every name has its own."""
    seen: dict[str, str] = {}
    for i, name in enumerate(names):
        t = token(name)
        if t in seen:
            return i, seen[t], t
        seen[t] = name
    return None


def _check_names(cameras: list[Camera], path: str) -> None:
    """Each camera's name its own, and its own once reduced to a topic level."""
    clash = same_topic([c.name for c in cameras])
    if clash:
        i, earlier, t = clash
        c = cameras[i]
        if earlier == c.name:
            raise CameraFileError(f"{path}: camera {i + 1} ({c.name}): name: used by an earlier camera")
        raise CameraFileError(f"{path}: camera {i + 1} ({c.name}): name: {earlier!r} and {c.name!r} would share "
                              f"the MQTT topic, Home Assistant entity and NATS subject {t!r}: rename one")


def load_cameras(path: str) -> CameraFile:
    data = read_yaml(path, CameraFileError, "camera file")
    if not isinstance(data, dict):
        raise CameraFileError(f"{path}: expected a mapping with 'cameras:', got {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - TOP_KEYS)
    if unknown:
        raise CameraFileError(f"{path}: {cut(unknown[0])}: unknown key (known: {', '.join(sorted(TOP_KEYS))})")
    items = data.get("cameras")
    if not isinstance(items, list) or not items:
        raise CameraFileError(f"{path}: cameras: expected a non-empty list of cameras, got {shown(items)}")
    cameras = [_camera(i, item, path) for i, item in enumerate(items, 1)]
    _check_names(cameras, path)
    publish = _targets(data["publish"], f"{path}: publish") if "publish" in data else ()
    http = data.get("http")
    try:
        if http is not None:
            parse_listen(http if isinstance(http, str) else "")
    except UsageError:
        raise CameraFileError(f"{path}: http: expected HOST:PORT, e.g. 127.0.0.1:8080, got {shown(http)}") from None
    clips = data.get("clips") or {}
    if not isinstance(clips, dict) or set(map(str, clips)) - CLIPS_KEYS:
        raise CameraFileError(f"{path}: clips: expected {{dir: FOLDER, max_gb: N, max_days: D}}, got {shown(clips)}")
    folder = clips.get("dir", "clips")
    if not isinstance(folder, str) or not folder.strip():
        raise CameraFileError(f"{path}: clips: dir: expected a folder, got {shown(folder)}")
    max_gb = clips.get("max_gb", 20.0)
    if isinstance(max_gb, bool) or not isinstance(max_gb, (int, float)) or not 0.001 <= max_gb <= 1e6:
        raise CameraFileError(f"{path}: clips: max_gb: expected a size in GB in [0.001, 1e6], got {shown(max_gb)}")
    days = clips.get("max_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 < days <= 3650):
        raise CameraFileError(f"{path}: clips: max_days: expected days in (0, 3650], got {shown(days)}")
    return CameraFile(tuple(cameras), publish, http, str(path), folder.strip(), float(max_gb),
                      None if days is None else float(days))


@dataclass
class EventFilter:
    """Which windows of which camera are events: with event labels, a window whose label is one
    of them and was not before (the first window too); without, every change of label. A window
    the motion gate answered (`no motion`) is never an event itself."""

    labels: dict[str, set] = field(default_factory=dict)  # camera -> labels; absent: every change
    recorders: dict = field(default_factory=dict)  # camera -> recorder.Recorder
    last: dict[str, str] = field(default_factory=dict)

    def check(self, camera: str, label: str | None, wall: float) -> dict | None:
        """The event this window makes, if any: {label, previous} and, where the camera records,
        the paths of its clip and snapshot."""
        if label is None:
            return None
        previous, self.last[camera] = self.last.get(camera), label
        if label == NO_MOTION:  # a still scene is no event; what moves after it is an onset
            return None
        chosen = self.labels.get(camera)
        if label == previous or (not chosen and previous is None) or (chosen and label not in chosen):
            return None
        event = {"label": label, "previous": previous}
        if camera in self.recorders:
            event |= self.recorders[camera].trigger(label, wall)
        return event


class Reloader:
    """SIGHUP re-reads the camera file: added cameras start, removed ones stop, changed ones
    restart, the others keep running untouched. A file that no longer validates is refused with
    its one-line reason and the cameras keep running as they were. A camera's recorder follows
    its camera (`record_camera`); `publish`, `http` and `clips` are read at start only. The signal
    only sets a flag; `apply` runs in the classifying loop, so the cameras change between two
    batches, never in the middle of one."""

    def __init__(self, cams: CameraFile, classes, start: Callable[[Camera], object],
                 events: EventFilter | None = None, record_camera: Callable[[Camera], object] | None = None):
        self.path, self.classes, self.start, self.events = cams.path, list(classes), start, events
        self.record_camera = record_camera
        self.current = {c.name: c for c in cams.cameras}
        self.pending = threading.Event()
        self.applied = 0
        self.refused = 0  # files refused, each an error line: a run that ends by itself then exits 1

    def request(self, *_signal) -> None:
        self.pending.set()

    def apply(self, runners: dict) -> None:
        if not self.pending.is_set():
            return
        self.pending.clear()
        try:
            new = load_cameras(self.path)
            new.check_labels(self.classes)
        except CameraFileError as exc:
            error(f"{exc}; the cameras keep running as they were")
            self.refused += 1
            return
        wanted = {c.name: c for c in new.cameras}
        stopped = [n for n in self.current if n not in wanted]
        restarted = [n for n in wanted if n in self.current and wanted[n] != self.current[n]]
        started = [n for n in wanted if n not in self.current]
        recorders = self.events.recorders if self.events is not None else {}
        for n in stopped + restarted:
            runner = runners.pop(n, None)
            if runner is not None:
                runner.close()
            if n in recorders:
                recorders.pop(n).close()  # writes its pending clips with what has arrived
        for n in restarted + started:  # the recorder first: a reader may feed it its packets
            if wanted[n].record and self.record_camera is not None:
                recorders[n] = self.record_camera(wanted[n])
            runners[n] = self.start(wanted[n])
        if self.events is not None:
            self.events.labels = {c.name: set(c.events) for c in new.cameras if c.events}
        self.current, self.applied = wanted, self.applied + 1
        changes = [f"{what} {', '.join(names)}" for what, names in
                   (("started", started), ("stopped", stopped), ("restarted", restarted)) if names]
        click.echo(f"{self.path} re-read: {'; '.join(changes) or 'no camera changed'}", err=True)
