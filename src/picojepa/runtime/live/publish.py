"""Live results as messages, so that other systems can act on them: `picojepa-run --publish URL`
(repeatable). On NATS each window's JSON goes to the subject `picojepa.live.<stream>`; on MQTT
(`mqtt://`, Home Assistant's way) see `mqtt.py`.

Publishing never blocks the classifier: messages go out from the NATS client's own event loop
(a thread here); while the server is unreachable the client buffers and reconnects by itself.
"""
from __future__ import annotations

import json
import logging

from picojepa.core.errors import UsageError
from picojepa.core.redact import redact

from ..net import natsconn
from ..net.natsconn import LoopThread, NatsOptions, NetworkError, connect
from . import mqtt
from .mqtt import MqttPublisher
from .names import token

log = logging.getLogger(__name__)
PREFIX = "picojepa.live"
FLUSH_S = 5.0


def subject_for(stream: str) -> str:
    """`picojepa.live.<stream>`, the name reduced to the characters a subject token allows."""
    return f"{PREFIX}.{token(stream)}"


def target_problem(url: str) -> str | None:
    """Why `url` is no place to publish to (None when it is one): a well-formed nats://, tls://
    or mqtt:// URL."""
    if url.lower().startswith("mqtt://"):
        return mqtt.url_problem(url)
    if url.lower().startswith(("nats://", "tls://")):
        return natsconn.url_problem(url)
    return "give a nats:// or an mqtt:// URL"


def check_targets(urls) -> None:
    """A UsageError naming the first of `urls` that is no place to publish to; before anything
    connects."""
    for url in urls:
        problem = target_problem(url)
        if problem:
            raise UsageError(f"--publish {redact(url)}: {problem}")


class Publisher:
    def __init__(self, opts: NatsOptions):
        self._io = LoopThread("nats-publish")
        self.sent = 0
        try:
            self._nc = self._io.call(connect(opts, "picojepa-run-publish"), opts.connect_timeout_s + 5)
        except BaseException:
            self._io.stop()
            raise

    def publish(self, stream: str, result: dict) -> None:
        """Queue one result; returns at once."""
        self._io.submit(self._nc.publish(subject_for(stream), json.dumps(result).encode()))
        self.sent += 1

    def state(self) -> dict:
        """Whether the client is connected now, and the results handed to it, for a status page."""
        return {"connected": bool(self._nc.is_connected), "sent": self.sent}

    def close(self) -> None:
        """Flush what is queued (at most FLUSH_S seconds), then disconnect."""
        try:
            self._io.call(self._nc.flush(timeout=FLUSH_S), FLUSH_S + 1)
            self._io.call(self._nc.close(), FLUSH_S)
        except Exception as exc:  # the server went away: what was not flushed is lost, say so
            log.warning("publishing: %d messages may not have reached the server (%s)", self.sent,
                        " ".join(str(exc).split()) or type(exc).__name__)
        finally:
            self._io.stop()


def _open_nats(url: str, connect_timeout_s: float) -> Publisher:
    try:
        return Publisher(NatsOptions((url,), connect_timeout_s=connect_timeout_s, name="picojepa-run"))
    except TimeoutError:
        raise NetworkError(f"{redact(url)}: no NATS server answered within {connect_timeout_s:g} s") from None


class Publishers:
    """Every --publish target as one: a stream's results go to the run's targets, or to the ones
    its camera names (`routes`: stream -> URLs; a camera file's per-camera `publish`) as well."""

    def __init__(self, targets: dict, everyone: tuple = (), routes: dict | None = None):
        self.targets, self.everyone, self.routes = targets, tuple(everyone), routes or {}

    def publish(self, stream: str, result: dict) -> None:
        for url in dict.fromkeys(self.everyone + tuple(self.routes.get(stream, ()))):
            self.targets[url].publish(stream, result)

    def state(self) -> dict[str, dict]:
        """Each target's connection state and message counts (URLs without credentials)."""
        return {redact(url): t.state() for url, t in self.targets.items()}

    def close(self) -> None:
        for t in self.targets.values():
            t.close()


def open_publisher(urls, connect_timeout_s: float, bundle_id: str = "", routes: dict | None = None) -> Publishers:
    """The publishers of `urls` (nats://... or mqtt://...; credentials may ride in them) and of
    the URLs `routes` names per stream, each connected once within `connect_timeout_s`; those
    opened are closed again if a later one fails."""
    everyone = (urls,) if isinstance(urls, str) else tuple(urls)
    wanted = tuple(dict.fromkeys(everyone + tuple(u for us in (routes or {}).values() for u in us)))
    check_targets(wanted)
    targets: dict = {}
    try:
        for url in wanted:
            if url.lower().startswith("mqtt://"):
                targets[url] = MqttPublisher(url, connect_timeout_s, bundle_id=bundle_id)
            else:
                targets[url] = _open_nats(url, connect_timeout_s)
    except BaseException:
        Publishers(targets).close()
        raise
    return Publishers(targets, everyone, routes)
