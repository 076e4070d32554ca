"""`make demo-network`: the edge network on one machine, then taken down again.

Starts a NATS server on loopback and one `picojepa-serve` node per voting member of a
separate-layout bundle, classifies the held-out videos through them (`picojepa-run --nodes`'s
NetworkEnsemble), prints the accuracy next to the in-process vote's on the same videos, and stops
everything it started. Labels come from the videos' folder names.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from picojepa.core.console import one_line_errors
from picojepa.runtime.ensemble import Ensemble
from picojepa.runtime.net.localnet import NatsServer, start_members
from picojepa.runtime.net.natsconn import NatsOptions
from picojepa.runtime.net.network import NetworkEnsemble
from picojepa.runtime.run_files import expand


def accuracy(preds) -> tuple[float, int]:
    ok = [p for p in preds if not p.error]
    hits = sum(p.label == Path(p.file).parent.name for p in ok)
    return (100.0 * hits / len(ok) if ok else 0.0), len(preds) - len(ok)


@click.command()
@click.option("--bundle", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--deadline-ms", default=2000.0, show_default=True)
@click.argument("videos", nargs=-1, required=True)
@one_line_errors
def main(bundle, deadline_ms, videos):
    paths = expand(videos)
    local = Ensemble.load(bundle, provider="cpu")
    members = local.bundle.vote_members
    with NatsServer() as server:
        click.echo(f"nats-server on {server.url}; starting members {', '.join(members)}", err=True)
        nodes = start_members(bundle, members, server.url)
        try:
            t0 = time.perf_counter()
            with NetworkEnsemble.connect(bundle, NatsOptions((server.url,)), deadline_ms=deadline_ms) as net:
                remote = list(net.predict_many(paths, prefetch=True))
                sent = net.bytes_sent
            wall = time.perf_counter() - t0
        finally:
            for n in nodes:
                n.stop()
    in_process = list(local.predict_many(paths))
    acc_net, failed = accuracy(remote)
    acc_local, _ = accuracy(in_process)
    same = sum(a.label == b.label for a, b in zip(remote, in_process) if not a.error)
    answered = sorted({m for p in remote for m in p.members})
    click.echo(f"members that answered: {', '.join(answered)} (one node each, over NATS)")
    click.echo(f"network vote accuracy: {acc_net:.1f}% on {len(paths) - failed} of {len(paths)} videos "
               f"({failed} failed); in-process vote: {acc_local:.1f}%; same label on {same} videos")
    click.echo(f"{wall:.1f} s, {sent / max(1, len(paths)) / 1024:.0f} KiB sent per video", err=True)
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
