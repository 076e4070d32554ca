"""Live results on MQTT, where Home Assistant and most home and building systems listen:
`picojepa-run SOURCE --publish mqtt://[user:pass@]host[:1883]`.

Topics (`<camera>` is the stream's name reduced to topic-safe characters; `<node>` this box's):
- `picojepa/<camera>/result`: every window's JSON line, as printed;
- `picojepa/<camera>/state`: retained, `{label, confidence, since_s, start_s, end_s}`, sent when
  the label changes (and for the first window), so that a subscriber arriving later reads it;
- `picojepa/<camera>/event`: each event (a label change; with a camera file's event labels, the
  onset of one of them): `{label, previous, at_s, ...}` and, where the camera records, `clip`
  and `snapshot`, the paths of its MP4 and JPEG;
- `picojepa/<node>/availability`: retained `online` while the run is up; `offline` when it stops,
  and as the broker's last will when the connection dies without a goodbye;
- `homeassistant/sensor/picojepa_<node>_<camera>/config`: retained MQTT discovery messages, so each
  camera's label appears in Home Assistant as a sensor without configuring anything there.

The client is paho-mqtt (the Eclipse project's, the most used Python MQTT client), its network
loop in its own thread: publishing never blocks the classifier, and while the broker is away the
client reconnects by itself. Results (QoS 0) published meanwhile are lost and counted; states,
events and discovery (QoS 1) wait in a bounded queue and go out once it is back. A line is logged
when the connection drops and one when it is back. Connecting has a deadline; a refused login is
a one-line error. Each connection has a client id of its own (host, process, connection), so two
runs on one box, or one run naming a broker twice, never knock each other off the broker.
"""
from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from urllib.parse import unquote, urlsplit

from picojepa.core.console import one_line
from picojepa.core.errors import PicoJepaError
from picojepa.core.redact import redact

from ..net import urls
from .names import token

log = logging.getLogger(__name__)
ROOT, DISCOVERY = "picojepa", "homeassistant"
CLOSE_S = 5.0
QUEUE_MAX = 1000  # QoS-1 messages held while the broker is away; more are lost (and counted)
CLIENT_ID_MAX = 23  # the longest client id every MQTT 3.1.1 broker must accept
_connections = itertools.count()  # this process's connections, for their client ids


class MqttError(PicoJepaError, RuntimeError):
    """The MQTT broker could not be reached or refused us."""


def topics(camera: str, node: str) -> dict[str, str]:
    c = token(camera)
    return {"result": f"{ROOT}/{c}/result", "state": f"{ROOT}/{c}/state", "event": f"{ROOT}/{c}/event",
            "availability": f"{ROOT}/{token(node)}/availability",
            "discovery": f"{DISCOVERY}/sensor/picojepa_{token(node)}_{c}/config"}


def discovery(camera: str, node: str, bundle_id: str = "") -> dict:
    """Home Assistant's MQTT discovery payload for a camera's label sensor."""
    t = topics(camera, node)
    return {"name": f"{camera} activity", "unique_id": f"picojepa_{token(node)}_{token(camera)}",
            "state_topic": t["state"], "value_template": "{{ value_json.label }}",
            "json_attributes_topic": t["state"], "availability_topic": t["availability"],
            "payload_available": "online", "payload_not_available": "offline", "icon": "mdi:cctv",
            "device": {"identifiers": [f"picojepa_{token(node)}"], "name": f"pico-JEPA {node}",
                       "manufacturer": "pico-JEPA", "model": f"bundle {bundle_id[:12]}".strip()}}


def _mqtt():
    try:
        import paho.mqtt.client as mqtt  # optional extra `mqtt`
    except ImportError:
        raise MqttError("MQTT publishing needs paho-mqtt: pip install 'picojepa[mqtt]' (or make install)") from None
    return mqtt


def url_problem(url: str) -> str | None:
    """Why `url` is no MQTT URL we can connect to (None when it is one)."""
    return urls.url_problem(url, ("mqtt",), "an MQTT URL", "mqtt://host[:port]")


def client_id(node: str) -> str:
    """`pj-<host>-<pid>-<n><4 hex>`: one of its own for every connection of every process of a
    box (a broker drops the older connection of two with one id), the random digits against
    another box whose name shortens alike; the host shortened to stay within CLIENT_ID_MAX."""
    tail = f"{os.getpid():x}-{next(_connections):x}{secrets.token_hex(2)}"
    host = re.sub(r"[^A-Za-z0-9]", "", node)[:max(0, CLIENT_ID_MAX - len("pj--") - len(tail))]
    return f"pj-{host}-{tail}"


class MqttPublisher:
    """One connection to the broker for all of a run's cameras.

    What it tells a status page, as attributes and as one dict from `state()` (which counts the
    messages settled since the last publish first): `connected` (bool), `disconnects` (times the
    connection dropped), `down_since` (time.time() of the drop while away, else None), `sent`
    (messages handed to the client), `delivered` (acknowledged by the broker, QoS 1, or written to
    it, QoS 0), `pending` (queued or unacknowledged) and `lost` (never reached it: results while it
    was away, the queue full, unacknowledged at the end)."""

    def __init__(self, url: str, connect_timeout_s: float, node: str | None = None, bundle_id: str = ""):
        mqtt = _mqtt()
        self._queued = mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN  # what publish() answers for a kept message
        problem = url_problem(url)
        if problem:
            raise MqttError(f"{redact(url)}: {problem}")
        parts = urlsplit(url)
        self.node, self.bundle_id = node or socket.gethostname(), bundle_id
        self.url, self.sent, self.delivered, self.pending, self.lost = redact(url), 0, 0, 0, 0
        self.connected, self.disconnects, self.down_since = False, 0, None
        self._known: set[str] = set()
        self._held: dict[str, dict] = {}
        self._lock = threading.Lock()
        # (qos, MQTTMessageInfo) of each message sent and not yet settled, and the ids the broker
        # acknowledged (QoS 1) or the client wrote (QoS 0): the network thread appends to the
        # deques without a lock (it holds paho's), `_settle` reads them under `_lock`
        self._new: collections.deque = collections.deque()
        self._acks: collections.deque = collections.deque()
        self._open: list = []
        self._acked: set[int] = set()
        self._up, self._refused, self._closing = threading.Event(), [], False
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id(self.node),
                                   clean_session=True)
        self._client.max_queued_messages_set(QUEUE_MAX)
        if parts.username:
            self._client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        avail = topics("", self.node)["availability"]
        self._client.will_set(avail, "offline", qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = lambda client, userdata, mid, *_: self._acks.append(mid)
        self._client.reconnect_delay_set(0.5, 5)
        try:
            self._client.connect_async(parts.hostname, parts.port or 1883, keepalive=30)
        except (OSError, ValueError) as exc:
            raise MqttError(f"{self.url}: {one_line(exc)}") from None
        self._client.loop_start()
        if not self._up.wait(connect_timeout_s) or self._refused:
            self._client.loop_stop()
            why = self._refused[0] if self._refused else f"no MQTT broker answered within {connect_timeout_s:g} s"
            raise MqttError(f"{self.url}: {why}")

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            self._refused.append(f"the broker refused the connection ({reason_code})")
            client.disconnect()
        else:
            away, self.connected, self.down_since = self.down_since, True, None
            if away is not None:
                log.warning("mqtt: %s: connected again after %.1f s away", self.url, time.time() - away)
            self._send(topics("", self.node)["availability"], "online", 1)
            for camera in list(self._known):  # after a reconnect the retained messages are still there
                self._announce(camera)
        self._up.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if not self.connected:  # a refused login, or a drop already told
            return
        self.connected = False
        if self._closing:
            return
        self.down_since, self.disconnects = time.time(), self.disconnects + 1
        log.warning("mqtt: %s: lost the connection to the broker (%s); reconnecting: results are lost "
                    "until it is back, states and events wait (at most %d)", self.url, reason_code, QUEUE_MAX)

    def _send(self, topic: str, payload: str, qos: int, retain: bool = False) -> None:
        self._new.append((qos, self._client.publish(topic, payload, qos=qos, retain=retain)))

    def _settle(self) -> None:
        """Count the messages that reached the broker or never will; keep the others (under the lock)."""
        while self._new:
            self._open.append(self._new.popleft())
        while self._acks:
            self._acked.add(self._acks.popleft())
        still = []
        for qos, info in self._open:
            # paho keeps a QoS-1 message published while away (NO_CONN) for the reconnect; a QoS-0
            # one it drops, as it does those the queue has no room for, or a dropped socket had
            if info.rc != self._queued[0] and not (qos == 1 and info.rc == self._queued[1]):
                self.lost += 1
            elif info.mid in self._acked:
                self._acked.discard(info.mid)
                self.delivered += 1
            else:
                still.append((qos, info))
        self._open, self.pending = still, len(still)
        self.sent = self.delivered + self.lost + self.pending

    def state(self) -> dict:
        """The connection's state and message counts, for a status page."""
        with self._lock:
            self._settle()
            return {"url": self.url, "connected": self.connected, "disconnects": self.disconnects,
                    "down_since": self.down_since, "sent": self.sent, "delivered": self.delivered,
                    "pending": self.pending, "lost": self.lost}

    def _announce(self, camera: str) -> None:
        t = topics(camera, self.node)
        self._send(t["discovery"], json.dumps(discovery(camera, self.node, self.bundle_id)), 1, retain=True)

    def publish(self, camera: str, result: dict) -> None:
        """Queue a window's result (and, when its label changed, the state and an event)."""
        t = topics(camera, self.node)
        with self._lock:
            self._settle()
            if camera not in self._known:
                self._known.add(camera)
                self._announce(camera)
            self._send(t["result"], json.dumps(result), 0)
            event, held = result.get("event"), self._held.get(camera)
            if event:
                self._send(t["event"], json.dumps({"camera": camera, **event, "at_s": result.get("start_s"),
                                                   "confidence": result.get("confidence"),
                                                   "wall_time": result.get("wall_time")}), 1)
            if result.get("error") or (held is not None and held["label"] == result.get("label")):
                return
            state = {"label": result.get("label"), "confidence": result.get("confidence"),
                     "since_s": result.get("start_s"), "start_s": result.get("start_s"),
                     "end_s": result.get("end_s"), "wall_time": result.get("wall_time")}
            self._send(t["state"], json.dumps(state), 1, retain=True)
            self._held[camera] = state

    def close(self) -> None:
        """Say `offline`, wait for what is queued (at most CLOSE_S seconds), disconnect; a line
        counts the messages that did not reach the broker."""
        deadline = time.monotonic() + CLOSE_S
        try:
            self._send(topics("", self.node)["availability"], "offline", 1, retain=True)
            while self.state()["pending"] and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            self._closing = True
            self._client.disconnect()
            self._client.loop_stop()
        with self._lock:
            self._settle()
            self.lost, self.pending, self._open = self.lost + self.pending, 0, []
        if self.lost:
            log.warning("mqtt: %s: %d of %d messages did not reach the broker (%d connection drops)",
                        self.url, self.lost, self.sent, self.disconnects)
