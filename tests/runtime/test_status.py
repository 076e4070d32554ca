"""`picojepa-run --http`: /metrics parsed with the Prometheus client's own parser and matching what
was classified, /api/status, the page, and bad or taken addresses as one-line errors."""
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from picojepa.core.ports import free_port

from conftest import REPO

pytest.importorskip("av")
parser = pytest.importorskip("prometheus_client.parser")


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def _samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in parser.text_string_to_metric_families(text) for s in fam.samples}


def test_metrics_and_status_match_what_was_classified(smoke_bundle, smoke_data):
    from picojepa.runtime.ensemble import Ensemble
    from picojepa.runtime.live.reader import LiveOptions, LiveRunner, classify_streams
    from picojepa.runtime.live.status import Status, StatusServer

    ens = Ensemble.load(smoke_bundle, provider="cpu")
    videos = sorted((smoke_data / "infer").glob("*/*.mp4"))[:2]
    runners = {f"cam{i}": LiveRunner(str(v), ens.bundle.clip, LiveOptions(window_s=0.5)) for i, v in enumerate(videos)}
    status = Status(runners)
    server = StatusServer(status, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.address[1]}"
    got: dict[str, list] = {n: [] for n in runners}
    try:
        for name, w, pred in classify_streams(ens, runners, "majority", threading.Event()):
            status.record(name, w, pred, {"label": pred.label, "confidence": pred.confidence,
                                          "start_s": w.start_s, "end_s": w.end_s, "wall_time": w.wall_time})
            got[name].append(pred.label)
        code, kind, text = _get(f"{base}/metrics")
        assert code == 200 and kind.startswith("text/plain")
        m = _samples(text)
        for name, labels in got.items():
            cam = (("camera", name),)
            assert len(labels) >= 1  # a file is read faster than real time: some windows may be dropped
            assert m[("picojepa_windows_classified_total", cam)] == len(labels) == runners[name].stats.windows
            assert m[("picojepa_frames_decoded_total", cam)] == runners[name].stats.frames > 0
            assert 0 < m[("picojepa_frames_converted_total", cam)] <= runners[name].stats.frames
            assert m[("picojepa_window_latency_seconds_count", cam)] == len(labels)
            assert m[("picojepa_inference_seconds_count", cam)] == len(labels)
            assert m[("picojepa_windows_dropped_total", cam)] == runners[name].stats.dropped
            assert m[("picojepa_stream_up", cam)] == 0  # a file played as a stream: over
        code, kind, text = _get(f"{base}/api/status")
        s = json.loads(text)
        assert code == 200 and kind == "application/json"
        by = {c["name"]: c for c in s["cameras"]}
        for name, labels in got.items():
            assert by[name]["windows"] == len(labels) and by[name]["label"] == labels[-1]
            changes = 1 + sum(a != b for a, b in zip(labels, labels[1:]))
            assert len(by[name]["events"]) == min(changes, 20) and by[name]["events"][-1]["label"] == labels[-1]
        code, kind, text = _get(f"{base}/")
        assert code == 200 and "pico-JEPA cameras" in text and "/api/status" in text
        assert _get(f"{base}/nope")[0] == 404
        with urllib.request.urlopen(f"{base}/snapshot/cam0.jpg", timeout=5) as r:
            assert r.headers["Content-Type"] == "image/jpeg" and r.read(3) == b"\xff\xd8\xff"
        assert _get(f"{base}/snapshot/nobody.jpg")[0] == 404
        assert _get(f"{base}/clips/..%2Fetc%2Fpasswd")[0] == 404 and _get(f"{base}/clips/x.mp4")[0] == 404
    finally:
        server.close()
        for r in runners.values():
            r.close()


def _cmd(bundle, source, *args):
    return [sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(bundle), "--format", "json", source,
            "--window", "0.5", *args]


def test_the_run_serves_its_status_while_it_lasts(smoke_bundle, looped_stream):
    port = free_port()
    run = subprocess.Popen(_cmd(smoke_bundle, looped_stream, "--name", "door", "--duration", "8", "--http",
                                f"127.0.0.1:{port}"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=REPO)
    try:
        end, seen = time.monotonic() + 40, None
        while time.monotonic() < end and run.poll() is None:
            try:
                seen = json.loads(_get(f"http://127.0.0.1:{port}/api/status")[2])
                if seen["cameras"][0]["windows"] >= 2:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        assert seen and seen["cameras"][0]["name"] == "door" and seen["cameras"][0]["up"], seen
        assert ("picojepa_stream_up", (("camera", "door"),)) in _samples(_get(f"http://127.0.0.1:{port}/metrics")[2])
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
    finally:
        run.kill()
    with pytest.raises(OSError):  # gone with the run
        socket.create_connection(("127.0.0.1", port), 0.5).close()


def test_a_bad_or_taken_address_is_a_one_line_error(smoke_bundle, looped_stream):
    bad = subprocess.run(_cmd(smoke_bundle, looped_stream, "--http", "8080"), capture_output=True, text=True, cwd=REPO,
                         timeout=60)
    assert bad.returncode == 2 and "--http 8080: give HOST:PORT" in bad.stderr, bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(_cmd(smoke_bundle, looped_stream, "--duration", "3", "--http", f"127.0.0.1:{port}"),
                           capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 3 and f"--http 127.0.0.1:{port}: cannot listen" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (sudo apt-get install chromium)")
def test_the_status_page_shows_every_camera_in_a_real_browser(smoke_bundle, smoke_data, tmp_path):
    """Headless Chromium loads `/`, runs its script (which fetches /api/status) and shows a row per
    camera with its latest label and window count."""
    from picojepa.runtime.ensemble import Ensemble
    from picojepa.runtime.live.reader import LiveOptions, LiveRunner, classify_streams
    from picojepa.runtime.live.status import Status, StatusServer

    ens = Ensemble.load(smoke_bundle, provider="cpu")
    videos = sorted((smoke_data / "infer").glob("*/*.mp4"))[:2]
    runners = {n: LiveRunner(str(v), ens.bundle.clip, LiveOptions(window_s=0.5))
               for n, v in zip(("door", "yard"), videos)}
    status = Status(runners)
    last = {}
    for name, w, pred in classify_streams(ens, runners, "majority", threading.Event()):
        status.record(name, w, pred, {"label": pred.label, "confidence": pred.confidence, "start_s": w.start_s,
                                      "end_s": w.end_s, "wall_time": w.wall_time})
        last[name] = pred.label
    server = StatusServer(status, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.address[1]}/"
        browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
                   "--virtual-time-budget=5000"]
        dom = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        shot = tmp_path / "page.png"
        subprocess.run([*browser, "--window-size=900,300", f"--screenshot={shot}", url], capture_output=True,
                       timeout=120)
    finally:
        server.close()
        for r in runners.values():
            r.close()
    for name, label in last.items():
        row = dom.split(f'data-camera="{name}"', 1)[1].split("</tr>", 1)[0]
        assert f'<td class="label">{label}</td>' in row
        assert f'<td class="windows">{runners[name].stats.windows}</td>' in row
        assert f'src="/snapshot/{name}.jpg' in row
    assert shot.stat().st_size > 1000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_events_with_clips_are_listed_and_their_files_served_from_the_clips_folder_only(tmp_path):
    from types import SimpleNamespace

    import numpy as np

    from picojepa.runtime.live.reader import LiveStats
    from picojepa.runtime.live.status import Status, StatusServer

    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "door_1_fight.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (tmp_path / "secret.mp4").write_bytes(b"no")
    runner = SimpleNamespace(stats=LiveStats(), finished=False, error=None)
    status = Status({"door": runner}, str(clips))
    w = SimpleNamespace(wall_time=time.time(), frames=np.zeros((8, 16, 16, 3), np.uint8))
    pred = SimpleNamespace(timings_ms={"inference": 3.0})
    status.record("door", w, pred, {"label": "fight", "start_s": 1.0, "event": {
        "label": "fight", "previous": None, "clip": str(clips / "door_1_fight.mp4"), "snapshot": None}})
    server = StatusServer(status, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.address[1]}"
    try:
        event = json.loads(_get(f"{base}/api/status")[2])["cameras"][0]["events"][-1]
        assert event["clip"] == "door_1_fight.mp4" and event["label"] == "fight"
        code, kind, body = _get(f"{base}/clips/door_1_fight.mp4")
        assert code == 200 and kind == "video/mp4"
        assert _get(f"{base}/clips/..%2Fsecret.mp4")[0] == 404 and _get(f"{base}/clips/secret.mp4")[0] == 404
    finally:
        server.close()


def _quiet_status(clips_dir=None):
    from types import SimpleNamespace

    from picojepa.runtime.live.reader import LiveStats
    from picojepa.runtime.live.status import Status

    return Status({"door": SimpleNamespace(stats=LiveStats(), finished=False, error=None)}, clips_dir)


def _closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """Whether the server closes `sock` (EOF or reset) before `deadline` (time.monotonic())."""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(4096):
                return True
        except ConnectionError:
            return True
        except TimeoutError:
            return False
    return False


def test_idle_connections_are_bounded_closed_at_their_deadline_and_a_real_get_is_still_answered():
    """200 connections that send nothing and one that sends half a request: the server keeps at most
    its bound of threads, answers a real GET at once, and closes every idle one within its deadline."""
    from picojepa.runtime.live.status import StatusServer

    server = StatusServer(_quiet_status(), "127.0.0.1", 0, timeout_s=1.0, max_connections=16)
    address = ("127.0.0.1", server.address[1])
    before = threading.active_count()
    idle: list[socket.socket] = []
    try:
        for i in range(200):
            idle.append(socket.create_connection(address, timeout=5))
            if i == 100:
                idle[-1].sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")  # the headers never end
        threads = threading.active_count() - before
        t0 = time.monotonic()
        code, _, text = _get(f"http://127.0.0.1:{address[1]}/api/status")
        assert code == 200 and json.loads(text)["cameras"][0]["name"] == "door"
        assert time.monotonic() - t0 < 2.0
        # the bound, and a few threads that gave their slot back and are ending (not 200)
        assert threads <= 16 + 4 and threading.active_count() - before <= 16 + 4, threads
        end = time.monotonic() + 1.0 + 2.0  # the last one's deadline, and a margin
        assert all(_closed_by_server(s, end) for s in idle)
        settled = time.monotonic() + 5
        while threading.active_count() > before and time.monotonic() < settled:
            time.sleep(0.05)
        assert threading.active_count() <= before
    finally:
        for s in idle:
            s.close()
        server.close()


def test_a_client_that_resets_its_connection_leaves_no_traceback(tmp_path, capfd):
    """Clients that ask for a clip and reset the connection at once: not one traceback on stderr,
    and the server goes on answering."""
    import struct

    from picojepa.runtime.live.status import StatusServer

    (tmp_path / "door_1_fight.mp4").write_bytes(b"\x00" * (8 << 20))
    server = StatusServer(_quiet_status(str(tmp_path)), "127.0.0.1", 0)
    port = server.address[1]
    try:
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /clips/door_1_fight.mp4 HTTP/1.0\r\n\r\n")
            time.sleep(0.05)  # the server is writing the clip
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()  # a reset, not a clean close
        time.sleep(0.5)
        assert _get(f"http://127.0.0.1:{port}/api/status")[0] == 200
    finally:
        server.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Connection" not in err, err


def test_the_publishers_connection_and_losses_are_on_the_status_page_and_in_metrics():
    from picojepa.runtime.live.status import Status

    class Publishers:  # the shape of publish.Publishers.state(): per target URL, credentials masked
        def state(self):
            return {"mqtt://***@broker:1883": {"connected": False, "sent": 9, "lost": 4}}

    status = Status({}, publisher=Publishers())
    assert status.as_json()["publishing"] == {"mqtt://***@broker:1883": {"connected": False, "sent": 9, "lost": 4}}
    text = status.metrics_text().decode()
    assert 'picojepa_publish_connected{target="mqtt://***@broker:1883"} 0.0' in text
    assert 'picojepa_publish_lost_total{target="mqtt://***@broker:1883"} 4.0' in text
    assert Status({}).as_json()["publishing"] == {}
