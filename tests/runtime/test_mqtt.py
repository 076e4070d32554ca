"""Live results on MQTT against a real broker (Debian's mosquitto, which `make test` installs as
root), started on loopback by the fixtures: every window's result, the retained state, events,
the availability topic and its last will, Home Assistant's discovery messages, a refused login
and a broker that is not there."""
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from picojepa.core.ports import free_port, free_ports

from conftest import REPO

pytest.importorskip("av")
mqtt = pytest.importorskip("paho.mqtt.client")
MOSQUITTO = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if os.path.exists(p)), None)
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="no mosquitto (sudo apt-get install mosquitto)")


def _wait_port(port: int, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {deadline_s} s")


def _broker(tmp: Path, users: dict | None = None, port: int | None = None):
    port, conf = port or free_port(), tmp / "mosquitto.conf"
    # `user`: as root mosquitto would switch to the user `mosquitto`, who cannot read pytest's folders
    lines = [f"listener {port} 127.0.0.1", "persistence false", f"allow_anonymous {'false' if users else 'true'}",
             f"user {getpass.getuser()}"]
    if users:
        pw = tmp / "passwd"
        pw.write_text("")
        for user, password in users.items():
            subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True, timeout=30,
                           capture_output=True)
        lines.append(f"password_file {pw}")
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port)
    return proc, port


@pytest.fixture
def broker(tmp_path):
    proc, port = _broker(tmp_path)
    yield port
    proc.terminate()
    proc.wait(10)


class Subscriber:
    """Every message on `#` with its retain flag, from a paho client of its own."""

    def __init__(self, port: int):
        self.messages, self._got = [], threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{time.monotonic_ns()}")
        self.client.on_connect = lambda c, *_: c.subscribe("#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))
        self._got.set()

    def topic(self, topic: str) -> list[str]:
        return [p for t, p, _ in self.messages if t == topic]

    def wait_for(self, topic: str, payload: str | None = None, deadline_s: float = 20.0) -> None:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if any(t == topic and (payload is None or p == payload) for t, p, _ in self.messages):
                return
            time.sleep(0.05)
        raise AssertionError(f"no {topic} {payload or ''} within {deadline_s} s: {self.messages[-5:]}")

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def _cmd(bundle, source, *args) -> list[str]:
    return [sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(bundle), "--format", "json",
            source, "--window", "0.5", *args]


def test_results_state_events_availability_and_discovery_reach_a_subscriber(smoke_bundle, broker, looped_stream):
    from picojepa.runtime.live.mqtt import topics

    live = Subscriber(broker)
    time.sleep(0.3)
    run = subprocess.run(_cmd(smoke_bundle, looped_stream, "--name", "front door", "--duration", "8",
                              "--publish", f"mqtt://127.0.0.1:{broker}"), capture_output=True, text=True,
                         cwd=REPO, timeout=90)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    node = socket.gethostname()
    t = topics("front door", node)
    assert t["result"] == "picojepa/front_door/result"
    live.wait_for(t["availability"], "offline")
    results = [json.loads(p) for p in live.topic(t["result"])]
    assert len(rows) >= 3 and [r["start_s"] for r in results] == [r["start_s"] for r in rows]
    changes = 1 + sum(a["label"] != b["label"] for a, b in zip(rows, rows[1:]))
    assert len(live.topic(t["state"])) == changes and len(live.topic(t["event"])) == changes - 1
    assert live.topic(t["availability"])[0] == "online"
    live.close()

    later = Subscriber(broker)  # arrives after the run: gets what was retained
    later.wait_for(t["discovery"])
    later.wait_for(t["state"])
    retained = {t_: (p, r) for t_, p, r in later.messages}
    state = json.loads(retained[t["state"]][0])
    last_change = [r for a, r in zip([None] + rows, rows) if a is None or a["label"] != r["label"]][-1]
    assert retained[t["state"]][1] and state["label"] == last_change["label"]
    assert state["since_s"] == last_change["start_s"]
    assert retained[t["availability"]] == ("offline", True)
    config = json.loads(retained[t["discovery"]][0])
    assert config["state_topic"] == t["state"] and config["availability_topic"] == t["availability"]
    assert config["value_template"] == "{{ value_json.label }}" and config["unique_id"].startswith("picojepa_")
    assert t["result"] not in retained  # results are not retained, only the state
    later.close()


def test_the_last_will_says_offline_when_the_run_dies_without_a_goodbye(smoke_bundle, broker, looped_stream):
    from picojepa.runtime.live.mqtt import topics

    t = topics("cam", socket.gethostname())
    live = Subscriber(broker)
    run = subprocess.Popen(_cmd(smoke_bundle, looped_stream, "--name", "cam", "--publish",
                                f"mqtt://127.0.0.1:{broker}"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        live.wait_for(t["result"], deadline_s=40)
        assert live.topic(t["availability"]) == ["online"]
        run.send_signal(signal.SIGKILL)
        run.wait(10)
        live.wait_for(t["availability"], "offline", deadline_s=10)  # the broker's will, not the run's
    finally:
        run.kill()
        live.close()


def test_a_refused_login_and_a_missing_broker_are_one_line_errors(smoke_bundle, looped_stream, tmp_path):
    proc, port = _broker(tmp_path, users={"cam": "right"})
    try:
        bad = subprocess.run(_cmd(smoke_bundle, looped_stream, "--duration", "3", "--publish",
                                  f"mqtt://cam:wrong@127.0.0.1:{port}"), capture_output=True, text=True,
                             cwd=REPO, timeout=60)
        assert bad.returncode == 3 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert "refused" in bad.stderr and "wrong" not in bad.stderr and "Traceback" not in bad.stderr
        ok = subprocess.run(_cmd(smoke_bundle, looped_stream, "--duration", "3", "--publish",
                                 f"mqtt://cam:right@127.0.0.1:{port}"), capture_output=True, text=True,
                            cwd=REPO, timeout=60)
        assert ok.returncode == 0, ok.stderr
    finally:
        proc.terminate()
        proc.wait(10)
    t0 = time.monotonic()
    gone = subprocess.run(_cmd(smoke_bundle, looped_stream, "--connect-timeout", "2", "--publish",
                               f"mqtt://127.0.0.1:{free_port()}"), capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert gone.returncode == 3 and "no MQTT broker answered within 2 s" in gone.stderr, gone.stderr
    assert len(gone.stderr.strip().splitlines()) == 1 and time.monotonic() - t0 < 30


def test_a_camera_file_sends_each_camera_where_it_says(smoke_bundle, smoke_data, broker, tmp_path):
    """door names the broker itself, yard names nothing and the file no run-wide target: only
    door's results reach the broker."""
    from conftest import run_cameras_until, serve_looped
    from picojepa.runtime.live.mqtt import topics

    video = sorted((smoke_data / "infer").glob("*/*.mp4"))[0]
    ports = free_ports(2)
    servers = [serve_looped(video, p) for p in ports]
    f = tmp_path / "cameras.yaml"
    f.write_text(f"cameras:\n  - {{name: door, url: 'tcp://127.0.0.1:{ports[0]}', window: 0.5,\n"
                 f"     publish: ['mqtt://127.0.0.1:{broker}']}}\n"
                 f"  - {{name: yard, url: 'tcp://127.0.0.1:{ports[1]}', window: 0.5}}\n")
    live = Subscriber(broker)
    try:
        time.sleep(0.5)
        run = run_cameras_until(smoke_bundle, f, {"door": 3, "yard": 3})
    finally:
        for s in servers:
            s.kill()
            s.wait(10)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    node = socket.gethostname()
    live.wait_for(topics("door", node)["availability"], "offline")
    assert len(live.topic(topics("door", node)["result"])) == sum(r["stream"] == "door" for r in rows) > 0
    assert not live.topic(topics("yard", node)["result"]) and any(r["stream"] == "yard" for r in rows)
    live.close()


PUBLISH = """
import sys, time
from picojepa.runtime.live.mqtt import MqttPublisher
p = MqttPublisher(sys.argv[1], 10)
for i in range(int(sys.argv[3])):
    p.publish(sys.argv[2], {"label": "a", "start_s": i})
    time.sleep(0.02)
p.close()
"""


def _wait(condition, deadline_s: float) -> bool:
    """Whether `condition()` came true within the deadline."""
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def test_two_runs_on_one_host_publish_at_once_and_both_deliver_every_result(broker):
    """Two processes of one box on one broker: neither knocks the other off (a client id each)."""
    live = Subscriber(broker)
    time.sleep(0.3)
    n = 60
    runs = [subprocess.Popen([sys.executable, "-c", PUBLISH, f"mqtt://127.0.0.1:{broker}", cam, str(n)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
            for cam in ("one", "two")]
    try:
        errs = [r.communicate(timeout=60)[1] for r in runs]
    finally:
        for r in runs:
            r.kill()
    assert [r.returncode for r in runs] == [0, 0], errs
    _wait(lambda: all(len(live.topic(f"picojepa/{c}/result")) >= n for c in ("one", "two")), 10)
    assert [len(live.topic(f"picojepa/{c}/result")) for c in ("one", "two")] == [n, n]
    live.close()


def test_one_run_naming_the_broker_twice_keeps_both_connections(broker):
    """A camera file that spells one broker two ways opens two connections of one process:
    each its own client id (at most 23 characters, what every MQTT 3.1.1 broker accepts)."""
    from picojepa.runtime.live.publish import open_publisher

    urls = (f"mqtt://127.0.0.1:{broker}", f"mqtt://localhost:{broker}")
    live = Subscriber(broker)
    time.sleep(0.3)
    pubs = open_publisher((), 10, routes={"a": (urls[0],), "b": (urls[1],)})
    ids = [t._client._client_id.decode() for t in pubs.targets.values()]
    n = 40
    for i in range(n):
        pubs.publish("a", {"label": "x", "start_s": i})
        pubs.publish("b", {"label": "x", "start_s": i})
        time.sleep(0.02)
    pubs.close()
    _wait(lambda: all(len(live.topic(f"picojepa/{c}/result")) >= n for c in "ab"), 10)
    assert [len(live.topic(f"picojepa/{c}/result")) for c in "ab"] == [n, n]
    assert len(set(ids)) == 2 and all(len(i) <= 23 for i in ids), ids
    live.close()


def test_a_broker_that_dies_is_reported_when_it_drops_and_when_it_is_back_and_losses_are_counted(tmp_path,
                                                                                                   caplog):
    """While the broker is away results (QoS 0) are lost and counted, the state (QoS 1) waits and
    arrives once it is back; one line when the connection drops, one when it is back."""
    import logging

    from picojepa.runtime.live.mqtt import MqttPublisher

    caplog.set_level(logging.WARNING, logger="picojepa.runtime.live.mqtt")
    proc, port = _broker(tmp_path)
    pub = MqttPublisher(f"mqtt://127.0.0.1:{port}", 10)
    try:
        pub.publish("cam", {"label": "a", "start_s": 0})
        assert _wait(lambda: pub.state()["pending"] == 0, 10)
        assert pub.connected and pub.lost == 0 and pub.delivered >= 4  # online, discovery, result, state
        proc.terminate()
        proc.wait(10)
        assert _wait(lambda: not pub.connected, 10)
        for i in range(1, 6):
            pub.publish("cam", {"label": "b", "start_s": i})
        assert pub.state()["lost"] == 5 and pub.pending == 1 and pub.disconnects == 1 and pub.down_since
        proc, _ = _broker(tmp_path, port=port)
        assert _wait(lambda: pub.connected, 20)
        assert _wait(lambda: pub.state()["pending"] == 0, 10)  # the state held while the broker was away
        assert pub.down_since is None
    finally:
        pub.close()
    lines = [r.getMessage() for r in caplog.records]
    assert sum("lost" in m and "connection" in m for m in lines) == 1, lines
    assert sum("connected again" in m for m in lines) == 1, lines
    assert any("5 of" in m and "did not reach the broker" in m for m in lines), lines
    assert pub.lost == 5 and pub.pending == 0
    later = Subscriber(port)
    try:
        later.wait_for("picojepa/cam/state")
        assert json.loads(later.topic("picojepa/cam/state")[0])["label"] == "b"
    finally:
        later.close()
        proc.terminate()
        proc.wait(10)
