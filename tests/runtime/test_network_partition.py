"""A network partition between hosts, simulated with a network namespace and a veth pair: member 4
runs on the 'other host' and its link goes down mid-batch, without a FIN or RST (the way a cable
or a radio link fails). Needs root and iproute2; slow."""
import os
import shutil
import subprocess
import time

import pytest

from picojepa.export.bundle import export_bundle
from picojepa.runtime.net.localnet import MemberProcess, NatsServer, start_members
from picojepa.runtime.net.natsconn import NatsOptions
from picojepa.runtime.net.network import NetworkEnsemble

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2 (ip netns)")]

HOST_IP, NODE_IP = "10.231.77.1", "10.231.77.2"


def ip(*args, ns=None):
    cmd = ["ip", "netns", "exec", ns, "ip", *args] if ns else ["ip", *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=10)


@pytest.fixture
def other_host():
    ns, host_end, node_end = f"pj{os.getpid()}", f"pjh{os.getpid()}", f"pjn{os.getpid()}"
    ip("netns", "add", ns)
    try:
        ip("link", "add", host_end, "type", "veth", "peer", "name", node_end)
        ip("link", "set", node_end, "netns", ns)
        ip("addr", "add", f"{HOST_IP}/30", "dev", host_end)
        ip("link", "set", host_end, "up")
        ip("addr", "add", f"{NODE_IP}/30", "dev", node_end, ns=ns)
        ip("link", "set", node_end, "up", ns=ns)
        ip("link", "set", "lo", "up", ns=ns)
        yield ns, node_end
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)  # takes the veth pair along
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, timeout=10)


def test_a_partitioned_member_is_left_out_and_votes_again_after_the_link_heals(smoke_run, smoke_data, tmp_path,
                                                                              other_host):
    ns, node_end = other_host
    bundle = tmp_path / "separate"
    export_bundle(smoke_run[0], bundle, layout="separate", optimise=False)
    videos = sorted(str(p) for p in (smoke_data / "infer").rglob("*.mp4"))
    with NatsServer(host=HOST_IP) as server:
        nodes = start_members(bundle, ["1", "2", "3"], server.url)
        far = MemberProcess(bundle, "4", server.url, wrap=["ip", "netns", "exec", ns]).start()
        try:
            with NetworkEnsemble.connect(bundle, NatsOptions((server.url,)), deadline_ms=1500) as net:
                assert all(p.missing == [] for p in net.predict_many(videos[:2]))
                ip("link", "set", node_end, "down", ns=ns)  # the partition: packets just stop
                t0 = time.monotonic()
                cut = list(net.predict_many(videos))
                assert time.monotonic() - t0 < len(videos) * 1.5 + 10
                assert all(p.error is None and p.missing == ["4"] for p in cut)
                ip("link", "set", node_end, "up", ns=ns)
                healed, end = [], time.monotonic() + 30  # TCP retransmits after its back-off
                while time.monotonic() < end:
                    healed.append(net.predict(videos[0]))
                    if healed[-1].missing == []:
                        break
                assert healed[-1].missing == [] and "4" in healed[-1].members
        finally:
            far.stop()
            for n in nodes:
                n.stop()
