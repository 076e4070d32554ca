"""A member node of the edge network: one member's graph, answering clips sent over NATS.

`picojepa-serve --bundle B --member NAME --nats URL` loads only NAME's graph (a bundle exported
with `--layout separate`), subscribes to the bundle's subject in NAME's queue group (wire.py) and
answers each request with its probabilities and its inference time. It reconnects by itself when
the server goes away and exits cleanly (code 0) on SIGTERM or Ctrl-C.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from pathlib import Path

import click
import numpy as np

from picojepa.core.bundle import GRAPH_INPUT, PROBS, Bundle, load_bundle
from picojepa.core.clips import normalize
from picojepa.core.console import examples, one_line, one_line_errors, setup_logging
from picojepa.core.errors import BundleError

from ..session import check_graph_io, make_session
from . import wire
from .natsconn import NatsOptions, connect, nats_options

log = logging.getLogger(__name__)


def member_graph(bundle: Bundle, member: str, variant: str = "fp32") -> Path:
    """The graph that holds `member` alone; a BundleError saying how to get one otherwise."""
    if member not in bundle.members:
        raise BundleError(f"{bundle.root}: has no member {member!r} (members: {', '.join(bundle.members)})")
    graphs = [g for g in bundle.graphs_of(variant) if member in g.members]
    if not graphs:
        raise BundleError(f"{bundle.root}: no {variant} graph for member {member!r}")
    if graphs[0].members != (member,):
        raise BundleError(f"{graphs[0].path}: holds members {', '.join(graphs[0].members)} fused in one "
                          "graph; a node serves one member: export a separate-layout bundle with "
                          "`picojepa-export RUN_DIR --out BUNDLE --layout separate`")
    return graphs[0].path


class MemberNode:
    """One member's onnxruntime session and the request handler around it."""

    def __init__(self, bundle_root: str | Path, member: str, provider: str = "cpu",
                 variant: str = "fp32", threads: int = 0, node: str | None = None):
        self.bundle = load_bundle(bundle_root)
        self.member = member
        self.bid = self.bundle.checksum
        path = member_graph(self.bundle, member, variant)
        self.session, self.device, note = make_session(path, provider, threads)
        if note:
            log.warning(note)
        check_graph_io(self.session, path, self.bundle, 1)
        self.node = node or f"{socket.gethostname()}/{member}"
        self.served = self.refused = 0

    def answer(self, headers: dict | None, payload: bytes) -> wire.Reply:
        """Check one request and run the member on it; a bad request gets an error reply."""
        try:
            frames = wire.decode_request(headers, payload, self.bid, self.bundle.clip)
        except wire.WireError as exc:
            self.refused += 1
            log.warning("refused a request: %s", exc)
            return wire.Reply(self.bid, self.member, self.node, None, 0.0, str(exc))
        t0 = time.perf_counter()
        clips = np.stack([normalize(f, self.bundle.clip) for f in frames])
        try:
            probs = self.session.run([PROBS], {GRAPH_INPUT: clips})[0][:, 0]  # (K, 1, C) -> (K, C)
        except Exception as exc:  # onnxruntime's own error types: answer with it, keep serving
            log.error("inference failed: %s", exc)
            return wire.Reply(self.bid, self.member, self.node, None, 0.0,
                              f"inference failed ({one_line(exc, 160)})")
        self.served += 1
        return wire.Reply(self.bid, self.member, self.node, probs, (time.perf_counter() - t0) * 1e3)

    async def handle(self, msg) -> None:
        """nats-py callback: inference runs in a thread so the connection keeps its heartbeats."""
        reply = await asyncio.get_running_loop().run_in_executor(None, self.answer, msg.headers, msg.data)
        if msg.reply:
            await msg.respond(reply.encode())

    async def serve(self, opts: NatsOptions, ready=None, stop: asyncio.Event | None = None) -> None:
        """Answer requests until `stop` is set (or SIGTERM/SIGINT when run by the CLI)."""
        stop = stop or asyncio.Event()
        nc = await connect(opts, f"picojepa-serve {self.node}", reconnect_forever=True,
                           disconnected_cb=_say(f"{self.node}: lost the NATS server, reconnecting"),
                           reconnected_cb=_say(f"{self.node}: reconnected"))
        try:
            await nc.subscribe(wire.subject(self.bid), queue=wire.queue_group(self.member), cb=self.handle)
            await nc.flush(timeout=opts.connect_timeout_s)
            log.info("member %s of bundle %s serving on %s", self.member, self.bid[:16], wire.subject(self.bid))
            if ready:
                ready()
            await stop.wait()
        finally:
            try:
                await asyncio.wait_for(nc.drain(), 5.0)  # answer what is in flight, then leave
            except Exception:  # the server is gone: nothing left to drain into
                await nc.close()


def _say(text: str):
    async def cb():
        log.warning(text)
    return cb


@click.command(epilog=examples(
    "picojepa-serve --bundle bundles/demo-net --member 1 --nats nats://10.0.0.2:4222 --nats-token \"$TOKEN\""))
@click.option("--bundle", required=True, type=click.Path(path_type=Path), envvar="PICOJEPA_BUNDLE",
              help="A bundle exported with --layout separate [env PICOJEPA_BUNDLE].")
@click.option("--member", required=True, help="The member this node serves (e.g. general, 1, 2, 3, 4).")
@click.option("--provider", default="cpu", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--variant", default="fp32", show_default=True, type=click.Choice(["fp32", "fp16", "int8"]))
@click.option("--threads", default=0, type=click.IntRange(0, 256), help="onnxruntime threads (0: all cores).")
@click.option("--name", "node", help="This node's name in replies [default: HOST/MEMBER].")
@nats_options("--nats", "NATS server URL(s), comma-separated, e.g. nats://10.0.0.2:4222.")
@click.option("-v", "--verbose", is_flag=True)
@one_line_errors
def main(bundle, member, provider, variant, threads, node, nats, verbose):
    """Serve one member of a bundle to the edge network (votes gathered by `picojepa-run --nodes`)."""
    setup_logging(verbose)
    if nats is None:
        raise click.UsageError("--nats URL is required")
    server = MemberNode(bundle, member, provider, variant, threads, node)

    async def run():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await server.serve(nats, ready=lambda: click.echo(
            f"serving member {member} of {bundle} ({server.bid[:16]}) on {server.device.upper()}", err=True),
            stop=stop)

    asyncio.run(run())
    click.echo(f"stopped: {server.served} clips answered, {server.refused} refused", err=True)


if __name__ == "__main__":
    main()
