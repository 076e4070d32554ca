"""Connecting to NATS, the message server of the edge network, with a deadline and auth.

NATS (nats.io, client `nats-py`) is the engine: request-reply with scatter-gather, queue groups,
reconnecting clients, token / user-password / creds-file authentication. Nothing here is a
protocol of our own. `nats-py` is an optional dependency (`pip install picojepa[network]`):
importing it happens inside `connect`, so the file runtime never needs it.
"""
from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import click

from picojepa.core.console import EXIT_USAGE, fail
from picojepa.core.errors import PicoJepaError
from picojepa.core.options import Finite

from . import urls

log = logging.getLogger(__name__)


class NetworkError(PicoJepaError, RuntimeError):
    """The message server cannot be reached, refuses us, or nats-py is missing."""


@dataclass(frozen=True)
class NatsOptions:
    """Where the server is and how to authenticate. `servers` may carry credentials in the URL
    (nats://user:password@host:4222 or nats://token@host:4222)."""

    servers: tuple[str, ...]
    token: str | None = None
    user: str | None = None
    password: str | None = None
    creds: Path | None = None  # a .creds file (JWT + nkey seed), as `nsc` writes it
    connect_timeout_s: float = 5.0
    name: str = "picojepa"

    def __post_init__(self):
        if not self.servers:
            raise NetworkError("no NATS server given")
        for s in self.servers:
            problem = url_problem(s)
            if problem:
                raise NetworkError(f"{s}: {problem}")
        if (self.user is None) != (self.password is None):
            raise NetworkError("--nats-user and --nats-password go together")
        if self.connect_timeout_s <= 0:
            raise NetworkError(f"connect timeout must be positive, got {self.connect_timeout_s}")
        if self.creds is not None and not Path(self.creds).is_file():
            raise NetworkError(f"{self.creds}: no such credentials file")


def url_problem(url: str) -> str | None:
    """Why `url` is no NATS server URL (None when it is one)."""
    if not url.startswith(("nats://", "tls://", "ws://", "wss://")):
        return "a NATS server URL starts with nats://, tls://, ws:// or wss://"
    return urls.url_problem(url, ("nats", "tls", "ws", "wss"), "a NATS server URL",
                            "nats://host[:port]")


class LoopThread:
    """An asyncio event loop in a daemon thread: how a synchronous caller (the network ensemble,
    the live publisher) drives nats-py, whose client lives on one loop."""

    def __init__(self, name: str):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def call(self, coro, timeout: float):
        """Run a coroutine on the loop and wait for it, never longer than `timeout`."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro) -> None:
        """Run a coroutine on the loop without waiting for it."""
        asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def nats_options(servers_flag: str, servers_help: str, timeout_help: str = "Seconds to reach the NATS server before giving up.",
                 pass_timeout: bool = False):
    """click options shared by `picojepa-run --nodes` and `picojepa-serve --nats`; the decorated
    function receives one `nats: NatsOptions | None` argument instead of the separate flags (and
    `connect_timeout` too with `pass_timeout`, for a command that connects to other things)."""

    def decorate(fn):
        @click.option(servers_flag, "nats_servers", help=servers_help)
        @click.option("--nats-token", envvar="PICOJEPA_NATS_TOKEN", help="Token [env PICOJEPA_NATS_TOKEN].")
        @click.option("--nats-user", envvar="PICOJEPA_NATS_USER", help="User name [env PICOJEPA_NATS_USER].")
        @click.option("--nats-password", envvar="PICOJEPA_NATS_PASSWORD",
                      help="Password [env PICOJEPA_NATS_PASSWORD].")
        @click.option("--nats-creds", type=click.Path(path_type=Path), help="NATS .creds file (JWT + nkey).")
        @click.option("--connect-timeout", default=5.0, show_default=True, type=Finite(min=0.1),
                      help=timeout_help)
        @functools.wraps(fn)
        def wrapper(*args, nats_servers, nats_token, nats_user, nats_password, nats_creds,
                    connect_timeout, **kwargs):
            opts = None
            if nats_servers is not None:  # given, even empty: checked (a usage error, exit 2)
                try:
                    opts = NatsOptions(tuple(s.strip() for s in nats_servers.split(",") if s.strip()),
                                       nats_token, nats_user, nats_password, nats_creds, connect_timeout)
                except NetworkError as exc:  # one line, as every usage error of ours
                    fail(f"{servers_flag}: {exc}", EXIT_USAGE)
            if pass_timeout:
                kwargs["connect_timeout"] = connect_timeout
            return fn(*args, nats=opts, **kwargs)

        return wrapper

    return decorate


def _nats_module():
    try:
        import nats  # optional extra `network`
    except ImportError:
        raise NetworkError("the edge network needs nats-py: pip install 'picojepa[network]' "
                           "(or make install)") from None
    return nats


async def connect(opts: NatsOptions, name: str, reconnect_forever: bool = False, **callbacks):
    """A connected nats-py client, or NetworkError within `opts.connect_timeout_s`.

    After the first connection the client reconnects by itself (every 0.5 s; forever for a member
    node, for about a minute for a coordinator, whose every request has its own deadline)."""
    nats = _nats_module()
    last: list[str] = []
    refused = asyncio.Event()

    async def quiet_error(exc):  # nats-py's default prints a traceback for every reconnect attempt
        text = " ".join(str(exc).split()) or type(exc).__name__
        log.info("nats %s: %s", name, text)
        last[:] = [text]
        if "authorization" in text.lower() or "authentication" in text.lower():
            refused.set()  # wrong credentials do not get better by retrying: fail now

    kwargs = dict(servers=list(opts.servers), name=name, connect_timeout=min(2.0, opts.connect_timeout_s),
                  reconnect_time_wait=0.5, max_reconnect_attempts=-1 if reconnect_forever else 120,
                  allow_reconnect=True, error_cb=quiet_error, **callbacks)
    if opts.token:
        kwargs["token"] = opts.token
    if opts.user is not None:
        kwargs.update(user=opts.user, password=opts.password)
    if opts.creds:
        if importlib.util.find_spec("nkeys") is None:  # nats-py signs the server's nonce with it
            raise NetworkError(f"{opts.creds}: a .creds file needs the nkeys package: pip install "
                               "'picojepa[network]' (or make install)")
        kwargs["user_credentials"] = str(opts.creds)
    where = ",".join(opts.servers)
    task = asyncio.ensure_future(nats.connect(**kwargs))
    watch = asyncio.ensure_future(refused.wait())
    await asyncio.wait({task, watch}, timeout=opts.connect_timeout_s, return_when=asyncio.FIRST_COMPLETED)
    watch.cancel()
    if task.done() and not task.cancelled() and task.exception() is None:
        nc = task.result()
        if not refused.is_set():
            return nc
        await nc.close()
    task.cancel()
    if refused.is_set():
        raise NetworkError(f"{where}: the NATS server refused our credentials ({last[-1][:120]})")
    if task.done() and not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        last[:] = [" ".join(str(exc).split()) or type(exc).__name__]
    why = f" (last error: {last[-1][:120]})" if last else ""
    raise NetworkError(f"{where}: no NATS server reachable within {opts.connect_timeout_s:g} s{why}")
