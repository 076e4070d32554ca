"""The edge network: member nodes over a real nats-server on loopback, and what happens when
they fail. Every server and node here is a real process started and stopped by a fixture."""
import asyncio
import json
import re
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from picojepa.core.bundle import load_bundle, seal
from picojepa.core.clips import ClipSpec
from picojepa.core.errors import BundleError
from picojepa.export.bundle import export_bundle
from picojepa.runtime.net import wire
from picojepa.runtime.cli import main as run_main
from picojepa.runtime.ensemble import Ensemble
from picojepa.runtime.net.localnet import NatsServer, start_members
from picojepa.runtime.net.natsconn import NatsOptions, NetworkError
from picojepa.runtime.net.network import PATIENCE, NetworkEnsemble
from picojepa.runtime.net.node import MemberNode, member_graph

DEADLINE_MS = 3000.0  # what the tests of a missing or slow member wait for
# Where every member is alive, the deadline only bounds the wait: generous, for a loaded 2-core box
ALIVE_DEADLINE_MS = 30000.0
VOTERS = ["1", "2", "3", "4"]


@pytest.fixture(scope="module")
def net_bundle(smoke_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("net") / "separate"
    export_bundle(smoke_run[0], out, layout="separate", optimise=False)
    return out


@pytest.fixture(scope="module")
def videos(smoke_data):
    return sorted(str(p) for p in (smoke_data / "infer").rglob("*.mp4"))


@pytest.fixture
def server():
    with NatsServer() as s:
        yield s


@pytest.fixture
def nodes(net_bundle, server):
    procs = start_members(net_bundle, VOTERS, server.url)
    yield {p.member: p for p in procs}
    for p in procs:
        p.stop()


def _net(bundle, server, deadline_ms=DEADLINE_MS, **kw):
    return NetworkEnsemble.connect(bundle, NatsOptions((server.url,)), deadline_ms=deadline_ms, **kw)


# -- the contract, without a server -------------------------------------------------------------
def test_requests_carry_uint8_frames_and_are_checked_against_bundle_and_shape(net_bundle):
    b = load_bundle(net_bundle)
    bid = b.checksum
    c = b.clip
    frames = np.random.default_rng(0).integers(0, 256, (2, c.frames, c.size, c.size, 3), dtype=np.uint8)
    headers, payload = wire.encode_request(bid, frames)
    assert len(payload) == frames.size  # one byte a pixel, a quarter of float32
    assert np.array_equal(wire.decode_request(headers, payload, bid, c), frames)
    with pytest.raises(wire.WireError, match="bundle"):
        wire.decode_request(headers, payload, "0" * 64, c)
    with pytest.raises(wire.WireError, match="payload"):
        wire.decode_request(headers, payload[:-1], bid, c)
    bad = dict(headers, **{wire.H_SHAPE: f"2,{c.frames},{c.size + 8},{c.size},3"})
    with pytest.raises(wire.WireError, match="shape"):
        wire.decode_request(bad, payload, bid, c)
    with pytest.raises(wire.WireError, match="shape"):
        wire.decode_request(dict(headers, **{wire.H_SHAPE: "__import__('os')"}), payload, bid, c)


def test_a_member_refuses_a_wrong_clip_without_running_it(net_bundle):
    node = MemberNode(net_bundle, "2")
    reply = node.answer({wire.H_BUNDLE: node.bid, wire.H_SHAPE: "1,2,3,4,3", wire.H_DTYPE: "uint8"}, b"x" * 72)
    assert reply.error and "shape" in reply.error and reply.probs is None
    assert (node.served, node.refused) == (0, 1)


def test_replies_for_another_bundle_or_of_the_wrong_shape_are_rejected():
    good = wire.Reply("a" * 64, "1", "n", np.full((1, 3), 1 / 3, np.float32), 1.0).encode()
    assert wire.decode_reply(good, "a" * 64, 1, 3).member == "1"
    with pytest.raises(wire.WireError, match="bundle"):
        wire.decode_reply(good, "b" * 64, 1, 3)
    with pytest.raises(wire.WireError, match="probabilities"):
        wire.decode_reply(good, "a" * 64, 2, 3)
    with pytest.raises(wire.WireError, match="unreadable"):
        wire.decode_reply(b"{not json", "a" * 64, 1, 3)


@pytest.mark.parametrize("reply", [
    b"[" * 100_000 + b"]" * 100_000,  # nested past Python's recursion limit: crashed the coordinator
    b'{"bundle": "' + b"a" * 64 + b'", "member": "1", "inference_ms": 1, "probs": [[-1e30, 1e30, 1]]}',
    b'{"bundle": "' + b"a" * 64 + b'", "member": "1", "inference_ms": 1, "probs": [["0.2", "0.3", "0.5"]]}',
    b'{"bundle": "' + b"a" * 64 + b'", "member": "1", "inference_ms": NaN, "probs": [[0.2, 0.3, 0.5]]}',
    b'{"bundle": "' + b"a" * 64 + b'", "member": "' + b"m" * 1_000_000 + b'", "inference_ms": 1, "probs": [[1]]}',
], ids=["nested-deep", "not-probabilities", "strings", "nan-time", "huge-member-name"])
def test_a_hostile_reply_is_a_short_wire_error_never_a_crash_or_a_vote(reply):
    with pytest.raises(wire.WireError) as err:
        wire.decode_reply(reply, "a" * 64, 1, 3)
    assert len(str(err.value)) < 300


@pytest.mark.parametrize("header, value", [
    (wire.H_SHAPE, "9" * 100_000), (wire.H_SHAPE, "1," * 500_000 + "1"), (wire.H_SHAPE, "\uff11,4,32,32,3"),
    (wire.H_DTYPE, "x" * 1_000_000)])
def test_a_hostile_request_header_is_refused_with_a_short_error(header, value):
    spec = ClipSpec(frames=4, size=32, frame_step=2)
    headers = {wire.H_BUNDLE: "a" * 64, wire.H_DTYPE: "uint8", wire.H_SHAPE: "1,4,32,32,3", header: value}
    t0 = time.perf_counter()
    with pytest.raises(wire.WireError) as err:
        wire.decode_request(headers, bytes(4 * 32 * 32 * 3), "a" * 64, spec)
    assert len(str(err.value)) < 300 and time.perf_counter() - t0 < 0.1


def test_a_fused_bundle_cannot_serve_one_member_and_says_how_to_export(smoke_bundle):
    with pytest.raises(BundleError, match="--layout separate"):
        member_graph(load_bundle(smoke_bundle), "1")


def test_no_server_is_a_one_line_error_within_the_connect_timeout(net_bundle, videos):
    t0 = time.monotonic()
    r = CliRunner().invoke(run_main, ["--bundle", str(net_bundle), "--nodes", "nats://127.0.0.1:9",
                                      "--connect-timeout", "1", videos[0]])
    assert r.exit_code == 3 and "no NATS server reachable" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and time.monotonic() - t0 < 10


# -- all members up -----------------------------------------------------------------------------
def test_networked_vote_equals_the_in_process_vote(net_bundle, server, nodes, videos):
    local = Ensemble.load(net_bundle, provider="cpu")
    with _net(net_bundle, server, deadline_ms=ALIVE_DEADLINE_MS) as net:
        for method in ("majority", "soft", "weighted", "stacked"):
            remote = list(net.predict_many(videos, vote=method, prefetch=True))
            here = list(local.predict_many(videos, vote=method))
            assert [p.error for p in remote] == [None] * len(videos)
            assert [p.index for p in remote] == [p.index for p in here], method
            assert all(p.missing == [] and sorted(p.members) == VOTERS for p in remote)
            for a, b in zip(remote, here):
                assert abs(a.confidence - b.confidence) < 1e-5
                assert all(a.members[m].latency_ms > 0 for m in VOTERS)
        assert net.bytes_sent > 0


def test_the_motion_member_serves_on_a_node_and_votes_with_jepa(smoke_run, server, videos, tmp_path):
    """The hybrid bundle over the network: the frame-differencing member on its own node."""
    hybrid = tmp_path / "hybrid"
    export_bundle(smoke_run[0], hybrid, ["general", "motion"], layout="separate", optimise=False)
    procs = start_members(hybrid, ["general", "motion"], server.url)
    try:
        with _net(hybrid, server) as net:
            remote = list(net.predict_many(videos, vote="soft"))
        here = list(Ensemble.load(hybrid, provider="cpu").predict_many(videos, vote="soft"))
        assert [p.error for p in remote] == [None] * len(videos)
        assert [p.index for p in remote] == [p.index for p in here]
        assert all(sorted(p.members) == ["general", "motion"] for p in remote)
    finally:
        for pr in procs:
            pr.stop()


def test_cli_over_the_network_writes_the_same_json_schema(net_bundle, server, nodes, videos):
    r = CliRunner().invoke(run_main, ["--bundle", str(net_bundle), "--nodes", server.url, "--format",
                                      "json", "--no-progress", *videos[:3]])
    assert r.exit_code == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 3 and all(x["missing"] == [] and x["error"] is None for x in lines)
    assert set(lines[0]["members"]["1"]) == {"label", "index", "probability", "latency_ms"}


# -- failures -----------------------------------------------------------------------------------
def test_a_member_killed_mid_batch_leaves_three_that_still_vote(net_bundle, server, nodes, videos):
    with _net(net_bundle, server) as net:
        preds = []
        for i, p in enumerate(net.predict_many(videos * 2)):
            preds.append(p)
            if i == 2:
                nodes["4"].kill()
    assert all(p.error is None for p in preds)
    assert all(p.missing == [] for p in preds[:3])
    assert all(p.missing == ["4"] and "4" not in p.members for p in preds[4:])
    waited = [p.timings_ms["inference"] >= DEADLINE_MS for p in preds[3:]]
    assert sum(waited) <= PATIENCE  # after that, the dead node stops costing the deadline
    r = CliRunner().invoke(run_main, ["--bundle", str(net_bundle), "--nodes", server.url, "--format",
                                      "json", "--no-progress", *videos[:2]])
    assert r.exit_code == 0 and all(json.loads(x)["missing"] == ["4"] for x in r.stdout.splitlines())


def test_all_members_down_is_an_error_per_video_naming_them_and_exit_3(net_bundle, server, nodes, videos):
    for n in nodes.values():
        n.kill()
    t0 = time.monotonic()
    r = CliRunner().invoke(run_main, ["--bundle", str(net_bundle), "--nodes", server.url,
                                      "--no-progress", *videos[:3]])
    assert r.exit_code == 3
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 3 and all("missing: 1, 2, 3, 4" in e for e in errors)
    assert time.monotonic() - t0 < 3 * DEADLINE_MS / 1e3 + 5  # each video waits at most its deadline


def test_too_few_members_for_the_quorum_is_that_videos_error(net_bundle, server, nodes, videos):
    nodes["3"].kill()
    nodes["4"].kill()
    with _net(net_bundle, server) as net:
        p = net.predict(videos[0])
        assert p.error and "2 of 4 voting members" in p.error and p.missing == ["3", "4"]
    with _net(net_bundle, server, quorum=2) as net:
        assert net.predict(videos[0]).error is None
        p = net.predict(videos[0], vote="stacked")
        assert p.error and "stacked vote needs every stacked member" in p.error


class SlowNode(MemberNode):
    def answer(self, headers, payload):
        time.sleep(DEADLINE_MS / 1e3 * 1.5)
        return super().answer(headers, payload)


def _serve_in_thread(node, url):
    loop = asyncio.new_event_loop()
    stop, ready = asyncio.Event(), threading.Event()
    t = threading.Thread(target=lambda: loop.run_until_complete(
        node.serve(NatsOptions((url,)), ready=ready.set, stop=stop)), daemon=True)
    t.start()
    assert ready.wait(20)
    return lambda: (loop.call_soon_threadsafe(stop.set), t.join(20))


def test_a_member_slower_than_the_deadline_is_left_out_not_waited_for(net_bundle, server, videos):
    procs = start_members(net_bundle, VOTERS[:3], server.url)
    stop = _serve_in_thread(SlowNode(net_bundle, "4"), server.url)
    try:
        with _net(net_bundle, server) as net:
            t0 = time.monotonic()
            p = net.predict(videos[0])
            took = time.monotonic() - t0
        assert p.error is None and p.missing == ["4"] and sorted(p.members) == VOTERS[:3]
        assert took < DEADLINE_MS / 1e3 * 1.4  # the deadline, not the slow member, ended the wait
    finally:
        stop()
        for pr in procs:
            pr.stop()


def test_a_member_of_another_bundle_version_never_votes(net_bundle, server, videos, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(net_bundle, other)
    m = json.loads((other / "manifest.json").read_text())
    m["recipe"] = {**m["recipe"], "name": "retrained"}
    (other / "manifest.json").write_text(json.dumps(seal(m)))
    assert load_bundle(other).checksum != load_bundle(net_bundle).checksum
    procs = start_members(net_bundle, VOTERS[:3], server.url) + start_members(other, ["4"], server.url)
    try:
        with _net(net_bundle, server) as net:
            p = net.predict(videos[0])
        assert p.error is None and p.missing == ["4"]
    finally:
        for pr in procs:
            pr.stop()


def test_the_server_restarted_mid_batch_and_the_batch_finishes(net_bundle, server, nodes, videos):
    batch = videos * 3
    with _net(net_bundle, server) as net:
        preds, t0 = [], time.monotonic()
        for i, p in enumerate(net.predict_many(batch)):
            preds.append(p)
            if i == 1:
                server.kill()
                server.start()
    assert len(preds) == len(batch) and time.monotonic() - t0 < len(batch) * DEADLINE_MS / 1e3 + 30
    assert all(p.error is None for p in preds[:2])
    assert all(p.error is None and p.missing == [] for p in preds[-3:])  # all back after the restart


def test_a_server_gone_mid_batch_is_named_and_does_not_cost_every_video_its_deadline(
        net_bundle, server, nodes, videos):
    """The members are not blamed for a lost connection; after one video waited its deadline
    without a connection, the next ones fail at once until the client is connected again."""
    batch = videos[:4]
    with _net(net_bundle, server) as net:
        preds = []
        for i, p in enumerate(net.predict_many(batch)):
            preds.append(p)
            if i == 0:
                server.kill()
    assert preds[0].error is None
    rest = [p.error for p in preds[1:]]
    assert all("no connection to the NATS server" in e for e in rest), rest
    assert not any("voting members answered" in e for e in rest), rest
    assert all("not waiting again" in e for e in rest[1:]), rest


def test_a_creds_file_without_nkeys_says_so(monkeypatch, tmp_path):
    import importlib.util

    from picojepa.runtime.net import natsconn

    creds = tmp_path / "user.creds"
    creds.write_text("-----BEGIN NATS USER JWT-----\n")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "nkeys" else real(n, *a))
    with pytest.raises(NetworkError, match="needs the nkeys package"):
        asyncio.run(natsconn.connect(NatsOptions(("nats://127.0.0.1:9",), creds=creds), "t"))
    monkeypatch.undo()
    assert importlib.util.find_spec("nkeys") is not None, "the network extra installs nkeys"


def test_wrong_credentials_are_refused_and_right_ones_vote(net_bundle, videos):
    with NatsServer(token="s3cret") as server:
        r = CliRunner().invoke(run_main, ["--bundle", str(net_bundle), "--nodes", server.url,
                                          "--nats-token", "wrong", videos[0]])
        assert r.exit_code == 3 and "refused our credentials" in r.stderr
        with pytest.raises(NetworkError, match="refused"):
            start_members(net_bundle, ["1"], server.url)
        procs = start_members(net_bundle, VOTERS, server.url, ["--nats-token", "s3cret"])
        try:
            r = CliRunner().invoke(run_main, ["--bundle", str(net_bundle), "--nodes", server.url,
                                              "--nats-token", "s3cret", "--format", "json", videos[0]])
            assert r.exit_code == 0 and json.loads(r.stdout)["missing"] == []
        finally:
            for p in procs:
                p.stop()


@pytest.mark.slow
def test_demo_network_tool_prints_the_accuracy_and_the_members(net_bundle, smoke_data):
    from conftest import REPO

    done = subprocess.run([sys.executable, "tools/demo_network.py", "--bundle", str(net_bundle),
                           str(smoke_data / "infer")], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "members that answered: 1, 2, 3, 4" in done.stdout
    acc = re.search(r"network vote accuracy: ([\d.]+)%.*in-process vote: ([\d.]+)%", done.stdout)
    assert acc and acc.group(1) == acc.group(2)  # all members answered: the same vote
