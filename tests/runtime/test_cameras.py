"""The camera file (`picojepa-run --cameras FILE`): what it accepts, what it refuses and how it
says so, and a run of two cameras with their own windows."""
import json
from pathlib import Path
import subprocess
import sys
import time

import pytest

from picojepa.core.ports import free_port, free_ports

from conftest import REPO, run_cameras_until, serve_looped

pytest.importorskip("av")

GOOD = """\
cameras:
  - name: door
    url: rtsp://10.0.0.7/sub
    window: 2
    stride: 1
    events: [typing]
  - name: yard
    url: tcp://127.0.0.1:5000
publish: [mqtt://127.0.0.1:1883]
http: 127.0.0.1:8080
"""


def _load(tmp_path, text):
    from picojepa.runtime.live.cameras import load_cameras

    f = tmp_path / "cameras.yaml"
    f.write_text(text)
    return load_cameras(str(f)), str(f)


def test_a_good_camera_file_gives_each_camera_and_the_outputs(tmp_path):
    cams, _ = _load(tmp_path, GOOD)
    door, yard = cams.cameras
    assert (door.name, door.url, door.window_s, door.stride_s, door.events) == (
        "door", "rtsp://10.0.0.7/sub", 2.0, 1.0, ("typing",))
    assert (yard.window_s, yard.stride_s, yard.events) == (None, None, ())
    assert cams.publish == ("mqtt://127.0.0.1:1883",) and cams.http == "127.0.0.1:8080"


@pytest.mark.parametrize("text,message", [
    ("cameras: []\n", "cameras: expected a non-empty list"),
    ("camera:\n  - {name: a, url: rtsp://x}\n", "camera: unknown key (known: cameras, clips, http, publish)"),
    ("cameras:\n  - {name: a, url: rtsp://x, zoom: 2}\n", "camera 1 (a): zoom: unknown key"),
    ("cameras:\n  - {name: a, url: rtsp://x}\n  - {name: a, url: rtsp://y}\n",
     "camera 2 (a): name: used by an earlier"),
    ("cameras:\n  - {url: rtsp://x}\n", "camera 1: name: expected"),
    ("cameras:\n  - {name: a, url: clip.mp4}\n", "camera 1 (a): url: expected a live source"),
    ("cameras:\n  - {name: a, url: rtsp://x, window: 0}\n", "camera 1 (a): window: expected seconds"),
    ("cameras:\n  - {name: a, url: rtsp://x, stride: '1'}\n", "camera 1 (a): stride: expected seconds"),
    ("cameras:\n  - {name: a, url: rtsp://x, events: 3}\n", "camera 1 (a): events: expected a list of strings"),
    ("cameras:\n  - {name: a, url: rtsp://x}\nhttp: 8080\n", "http: expected HOST:PORT"),
    ("cameras:\n  - {name: a, url: rtsp://x, region: [0.5, 0, 0.6, 1]}\n", "camera 1 (a): region: x, y, w, h must be"),
    ("cameras:\n  - {name: a, url: rtsp://x, region: 0.5}\n", "camera 1 (a): region: expected [x, y, w, h]"),
    ("- just a list\n", "expected a mapping with 'cameras:'"),
    ("cameras: [\n", "cameras.yaml"),
    ("cameras:\n  - name: a\n    url: rtsp://x\n    window: 2\n    url: rtsp://y\n", "duplicate key 'url' at line 5"),
    ("cameras:\n  - {name: door 1, url: rtsp://x}\n  - {name: door.1, url: rtsp://y}\n",
     "camera 2 (door.1): name: 'door 1' and 'door.1' would share the MQTT topic, Home Assistant entity and "
     "NATS subject 'door_1'"),
    ("cameras:\n  - {name: a, url: rtsp://x}\nhttp: localhost\n", "http: expected HOST:PORT"),
    ("cameras:\n  - {name: a, url: rtsp://x, publish: 'mqtt://h:x'}\n",
     "camera 1 (a): publish: mqtt://h:x: not an MQTT URL"),
    ("cameras:\n  - {name: a, url: rtsp://x}\npublish: [ftp://h]\n",
     "publish: ftp://h: give a nats:// or an mqtt:// URL"),
])
def test_a_bad_camera_file_is_refused_naming_the_file_the_camera_and_the_key(tmp_path, text, message):
    from picojepa.runtime.live.cameras import CameraFileError

    with pytest.raises(CameraFileError) as err:
        _load(tmp_path, text)
    assert message in str(err.value) and str(tmp_path / "cameras.yaml") in str(err.value)
    assert "\n" not in str(err.value)


def test_event_labels_must_be_classes_of_the_bundle(tmp_path):
    from picojepa.runtime.live.cameras import CameraFileError

    cams, path = _load(tmp_path, GOOD)
    cams.check_labels(["typing", "exercise"])
    with pytest.raises(CameraFileError, match=r"camera 1 \(door\): events: 'typing' is no class of the bundle"):
        cams.check_labels(["spin", "pulse"])


def test_three_cameras_from_a_camera_file_each_with_its_own_window_one_with_a_region(smoke_bundle, smoke_data,
                                                                                      tmp_path):
    """door and yard differ in window and stride; gate has a region, a separate record stream
    and event labels, and writes clips."""
    video = sorted((smoke_data / "infer").glob("*/*.mp4"))[0]
    ports = free_ports(4)
    servers = [serve_looped(video, p) for p in ports]
    classes = sorted(p.name for p in (smoke_data / "infer").iterdir() if p.is_dir())
    try:
        time.sleep(0.5)
        f = tmp_path / "cameras.yaml"
        f.write_text(f"cameras:\n  - {{name: door, url: 'tcp://127.0.0.1:{ports[0]}', window: 0.5}}\n"
                     f"  - {{name: yard, url: 'tcp://127.0.0.1:{ports[1]}', window: 1, stride: 0.5}}\n"
                     f"  - {{name: gate, url: 'tcp://127.0.0.1:{ports[2]}', window: 0.5, region: [0.25, 0, 0.5, 1],\n"
                     f"     record_url: 'tcp://127.0.0.1:{ports[3]}', events: {classes},\n"
                     f"     record: {{before_s: 0.5, after_s: 0.5}}}}\nclips: {{dir: '{tmp_path / 'clips'}'}}\n")
        r = run_cameras_until(smoke_bundle, f, {"door": 4, "yard": 4, "gate": 4})
        assert r.returncode == 0, r.stderr
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        spans = {n: [round(x["end_s"] - x["start_s"], 3) for x in rows if x["stream"] == n]
                 for n in ("door", "yard", "gate")}
        assert spans["gate"] and set(spans["gate"]) == {0.5}
        gate_clips = [x["event"]["clip"] for x in rows if x["stream"] == "gate" and "event" in x]
        assert gate_clips and any(Path(c).is_file() for c in gate_clips)  # region + its own record stream
        others = [x for x in rows if x["stream"] != "gate"]
        assert all(x["event"]["previous"] not in (None, x["label"]) and "clip" not in x["event"]
                   for x in others if "event" in x)  # without event labels: each change, no clip
        assert spans["door"] and set(spans["door"]) == {0.5}
        assert spans["yard"] and set(spans["yard"]) == {1.0}
        starts = [x["start_s"] for x in rows if x["stream"] == "yard"]
        assert all(round(b - a, 3) == 0.5 for a, b in zip(starts, starts[1:]))  # stride 0.5
        assert "door:" in r.stderr and "yard:" in r.stderr  # a summary line per camera
        both = subprocess.run([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(smoke_bundle),
                               "--cameras", str(f), "clip.mp4"], capture_output=True, text=True, cwd=REPO,
                              timeout=60)
        assert both.returncode == 2 and "live sources run alone" in both.stderr
    finally:
        for s in servers:
            s.kill()
            s.wait(10)


def test_sighup_starts_added_stops_removed_restarts_changed_and_refuses_a_bad_file(smoke_bundle, smoke_data,
                                                                                   tmp_path):
    """door keeps running untouched, yard is removed, gate is added, and lane changes its stream and
    window; then a file that no longer validates is refused in one line and the cameras keep running."""
    import signal

    video = sorted((smoke_data / "infer").glob("*/*.mp4"))[0]
    # FFmpeg's TCP server takes one client: lane's restart connects to a second server ("lane2")
    ports = dict(zip(("door", "yard", "gate", "lane", "lane2"), free_ports(5)))
    servers = [serve_looped(video, p) for p in ports.values()]
    f = tmp_path / "cameras.yaml"

    def write(cams: dict):
        f.write_text("cameras:\n" + "".join(f"  - {{name: {n}, url: 'tcp://127.0.0.1:{ports[src]}', window: {w}}}\n"
                                            for n, (src, w) in cams.items()))

    def rows_of(lines: list, name: str) -> list:
        return [r for r in (json.loads(x) for x in lines) if r["stream"] == name]

    write({"door": ("door", 0.5), "yard": ("yard", 0.5), "lane": ("lane", 0.5)})
    time.sleep(0.5)
    run = subprocess.Popen([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(smoke_bundle), "--format",
                            "json", "--cameras", str(f)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=REPO)
    lines: list[str] = []
    reader = __import__("threading").Thread(target=lambda: lines.extend(iter(run.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        def wait_rows(name, n, deadline=40):
            end = time.monotonic() + deadline
            while time.monotonic() < end and len(rows_of(list(lines), name)) < n:
                time.sleep(0.1)
            assert len(rows_of(list(lines), name)) >= n, (name, lines[-3:])

        wait_rows("door", 3)
        wait_rows("yard", 2)
        write({"door": ("door", 0.5), "lane": ("lane2", 1.0), "gate": ("gate", 0.5)})
        before = len(lines)
        run.send_signal(signal.SIGHUP)
        wait_rows("gate", 2)
        mark = len(lines)
        wait_rows("lane", len(rows_of(lines[:mark], "lane")) + 2)
        f.write_text("cameras:\n  - {name: door, url: clip.mp4}\n")
        run.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        after_bad = len(lines)
        wait_rows("door", len(rows_of(lines[:after_bad], "door")) + 2)  # still running
        run.send_signal(signal.SIGTERM)
        err = run.communicate(timeout=60)[1]
    finally:
        run.kill()
        for s in servers:
            s.kill()
            s.wait(10)
    assert run.returncode == 0, err
    yard_after = rows_of(lines[mark:], "yard")
    assert not yard_after  # stopped
    lane_before = {round(r["end_s"] - r["start_s"], 3) for r in rows_of(lines[:before], "lane")}
    lane_after = [round(r["end_s"] - r["start_s"], 3) for r in rows_of(lines[mark:], "lane")]
    assert lane_before == {0.5} and lane_after and lane_after[-1] == 1.0  # restarted with its new window
    door = [r["start_s"] for r in rows_of(lines, "door")]
    assert all(b > a for a, b in zip(door, door[1:]))  # never restarted: its stream time goes on
    assert "re-read: started gate; stopped yard; restarted lane" in err
    assert "camera 1 (door): url: expected a live source" in err and "keep running as they were" in err


def test_a_bounded_run_that_printed_an_error_exits_1(smoke_bundle, smoke_data, tmp_path):
    """--duration ends the run by itself: a camera file refused on SIGHUP (one error line) makes it
    exit 1; stopped by SIGTERM instead (the test above) the same run exits 0."""
    import signal
    import threading

    video = sorted((smoke_data / "infer").glob("*/*.mp4"))[0]
    port = free_port()
    server = serve_looped(video, port)
    f = tmp_path / "cameras.yaml"
    f.write_text(f"cameras:\n  - {{name: door, url: 'tcp://127.0.0.1:{port}', window: 0.5}}\n")
    time.sleep(0.5)
    run = subprocess.Popen([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(smoke_bundle), "--format",
                            "json", "--cameras", str(f), "--duration", "15"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=REPO)
    first = threading.Event()
    threading.Thread(target=lambda: (run.stdout.readline(), first.set()), daemon=True).start()
    try:
        assert first.wait(40), "no window within 40 s"
        f.write_text("cameras:\n  - {name: door, url: clip.mp4}\n")
        run.send_signal(signal.SIGHUP)
        err = run.communicate(timeout=60)[1]
    finally:
        run.kill()
        server.kill()
        server.wait(10)
    assert "keep running as they were" in err and "--duration 15 s" in err
    assert run.returncode == 1, err


def test_a_bounded_run_whose_clips_could_not_be_written_exits_1(smoke_bundle, smoke_data, tmp_path):
    """--duration ends the run by itself after clips failed (the clips folder under a regular file):
    each failed clip was an error line, so the run does not exit 0."""
    video = sorted((smoke_data / "infer").glob("*/*.mp4"))[0]
    classes = sorted(p.name for p in (smoke_data / "infer").iterdir() if p.is_dir())
    ports = free_ports(2)  # FFmpeg's TCP server takes one client: one for the recording
    servers = [serve_looped(video, p) for p in ports]
    (tmp_path / "a-file").write_text("not a folder")
    f = tmp_path / "cameras.yaml"
    f.write_text(f"cameras:\n  - {{name: door, url: 'tcp://127.0.0.1:{ports[0]}', window: 0.5, events: {classes},\n"
                 f"     record_url: 'tcp://127.0.0.1:{ports[1]}', record: {{before_s: 0.5, after_s: 0.5}}}}\n"
                 f"clips: {{dir: '{tmp_path / 'a-file' / 'clips'}'}}\n")
    try:
        time.sleep(0.5)
        r = subprocess.run([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(smoke_bundle), "--format",
                            "json", "--cameras", str(f), "--duration", "10"], capture_output=True, text=True,
                           cwd=REPO, timeout=90)
    finally:
        for server in servers:
            server.kill()
            server.wait(10)
    assert r.stdout.strip() and "door: event clip" in r.stderr, r.stderr
    assert r.returncode == 1, r.stderr


def _decoded_seconds(path) -> tuple[int, float]:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        times = [float(f.time) for f in c.decode(s)]
        rate = float(s.average_rate)  # read while the container is open: PyAV refuses after it closes
    return len(times), times[-1] - times[0] + 1 / rate


def _recording_run(bundle, data, tmp_path, clips, window, before, after, windows, shared=False):
    """One camera analysing one stream and recording another (FFmpeg's TCP server takes one
    client each), or with `shared` recording the stream it analyses (no record_url), every label
    an event label: the finished run and the looped video."""
    video = sorted((data / "infer").glob("*/*.mp4"))[0]
    classes = sorted(p.name for p in (data / "infer").iterdir() if p.is_dir())
    ports = free_ports(1 if shared else 2)
    servers = [serve_looped(video, p) for p in ports]
    record = "" if shared else f"    record_url: 'tcp://127.0.0.1:{ports[1]}'\n"
    f = tmp_path / "cameras.yaml"
    f.write_text(f"cameras:\n  - name: door\n    url: 'tcp://127.0.0.1:{ports[0]}'\n"
                 f"{record}    window: {window}\n    events: {classes}\n"
                 f"    region: [0.1, 0.1, 0.8, 0.8]\n"
                 f"    record: {{before_s: {before}, after_s: {after}}}\nclips: {{dir: '{clips}', max_gb: 1}}\n")
    try:
        time.sleep(0.5)
        return run_cameras_until(bundle, f, {"door": windows}), video
    finally:
        for server in servers:
            server.kill()
            server.wait(10)


def test_an_event_writes_a_clip_from_before_to_after_it_remuxed_from_the_record_stream(smoke_bundle, smoke_data,
                                                                                        tmp_path):
    """Every label of the bundle is an event label, so the first window is an event: its JSON line
    names the clip and the snapshot; the MP4 decodes, starts within a GOP (here one loop of the
    video) before `before_s` ahead of the event and lasts about before + after seconds."""
    clips = tmp_path / "clips"
    r, video = _recording_run(smoke_bundle, smoke_data, tmp_path, clips, window=1, before=1, after=2, windows=6)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    events = [x["event"] for x in rows if "event" in x]
    assert events and events[0]["previous"] is None and events[0]["label"] == rows[0]["label"]
    first = events[0]
    label = rows[0]["label"].replace("_", "-")  # '_' separates camera, time and label in the name
    assert first["clip"].startswith(str(clips)) and first["clip"].endswith(f"_{label}.mp4")
    assert "door_" in first["clip"]
    written = [e for e in events if (tmp_path / "clips" / e["clip"].rsplit("/", 1)[1]).exists()]
    assert written, (events, sorted(clips.iterdir()))
    frames, seconds = _decoded_seconds(first["clip"])
    gop = _decoded_seconds(video)[1]  # the looped file has one keyframe: a GOP is one loop
    assert frames > 0 and 2.5 <= seconds <= 3.0 + gop + 0.5, seconds
    snap = first["snapshot"]
    assert snap and open(snap, "rb").read(3) == b"\xff\xd8\xff"  # a JPEG


def test_a_full_disk_for_clips_is_an_error_per_clip_and_the_camera_goes_on(smoke_bundle, smoke_data, tmp_path,
                                                                          tiny_disk):
    (tiny_disk / "clips").mkdir()
    (tiny_disk / "filler").write_bytes(b"x" * (tiny_disk_free(tiny_disk) - 4096))  # the disk is full
    r, _ = _recording_run(smoke_bundle, smoke_data, tmp_path, tiny_disk / "clips", window=0.5, before=0.5,
                          after=0.5, windows=8)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) >= 6  # classifying went on
    assert "door: event clip" in r.stderr and "No space left on device" in r.stderr, r.stderr
    assert not list((tiny_disk / "clips").glob("*.mp4"))  # no clip half-written: the partial ones are gone
    assert not list((tiny_disk / "clips").glob(".*.partial"))


def test_a_clips_folder_that_cannot_be_written_is_an_error_per_clip_and_every_window_is_printed(
        smoke_bundle, smoke_data, tmp_path):
    """clips.dir under a regular file (ENOTDIR): the event's window is printed with its event, each
    clip and snapshot is one error line, and the run goes on to its clean end."""
    (tmp_path / "a-file").write_text("not a folder")
    r, _ = _recording_run(smoke_bundle, smoke_data, tmp_path, tmp_path / "a-file" / "clips", window=0.5,
                          before=0.5, after=0.5, windows=6)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) >= 6 and "event" in rows[0] and rows[0]["event"]["snapshot"] is None
    assert "door: event clip" in r.stderr and "Not a directory" in r.stderr and "Traceback" not in r.stderr


def tiny_disk_free(path) -> int:
    import os

    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_region_on_files_is_the_file_path_crop_and_a_bad_one_is_a_usage_error(smoke_bundle, smoke_data):
    """`--region` on files: the clips the ensemble sees are the region's (equal to decoding it
    directly), and a malformed region is one line, exit 2."""
    from picojepa.core.clips import Region
    from picojepa.runtime.ensemble import Ensemble

    video = sorted((smoke_data / "infer").glob("*/*.mp4"))[0]
    whole = Ensemble.load(smoke_bundle, provider="cpu").decode(video)
    part = Ensemble.load(smoke_bundle, provider="cpu", region=Region(0.25, 0.1, 0.5, 0.8)).decode(video)
    assert part.error is None and part.frames.shape == whole.frames.shape
    assert not (part.frames == whole.frames).all()
    r = subprocess.run([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(smoke_bundle), "--format", "json",
                        "--region", "0.25,0.1,0.5,0.8", str(video)], capture_output=True, text=True, cwd=REPO,
                       timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["label"], r.stderr
    bad = subprocess.run([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(smoke_bundle), "--region",
                          "0.5,0.5,0.6,1", str(video)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert bad.returncode == 2 and "--region: x, y, w, h must be fractions" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_a_camera_file_camera_recording_its_analysed_stream_opens_it_once(smoke_bundle, smoke_data, tmp_path):
    """No record_url, on a source that takes one client (FFmpeg's TCP server): the camera's reader
    feeds its recorder, so windows are classified and the event clip is written."""
    r, _ = _recording_run(smoke_bundle, smoke_data, tmp_path, tmp_path / "clips", window=0.5, before=0.5,
                          after=0.5, windows=6, shared=True)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 0 and len(rows) >= 6, r.stderr
    clips = [row["event"]["clip"] for row in rows if row.get("event") and row["event"].get("clip")]
    assert clips and any(Path(c).is_file() for c in clips), r.stderr
