"""A threading HTTP server (the standard library's) that idle, half-sent or vanishing clients cannot
exhaust: a bound on the connections served at once, a deadline on each read and write (the
handler's `timeout`) and on the whole request, and no traceback for a client that goes away.

A new connection beyond the bound takes the place of the oldest one still sending its request
(a client that sent nothing is the one to drop); when every connection is being answered, the
new one gets a 503 and is closed.
"""
from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from http.server import ThreadingHTTPServer

log = logging.getLogger(__name__)


class BoundedHTTPServer(ThreadingHTTPServer):
    """The standard library's threading HTTP server with a bound on connections and deadlines.
    Connections still sending their request are tracked with the time they were accepted: past
    the deadline (checked by `serve_forever` every half second) or when a newer one needs their
    place, their socket is shut down, which ends the read their thread waits in."""

    daemon_threads = True
    block_on_close = False  # closing does not wait for the connections: `hang_up_all` ends them
    request_queue_size = 64

    def __init__(self, address, handler, timeout_s: float, max_connections: int):
        super().__init__(address, handler)
        self.timeout_s = timeout_s
        self._slots = threading.BoundedSemaphore(max_connections)
        self._waiting: dict[socket.socket, float] = {}  # still sending their request -> accepted (monotonic)
        self._serving: set[socket.socket] = set()
        self._lock = threading.Lock()  # a socket is closed only once out of both, under it: never shut after

    def process_request(self, request, client_address) -> None:
        if not self._take_slot():
            self._refuse(request)
            return
        with self._lock:
            self._waiting[request] = time.monotonic()
        try:
            super().process_request(request, client_address)  # a thread of its own
        except RuntimeError as exc:  # no thread could be started
            log.warning("status: %s: %s", client_address, exc)
            self.shutdown_request(request)
            self._slots.release()

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def received(self, request) -> None:
        """The request's line and headers are in: its reads and writes keep their own deadline."""
        with self._lock:
            if self._waiting.pop(request, None) is not None:
                self._serving.add(request)

    def shutdown_request(self, request) -> None:
        with self._lock:
            self._waiting.pop(request, None)
            self._serving.discard(request)
        super().shutdown_request(request)

    def service_actions(self) -> None:
        late = time.monotonic() - self.timeout_s
        with self._lock:
            for request in [r for r, t in self._waiting.items() if t < late]:
                del self._waiting[request]
                _hang_up(request)

    def hang_up_all(self) -> None:
        with self._lock:
            for request in [*self._waiting, *self._serving]:
                _hang_up(request)
            self._waiting.clear()
            self._serving.clear()

    def _take_slot(self) -> bool:
        """A free slot, else the slot of the oldest connection still sending its request."""
        return self._slots.acquire(blocking=False) or (self._hang_up_oldest() and self._slots.acquire(timeout=1.0))

    def _hang_up_oldest(self) -> bool:
        with self._lock:
            if not self._waiting:
                return False
            oldest = min(self._waiting, key=self._waiting.get)
            del self._waiting[oldest]
            _hang_up(oldest)
        return True

    def _refuse(self, request) -> None:
        log.debug("status: %d connections served at once already: refused", len(self._serving))
        try:
            request.setblocking(False)
            request.send(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            pass  # the client has gone already
        self.shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):  # the client went away or stalled
            log.debug("status: %s: %s", client_address, exc)
        else:
            log.error("status: a request from %s failed", client_address, exc_info=True)


def _hang_up(request) -> None:
    try:
        request.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the client closed it first
