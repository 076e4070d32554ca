"""Live results as NATS messages, so that other systems can act on them: each window's JSON on
the subject `picojepa.live.<stream>` of the server given to `picojepa-run --publish`.

Publishing never blocks the classifier: messages go out from the NATS client's own event loop
(a thread here); while the server is unreachable the client buffers and reconnects by itself.
"""
from __future__ import annotations

import json
import logging
import re

from .natsconn import LoopThread, NatsOptions, NetworkError, connect

log = logging.getLogger(__name__)
PREFIX = "picojepa.live"
FLUSH_S = 5.0


def subject_for(stream: str) -> str:
    """`picojepa.live.<stream>`, the name reduced to the characters a subject token allows."""
    return f"{PREFIX}.{re.sub(r'[^A-Za-z0-9_-]+', '_', stream).strip('_') or 'stream'}"


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


def open_publisher(url: str, connect_timeout_s: float) -> Publisher:
    """A Publisher on `url` (credentials may ride in it: nats://user:pass@host:4222)."""
    try:
        return Publisher(NatsOptions((url,), connect_timeout_s=connect_timeout_s, name="picojepa-run"))
    except TimeoutError:
        raise NetworkError(f"{url}: no NATS server answered within {connect_timeout_s:g} s") from None
