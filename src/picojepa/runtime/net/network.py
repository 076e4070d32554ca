"""The ensemble over the network: decode here, let member nodes answer over NATS, vote here.

`NetworkEnsemble.connect(bundle, nats_options).predict_many(paths)` mirrors `Ensemble`: the same
decoding (shared clip module), the same Prediction (JSON schema), the same votes. Each clip is
published once to the bundle's subject; every distinct member answers (one copy per queue group);
answers are gathered until every voting member has answered or the deadline passes. A video whose
answers do not reach the quorum gets an error naming the missing members, and the batch goes on.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from picojepa.core.bundle import load_bundle
from picojepa.core.clips import Region
from picojepa.core.console import one_line
from picojepa.core.errors import UsageError

from ..decoding import Decoded
from ..ensemble import EnsembleBase
from ..prediction import Answers, Prediction, assemble, failed
from . import wire
from .natsconn import LoopThread, NatsOptions, NetworkError, connect

log = logging.getLogger(__name__)
STATUS_NO_RESPONDERS = "503"  # the server's answer to a request nobody is subscribed to
PATIENCE = 2  # after this many requests in a row without its answer, a member is not waited for
GRACE, GRACE_S = 0.25, 0.005  # ... beyond GRACE x the time the others took, + GRACE_S seconds
LOST = "no connection to the NATS server (the client is reconnecting)"


@dataclass
class Gathered:
    """What came back for one request before its deadline."""

    replies: dict[str, wire.Reply]
    latency_ms: dict[str, float]
    wall_ms: float
    bytes_sent: int
    problem: str = ""  # why nothing could be gathered (e.g. the connection is down), if so


class NetworkEnsemble(EnsembleBase):
    """The bundle's members on edge nodes: one request per video to the bundle's subject."""

    normalise = False  # the nodes normalise: uint8 frames are a quarter of the bytes
    provider = "network"
    answers_alone = False  # member nodes vote: the default is the bundle's default vote, not one member

    def __init__(self, bundle_root: str | Path, opts: NatsOptions, deadline_ms: float = 2000.0,
                 quorum: int | None = None, decode_device: str = "cpu", placement: str | None = None,
                 region: Region | None = None):
        super().__init__(load_bundle(bundle_root), decode_device, placement, region)
        self.bid = self.bundle.checksum
        self.vote_members = list(self.plan.voters)
        n = len(self.vote_members)
        self.quorum = n // 2 + 1 if quorum is None else quorum
        if not 1 <= self.quorum <= n:
            raise UsageError(f"--quorum {self.quorum} is impossible with {n} voting members "
                              f"({', '.join(self.vote_members)}); choose 1..{n}")
        if deadline_ms <= 0:
            raise NetworkError(f"deadline must be positive, got {deadline_ms} ms")
        self.deadline_s = deadline_ms / 1e3
        self.bytes_sent = 0  # payload bytes published so far (uint8 frames)
        self.misses = {m: 0 for m in self.vote_members}  # requests in a row each member missed
        self.requests = 0
        self.lost = False  # the last request's deadline passed with the connection down
        self._io = LoopThread("nats")
        try:
            self._nc = self._io.call(connect(opts, "picojepa-run"), opts.connect_timeout_s + 5)
        except BaseException:
            self._io.stop()
            raise

    @classmethod
    def connect(cls, bundle_root: str | Path, opts: NatsOptions, **kwargs) -> "NetworkEnsemble":
        return cls(bundle_root, opts, **kwargs)

    def close(self) -> None:
        """Drop the connection to the NATS server."""
        if self._io.alive:
            try:
                self._io.call(self._nc.close(), 5)
            except Exception as exc:  # closing a connection whose server is gone
                log.info("closing the NATS connection: %s", exc)
            self._io.stop()

    async def _gather(self, frames: np.ndarray) -> Gathered:
        """Publish one request and collect the answers until the deadline passes, the server
        says nobody listens, or the quorum is met and every member still believed alive has
        answered. A member that missed PATIENCE requests in a row is waited for only a grace of
        GRACE x the time the others took (+ GRACE_S): a node that went down costs the deadline
        twice, then that grace on each video; once it answers within it, it is waited for again."""
        nc, loop = self._nc, asyncio.get_running_loop()
        headers, payload = wire.encode_request(self.bid, frames)
        if len(payload) > nc.max_payload:
            return Gathered({}, {}, 0.0, 0, f"a request of {len(payload)} bytes exceeds the server's "
                            f"max_payload of {nc.max_payload} (raise max_payload in nats-server's config)")
        if not nc.is_connected and self.lost:  # a deadline passed already without a connection
            return Gathered({}, {}, 0.0, 0, f"{LOST}; not waiting again until it is back")
        t0 = loop.time()
        deadline = t0 + self.deadline_s
        replies: dict[str, wire.Reply] = {}
        latency: dict[str, float] = {}
        inbox = nc.new_inbox()
        try:
            sub = await nc.subscribe(inbox)
            await nc.publish(wire.subject(self.bid), payload, reply=inbox, headers=headers)
        except Exception as exc:  # connection closed or reconnect buffer full
            return Gathered({}, {}, 0.0, 0, f"cannot send to the NATS server ({one_line(exc, 120)})")
        self.requests += 1
        expect = {m for m in self.vote_members if self.misses[m] < PATIENCE}

        def stop_at() -> float:
            voted = [m for m in self.vote_members if m in replies]
            if not (expect <= replies.keys() and len(voted) >= self.quorum):
                return deadline
            if len(voted) == len(self.vote_members):
                return loop.time()
            return min(deadline, t0 + (1 + GRACE) * max(latency.values()) / 1e3 + GRACE_S)

        await self._receive(sub, frames, stop_at, t0, replies, latency)
        # a request made while the client reconnects is sent when it is back, so it was waited for;
        # but an unanswered one then says nothing about the members, and the next ones fail fast
        self.lost = not nc.is_connected
        problem = "" if nc.is_connected or len(replies) >= self.quorum else \
            f"{LOST}: no answers within {self.deadline_s * 1e3:g} ms"
        return Gathered(replies, latency, (loop.time() - t0) * 1e3, len(payload), problem)

    async def _receive(self, sub, frames: np.ndarray, stop_at, t0: float, replies: dict, latency: dict) -> None:
        """Read the answers to one request from `sub` into `replies` and `latency` (ms after t0)
        until `stop_at()` passes or the server says nobody listens; then unsubscribe."""
        loop = asyncio.get_running_loop()
        try:
            while (remaining := stop_at() - loop.time()) > 0:
                try:
                    msg = await sub.next_msg(timeout=remaining)
                except asyncio.TimeoutError:  # nats-py's TimeoutError subclasses it
                    break
                if (msg.headers or {}).get("Status") == STATUS_NO_RESPONDERS:
                    break
                try:
                    r = wire.decode_reply(msg.data, self.bid, frames.shape[0], len(self.classes))
                except wire.WireError as exc:
                    log.warning("ignored a reply: %s", exc)
                    continue
                if r.error:
                    log.warning("member %s (%s) refused the clip: %s", r.member, r.node, r.error)
                elif r.member in self.bundle.members and r.member not in replies:
                    replies[r.member] = r
                    latency[r.member] = round((loop.time() - t0) * 1e3, 3)
        finally:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # the connection dropped meanwhile; the server forgets it anyway
                log.info("unsubscribe: %s", exc)

    def answer(self, d: Decoded, method: str) -> Prediction:
        if d.error:
            return failed(d, method)
        try:
            g = self._io.call(self._gather(d.frames), self.deadline_s + 10)
        except TimeoutError:  # the NATS thread itself did not come back: never hang on it
            return failed(d, method, f"{d.path}: no result from the network thread within "
                                     f"{self.deadline_s + 10:g} s", list(self.vote_members))
        self.bytes_sent += g.bytes_sent
        missing = [m for m in self.vote_members if m not in g.replies]
        if not g.problem:  # a dropped connection says nothing about the members
            for m in self.vote_members:
                self.misses[m] = self.misses[m] + 1 if m in missing else 0
        voters = len(self.vote_members) - len(missing)
        if g.problem or voters < self.quorum:
            why = g.problem or (f"{voters} of {len(self.vote_members)} voting members answered within "
                                f"{self.deadline_s * 1e3:g} ms, quorum {self.quorum}")
            return failed(d, method, f"{d.path}: {why} (missing: {', '.join(missing) or 'none'})", missing)
        if method == "stacked" and missing:
            return failed(d, method, f"{d.path}: the stacked vote needs every stacked member; "
                                     f"missing: {', '.join(missing)}", missing)
        names = [m for m in self.bundle.members if m in g.replies]
        probs = np.stack([g.replies[m].probs for m in names])  # (M, K, C)
        # timings_ms.inference is the round trip: request sent -> last answer used
        return assemble(d, Answers(names, probs, g.latency_ms or {}, list(missing or [])), self.classes, method,
                        g.wall_ms, lambda p: self.combine(p, method, names))
