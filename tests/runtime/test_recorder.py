"""Event clips on loopback: retention that only ever deletes the service's own files, a clips folder
that cannot be written, a recording stream that fails and comes back, and a camera that records
the stream it analyses from one connection. Every server started here is FFmpeg on loopback, each
wait bounded."""
import json
import os
import shutil
import time

import pytest

from picojepa.core.ports import free_port

from conftest import serve_looped

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")
pytest.importorskip("av")


def _until(check, deadline_s: float, what: str):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if got := check():
            return got
        time.sleep(0.1)
    raise AssertionError(f"not within {deadline_s:g} s: {what}")


def _aged(path, size: int, age_days: float):
    path.write_bytes(b"x" * size)
    t = time.time() - age_days * 86400
    os.utime(path, (t, t))
    return path


def test_retention_deletes_only_the_clips_the_service_wrote_never_the_users_files(tmp_path):
    """Clips of an earlier run (in the journal) age out and the oldest go past the size bound after
    a restart; the user's own videos and pictures stay, even one named like a clip and older than
    all, and so does a clip of the journal that the user has since replaced."""
    from picojepa.runtime.live.recorder import ClipStore

    mine = [_aged(tmp_path / n, 5000, 90) for n in ("holiday.mp4", "cat.jpg", "door_20200101-000000-000_x.mp4")]
    earlier = ClipStore(tmp_path, max_bytes=1e9)  # the run before a restart
    ours = [_aged(tmp_path / f"door_2026010{i}-000000-000_fight.{ext}", 300, age)
            for i, (age, ext) in enumerate([(40, "mp4"), (3, "jpg"), (2, "mp4"), (1, "mp4")])]
    replaced = _aged(tmp_path / "door_20260105-000000-000_fight.mp4", 300, 50)
    for p in [*ours, replaced]:
        earlier.add(p)
    _aged(replaced, 999, 50)  # the user's file now, under the clip's name
    assert {p.name for p in tmp_path.iterdir()} >= {p.name for p in [*mine, *ours]}

    store = ClipStore(tmp_path, max_bytes=700, max_age_s=30 * 86400)  # a new run reads the journal
    newest = _aged(tmp_path / "door_20260110-000000-000_fight.jpg", 300, 0)
    store.add(newest)
    left = {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")}
    assert left == {*(p.name for p in mine), replaced.name, ours[3].name, newest.name}
    assert replaced.stat().st_size == 999
    listed = json.loads((tmp_path / ".picojepa-clips.json").read_text())["files"]
    assert set(listed) == {ours[3].name, newest.name}


def test_a_new_clip_never_takes_the_name_of_a_file_already_there(tmp_path):
    from picojepa.runtime.live.recorder import ClipStore

    store = ClipStore(tmp_path, 1e9)
    clip, snap = store.names("door", "fight", 1.5e9)
    clip.write_bytes(b"the user's")
    again, snap2 = store.names("door", "fight", 1.5e9)
    assert again != clip and snap2 != snap and again.name.endswith("_fight-2.mp4")


def _recorder(url, clips, before=0.5, after=0.5, fed=False):
    from picojepa.runtime.live.reader import LiveOptions
    from picojepa.runtime.live.recorder import ClipStore, Recorder, RecordOptions

    return Recorder("door", url, RecordOptions(before, after), ClipStore(clips, 1e9),
                    LiveOptions(connect_timeout_s=2.0), fed=fed)


@pytest.fixture
def video(smoke_data):
    return sorted((smoke_data / "infer").glob("*/*.mp4"))[0]


def test_a_clips_folder_that_cannot_be_written_is_an_error_per_clip_and_the_recorder_goes_on(video, tmp_path,
                                                                                              capfd):
    """The clips folder under a regular file (ENOTDIR; as root, permissions cannot make it fail):
    each event's snapshot and clip are one error line each, the event still returns, and the next
    event is recorded (and fails) the same way."""
    (tmp_path / "a-file").write_text("not a folder")
    port = free_port()
    server = serve_looped(video, port)
    rec = _recorder(f"tcp://127.0.0.1:{port}", tmp_path / "a-file" / "clips")
    try:
        _until(lambda: rec.up and any(item[4] for item in list(rec.ring)), 20, "the recording stream up")
        for n in (1, 2):
            event = rec.trigger("fight", time.time())
            assert event["snapshot"] is None and event["clip"].endswith("_fight.mp4")
            _until(lambda n=n: rec.failed == n, 10, f"clip {n} failed")
        assert rec.snapshots_failed == 2 and rec.written == 0 and rec.up
    finally:
        rec.close()
        server.kill()
        server.wait(10)
    err = capfd.readouterr().err
    assert err.count("door: event clip") == 2 and err.count("door: snapshot") == 2, err
    assert "Not a directory" in err and "Traceback" not in err


def test_a_recording_stream_that_fails_is_one_line_and_its_events_name_no_clip_until_it_is_back(video, tmp_path,
                                                                                                  capfd):
    """Nothing listens at the record URL: one error line however often it is retried; an event then
    says why it has no clip; the status JSON and the metrics show the recording down. Once a server
    listens there: one line that it is back, and the next event's clip is written."""
    from types import SimpleNamespace

    from prometheus_client.parser import text_string_to_metric_families

    from picojepa.runtime.live.reader import LiveStats
    from picojepa.runtime.live.status import Status

    port = free_port()
    rec = _recorder(f"tcp://127.0.0.1:{port}", tmp_path / "clips")
    status = Status({"door": SimpleNamespace(stats=LiveStats(), finished=False, error=None)}, None, {"door": rec})
    server = None
    try:
        _until(lambda: rec.reason, 10, "the recording stream reported down")
        time.sleep(2.0)  # retried meanwhile
        event = rec.trigger("fight", time.time())
        assert event["clip"] is None and event["snapshot"] is None and "down" in event["clip_error"]
        cam = status.as_json()["cameras"][0]["recording"]
        assert cam["up"] is False and cam["error"] and cam["clips_failed"] == 1 and cam["outages"] == 1
        metrics = {(s.name, s.labels["camera"]): s.value for f in text_string_to_metric_families(
            status.metrics_text().decode()) for s in f.samples if "camera" in s.labels}
        assert metrics[("picojepa_recording_up", "door")] == 0 and metrics[("picojepa_clips_failed_total", "door")] == 1
        server = serve_looped(video, port)
        _until(lambda: rec.up and any(item[4] for item in list(rec.ring)), 20, "the recording stream back")
        event = rec.trigger("fight", time.time())
        _until(lambda: rec.written == 1, 10, "the clip written")
        assert os.path.exists(event["clip"]) and status.as_json()["cameras"][0]["recording"]["up"] is True
    finally:
        rec.close()
        if server is not None:
            server.kill()
            server.wait(10)
    err = capfd.readouterr().err
    assert err.count("door: recording stream") == 1 and err.count("recording stream is back") == 1, err
    assert rec.errors == 2  # the outage and the event without a clip


def test_a_camera_recording_its_analysed_stream_opens_it_once(video, tmp_path):
    """FFmpeg's TCP server takes one client: the analysed reader feeds the recorder its packets,
    so windows are classified and the event's clip is written from the same connection."""
    import av

    from picojepa.core.clips import ClipSpec
    from picojepa.runtime.live.reader import LiveOptions, LiveRunner

    port = free_port()
    server = serve_looped(video, port)
    url = f"tcp://127.0.0.1:{port}"
    rec = _recorder(url, tmp_path / "clips", before=0.5, after=0.5, fed=True)
    runner = LiveRunner(url, ClipSpec(frames=4, size=32), LiveOptions(window_s=0.5), tap=rec)
    try:
        assert runner.next_window(time.monotonic() + 20) is not None, runner.error
        _until(lambda: rec.up and any(item[4] for item in list(rec.ring)), 20, "the packets fed to the recorder")
        event = rec.trigger("fight", time.time())
        _until(lambda: rec.written == 1, 10, "the clip written")
        assert runner.next_window(time.monotonic() + 10) is not None and runner.error is None
    finally:
        runner.close()
        rec.close()
        server.kill()
        server.wait(10)
    with av.open(event["clip"]) as c:
        assert sum(1 for _ in c.decode(video=0)) > 0
    assert event["snapshot"] and open(event["snapshot"], "rb").read(3) == b"\xff\xd8\xff"
    assert rec.errors == 0 and rec.state()["shared"]
