"""The edge network against the in-process fused ensemble, on loopback (`picojepa-bench --network`).

Measured in one run on the same videos: per-video latency (decode, send, gather, vote) of the
networked vote and of the fused ensemble, rounds interleaved; bytes per clip on the wire;
throughput with 1, 2 and 4 member nodes; and what losing one member costs. Everything runs on
this machine (a nats-server and one `picojepa-serve` process per member), so the members share
its cores: on real edge devices each has its own, and the network adds its own latency.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from picojepa.core.mdtable import table
from picojepa.core.roster import VOTE_MEMBERS
from picojepa.runtime.ensemble import Ensemble
from picojepa.runtime.net.localnet import NatsServer, start_members
from picojepa.runtime.net.natsconn import NatsOptions
from picojepa.runtime.net.network import NetworkEnsemble

from .stats import ratio, summarize

MEMBER_SETS = tuple(list(VOTE_MEMBERS[:n]) for n in (1, 2, len(VOTE_MEMBERS)))


def _latencies(ens, videos: list[str]) -> tuple[list[float], int]:
    """End-to-end ms of each video (sequential), and how many failed."""
    ms, bad = [], 0
    for p in ens.predict_many(videos):
        if p.error:
            bad += 1
        else:
            ms.append(p.timings_ms["total"])
    return ms, bad


def _throughput(ens, videos: list[str]) -> float:
    """Videos per second over the batch, decoding the next video while the current one is out."""
    t0 = time.perf_counter()
    n = sum(p.error is None for p in ens.predict_many(videos, prefetch=True))
    return n / (time.perf_counter() - t0)


def _export(run_dir: Path, tmp: Path, members: list[str]) -> Path:
    from picojepa.export.bundle import export_bundle  # heavy (torch): off `picojepa-bench --help`'s path

    out = tmp / f"separate-{len(members)}"
    export_bundle(run_dir, out, members, layout="separate", max_verify=4, optimise=False)
    return out


def network_report(bundle: Path, run_dir: Path, videos: list[str], rounds: int,
                   deadline_ms: float = 2000.0) -> dict:
    """Start a local server and member nodes for 1, 2 and 4 members, measure, stop them."""
    tmp = Path(tempfile.mkdtemp(prefix="picojepa-netbench-"))
    fused = Ensemble.load(bundle, provider="cpu", threads=1)
    out: dict = {"videos": len(videos), "rounds": rounds, "deadline_ms": deadline_ms,
                 "where": "loopback, one machine: server, coordinator and member nodes share its cores",
                 "throughput_videos_per_s": {}}
    try:
        with NatsServer() as server:
            opts = NatsOptions((server.url,))
            for members in MEMBER_SETS:
                sep = _export(run_dir, tmp, members)
                nodes = start_members(sep, members, server.url)
                try:
                    with NetworkEnsemble.connect(sep, opts, deadline_ms=deadline_ms) as net:
                        _latencies(net, videos[:2])  # warm-up: sessions, connections
                        k = len(members)
                        out["throughput_videos_per_s"][k] = _throughput(net, videos)
                        if k == 4:
                            out.update(_side_by_side(net, fused, videos, rounds))
                            out["bytes_per_clip"] = net.bytes_sent / max(1, net.requests)
                            out["losing_one"] = _lose_one(net, nodes[-1], videos)
                finally:
                    for n in nodes:
                        n.stop()
            out["throughput_videos_per_s"]["fused_in_process"] = _throughput(fused, videos)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _side_by_side(net, fused, videos: list[str], rounds: int) -> dict:
    """Per-video latency of the networked vote (4 members) and the fused graph, rounds interleaved."""
    net_ms, fused_ms, failed = [], [], 0
    for _ in range(rounds):
        a, bad = _latencies(net, videos)
        net_ms += a
        failed += bad
        fused_ms += _latencies(fused, videos)[0]
    n, f = summarize(net_ms), summarize(fused_ms)
    return {"latency_ms": {"network_4_members": n, "fused_in_process": f},
            "network_over_fused_p50": ratio(n, f), "failed_network_videos": failed}


def _lose_one(net, node, videos: list[str]) -> dict:
    """Kill one member mid-run: how the next videos fare (answers, deadline waits, latency)."""
    node.kill()
    preds = list(net.predict_many(videos))
    ok = [p for p in preds if p.error is None]
    waited = sum(p.timings_ms.get("inference", 0.0) >= net.deadline_s * 1e3 for p in ok)
    return {"killed": node.member, "videos": len(preds), "answered": len(ok),
            "missing_reported": sum(p.missing == [node.member] for p in ok),
            "videos_that_waited_the_deadline": waited,
            "latency_ms_after_loss": summarize([p.timings_ms["total"] for p in ok if
                                                p.timings_ms.get("inference", 0.0) < net.deadline_s * 1e3])}


def markdown(r: dict) -> str:
    lat, tp = r["latency_ms"], r["throughput_videos_per_s"]
    lo = r["losing_one"]
    rows = [
        "# Edge network on loopback",
        "",
        f"{r['videos']} videos, {r['rounds']} interleaved rounds, deadline {r['deadline_ms']:g} ms; {r['where']}.",
        "",
        *table(["", "p50 ms", "p90 ms"],
               ([k, f"{v['p50']:.1f}", f"{v['p90']:.1f}"] for k, v in lat.items() if v.get("n"))),
        "",
        f"Networked over fused (p50): {r['network_over_fused_p50']:.2f}x; "
        f"{r['bytes_per_clip'] / 1024:.1f} KiB per request on the wire (uint8 frames).",
        "",
        *table(["throughput", "videos/s"],
               ([f"{k} member node{'s' if k != 1 else ''}" if isinstance(k, int) else k, f"{v:.1f}"]
                for k, v in tp.items())),
        "",
        f"Losing member {lo['killed']}: {lo['answered']} of {lo['videos']} videos still answered "
        f"({lo['missing_reported']} naming it missing), {lo['videos_that_waited_the_deadline']} waited "
        f"the deadline; p50 of the others {lo['latency_ms_after_loss'].get('p50', float('nan')):.1f} ms.",
    ]
    return "\n".join(rows) + "\n"
