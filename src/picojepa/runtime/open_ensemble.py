"""Which ensemble `picojepa-run` opens: the bundle's graphs in this process, or with `--nodes` its
members on edge nodes over NATS (`--deadline-ms`, `--quorum`): the same surface either way."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from picojepa.core.clips import Region
from picojepa.core.options import Finite

from .ensemble import Ensemble, EnsembleBase
from .net.natsconn import NatsOptions, nats_options
from .net.network import NetworkEnsemble

DEFAULT_BUNDLE = "bundles/demo"  # what `make demo` writes
# --nodes and its NATS options (a decorator: the command receives `nats` and `connect_timeout`)
nodes_options = nats_options(
    "--nodes", "Vote over the edge network: NATS server URL(s), comma-separated; each member runs on its own node "
    "(`picojepa-serve`). The bundle must be the nodes' bundle.",
    "Seconds to reach the NATS server, or to open a live source and wait for each read, before giving up.",
    pass_timeout=True)
NODES_PARAMS = (
    click.Option(["--deadline-ms"], default=2000.0, show_default=True, type=Finite(min=1),
                 help="With --nodes: how long each video waits for the members' answers."),
    click.Option(["--quorum"], type=click.IntRange(min=1),
                 help="With --nodes: fewest voting members that must answer [default: a majority]."),
)
# the NATS options that mean something with --nodes only (--connect-timeout serves live sources too)
NODES_ONLY = ("nats_token", "nats_user", "nats_password", "nats_creds", *(p.name for p in NODES_PARAMS))
IN_PROCESS_ONLY = ("provider", "variant", "threads")  # with --nodes each node runs its member its own way


@dataclass(frozen=True)
class OpenOptions:
    """Which ensemble `picojepa-run` opens: the bundle's graphs here (provider, variant, threads),
    or with `nats` its member nodes over the network (deadline, quorum); how it decodes (device,
    clip placement, region of interest)."""

    bundle: Path
    provider: str = "auto"
    variant: str = "fp32"
    threads: int = 0
    decode_device: str = "cpu"
    placement: str | None = None
    region: Region | None = None
    nats: NatsOptions | None = None
    deadline_ms: float = 2000.0
    quorum: int | None = None


def open_ensemble(o: OpenOptions) -> EnsembleBase:
    """The in-process Ensemble, or with `o.nats` the NetworkEnsemble of the member nodes."""
    if o.nats is None:
        return Ensemble.load(o.bundle, o.provider, o.variant, o.threads, o.decode_device, placement=o.placement,
                             region=o.region)
    return NetworkEnsemble.connect(o.bundle, o.nats, deadline_ms=o.deadline_ms, quorum=o.quorum,
                                   decode_device=o.decode_device, placement=o.placement, region=o.region)
