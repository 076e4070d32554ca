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
client reconnects by itself and queues messages. Connecting has a deadline; a refused login is
a one-line error.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
from urllib.parse import unquote, urlsplit

from picojepa.core.errors import PicoJepaError
from picojepa.core.redact import redact

from .reader import token

log = logging.getLogger(__name__)
ROOT, DISCOVERY = "picojepa", "homeassistant"
CLOSE_S = 5.0


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


class MqttPublisher:
    """One connection to the broker for all of a run's cameras."""

    def __init__(self, url: str, connect_timeout_s: float, node: str | None = None, bundle_id: str = ""):
        mqtt = _mqtt()
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise MqttError(f"{redact(url)}: not an MQTT URL (mqtt://[user:pass@]host[:port])")
        self.node, self.bundle_id = node or socket.gethostname(), bundle_id
        self.url, self.sent = redact(url), 0
        self._known: set[str] = set()
        self._held: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._up, self._refused = threading.Event(), []
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"picojepa-{token(self.node)}",
                                   clean_session=True)
        if parts.username:
            self._client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        avail = topics("", self.node)["availability"]
        self._client.will_set(avail, "offline", qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.reconnect_delay_set(0.5, 5)
        try:
            self._client.connect_async(parts.hostname, parts.port or 1883, keepalive=30)
        except (OSError, ValueError) as exc:
            raise MqttError(f"{self.url}: {' '.join(str(exc).split())}") from None
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
            client.publish(topics("", self.node)["availability"], "online", qos=1, retain=True)
            for camera in self._known:  # after a reconnect the retained messages are still there
                self._announce(camera)
        self._up.set()

    def _announce(self, camera: str) -> None:
        t = topics(camera, self.node)
        self._client.publish(t["discovery"], json.dumps(discovery(camera, self.node, self.bundle_id)),
                             qos=1, retain=True)

    def publish(self, camera: str, result: dict) -> None:
        """Queue a window's result (and, when its label changed, the state and an event)."""
        t = topics(camera, self.node)
        with self._lock:
            if camera not in self._known:
                self._known.add(camera)
                self._announce(camera)
            self._client.publish(t["result"], json.dumps(result), qos=0)
            self.sent += 1
            event, held = result.get("event"), self._held.get(camera)
            if event:
                self._client.publish(t["event"], json.dumps({"camera": camera, **event, "at_s": result.get("start_s"),
                                                             "confidence": result.get("confidence"),
                                                             "wall_time": result.get("wall_time")}), qos=1)
            if result.get("error") or (held is not None and held["label"] == result.get("label")):
                return
            state = {"label": result.get("label"), "confidence": result.get("confidence"),
                     "since_s": result.get("start_s"), "start_s": result.get("start_s"),
                     "end_s": result.get("end_s"), "wall_time": result.get("wall_time")}
            self._client.publish(t["state"], json.dumps(state), qos=1, retain=True)
            self._held[camera] = state

    def close(self) -> None:
        """Say `offline`, send what is queued (at most CLOSE_S seconds), disconnect."""
        try:
            info = self._client.publish(topics("", self.node)["availability"], "offline", qos=1, retain=True)
            info.wait_for_publish(CLOSE_S)
        except (RuntimeError, ValueError) as exc:  # not connected any more: the last will says it
            log.warning("mqtt: %s: %d messages may not have reached the broker (%s)", self.url, self.sent, exc)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
