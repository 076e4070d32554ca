"""Heterogeneous ensembles: the recipe, training, evaluation, and the bundle they export to."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from picojepa.train.config import ConfigError
from picojepa.train.hetero import error_correlation, load_hetero

from conftest import REPO

SMOKE = REPO / "configs" / "smoke.yaml"


def _recipe(tmp_path, members, name="h"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps({"name": name, "recipe": str(SMOKE), "members": members}))
    return path


@pytest.fixture(scope="module")
def hetero_run(tmp_path_factory, smoke_data):
    """Three members on the smoke data: depth 1, depth 2, and depth 1 with a longer classifier
    schedule (same encoder recipe as the first: its pre-training is shared, not repeated)."""
    from picojepa.train.hetero import train_ensemble

    tmp = tmp_path_factory.mktemp("hetero")
    cfg = load_hetero(_recipe(tmp, [{"name": "d1"}, {"name": "d2", "set": {"model.depth": 2}},
                                    {"name": "d1long", "set": {"classify.epochs": 5}}]))
    out = tmp / "out"
    return out, train_ensemble(cfg, smoke_data, out, show_progress=False)


def test_ensemble_report_compares_members_votes_general_and_homogeneous(hetero_run):
    out, report = hetero_run
    acc = report["accuracy"]
    for key in ("general", "homogeneous_majority", "hetero_majority", "hetero_soft", "hetero_weighted",
                "hetero_stacked", "member_d1", "member_d2", "member_d1long", "random_init_probe",
                "motion_energy_baseline"):
        assert 0.0 <= acc[key] <= 100.0, key
    assert report["held_out_videos"] == 6
    corr = report["error_correlation"]["hetero"]
    assert set(corr["pairs"]) == {"d1~d2", "d1~d1long", "d2~d1long"}
    md = (out / "report.md").read_text()
    assert all(f"| {k} |" in md for k in ("general", "homogeneous_soft", "hetero_stacked", "member_d1long"))
    depths = {m["name"]: m["recipe"]["model"]["depth"]
              for m in json.loads((out / "ensemble.json").read_text())["members"]}
    assert depths == {"d1": 1, "d2": 2, "d1long": 1}


def test_members_with_the_same_encoder_recipe_share_pre_training(hetero_run):
    out, _ = hetero_run
    runs = out / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["d1", "d1long", "d2"]
    assert os.path.samefile(runs / "d1" / "pretrain.pt", runs / "d1long" / "pretrain.pt")
    assert not os.path.samefile(runs / "d1" / "pretrain.pt", runs / "d2" / "pretrain.pt")
    assert os.path.samefile(runs / "d1" / "features.pt", runs / "d1long" / "features.pt")  # same features too


def test_hetero_bundle_groups_graphs_by_encoder_and_carries_each_recipe(hetero_run, tmp_path):
    from picojepa.export.bundle import export_bundle

    out, _ = hetero_run
    v = export_bundle(out, tmp_path / "b", optimise=False)
    assert v["layout"] == "grouped"
    assert v["fp32"]["max_abs_logit_diff"] <= 1e-4 and v["fp32"]["top1_agreement"] == 1.0
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert [g["members"] for g in m["graphs"]] == [["d1", "d1long"], ["d2"]]
    assert m["vote_members"] == ["d1", "d2", "d1long"] and m["stacking"]["members"] == m["vote_members"]
    assert {k: r["model"]["depth"] for k, r in m["member_recipes"].items()} == {"d1": 1, "d2": 2, "d1long": 1}


def test_two_runs_of_different_depth_compose_one_bundle_and_run_every_vote(hetero_run, smoke_data, tmp_path):
    """Done-when of the heterogeneous-ensembles issue: two runs exported into one bundle of two
    graphs, verified, classified by picojepa-run with every vote."""
    from picojepa.export.bundle import export_bundle

    runs = hetero_run[0] / "runs"
    bundle = tmp_path / "b"
    v = export_bundle(None, bundle, [f"{runs / 'd1'}:general=shallow", f"{runs / 'd2'}:general"],
                      optimise=False)
    assert v["layout"] == "separate" and len(v["fp32"]["members"]) == 2
    assert v["fp32"]["max_abs_logit_diff"] <= 1e-4 and v["fp32"]["top1_agreement"] == 1.0
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["members"] == ["shallow", "d2-general"] and len(m["graphs"]) == 2
    assert "stacking" not in m  # no meta-model was fitted on exactly these two
    infer = smoke_data / "infer"
    for vote in ("majority", "soft", "weighted"):
        res = subprocess.run([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(bundle),
                              str(infer), "--vote", vote, "--format", "json"],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        lines = [json.loads(x) for x in res.stdout.splitlines()]
        assert len(lines) == 6 and all(x["label"] and set(x["members"]) == {"shallow", "d2-general"}
                                       for x in lines)


def test_stacked_vote_runs_on_the_hetero_bundle(hetero_run, smoke_data, tmp_path):
    from picojepa.export.bundle import export_bundle
    from picojepa.runtime.ensemble import Ensemble

    export_bundle(hetero_run[0], tmp_path / "b", optimise=False)
    ens = Ensemble.load(tmp_path / "b")
    videos = sorted((smoke_data / "infer").rglob("*.mp4"))
    preds = [ens.predict(p, vote="stacked") for p in videos]
    assert all(p.error is None and p.label in ens.bundle.classes for p in preds)


def test_composed_members_must_share_classes(hetero_run, tmp_path):
    from picojepa.core.errors import UsageError
    from picojepa.export.bundle import export_bundle
    from picojepa.export.errors import ExportError
    from picojepa.train import checkpoint

    runs = hetero_run[0] / "runs"
    state = checkpoint.load(runs / "d2" / "members" / "general.pt")
    state["classes"] = ["x", "y", "z"]
    other = tmp_path / "other"
    checkpoint.save({k: v for k, v in state.items() if k != "format"}, other / "members" / "general.pt")
    with pytest.raises(ExportError, match="member other-general has classes"):
        export_bundle(None, tmp_path / "b", [f"{runs / 'd1'}:general", f"{other}:general"])
    with pytest.raises(ExportError, match="distinct"):
        export_bundle(None, tmp_path / "b", [f"{runs / 'd1'}:general=a", f"{runs / 'd2'}:general=a"])
    with pytest.raises(UsageError, match="expected RUN_DIR:MEMBER"):
        export_bundle(None, tmp_path / "b", [f"{runs / 'd1'}:genral"])
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("members,message", [
    ([{"name": "a"}], "at least two members"),
    ([{"name": "a"}, {"name": "a"}], "names must be distinct"),
    ([{"name": "a b"}, {"name": "c"}], r"members\[0\].name"),
    ([{"name": "a"}, {"name": "b", "head": "7"}], r"members\[1\].head"),
    ([{"name": "a"}, {"name": "b", "set": {"model.depht": 2}}], "member b: .*depht: unknown key"),
    ([{"name": "a"}, {"name": "b", "set": {"model.patch_size": 5}}], "member b: .*not divisible"),
    ([{"name": "a"}, {"name": "b", "sets": {}}], r"h.yaml: members\[1\].sets: unknown key \(known: head, name, set\)"),
    ({"name": "a"}, "h.yaml: members: expected a list"),
])
def test_bad_ensemble_recipes_name_the_member_and_key(tmp_path, members, message):
    with pytest.raises(ConfigError, match=message):
        load_hetero(_recipe(tmp_path, members))


def test_a_plain_recipe_is_not_an_ensemble(tmp_path):
    with pytest.raises(ConfigError, match="needs 'recipe'.*picojepa-train all"):
        load_hetero(SMOKE)


def test_error_correlation_of_identical_and_opposite_mistakes():
    y = np.array([0, 1, 0, 1])
    same = error_correlation(np.array([[1, 1, 0, 1], [1, 1, 0, 1]]), y, ["a", "b"])
    assert same["mean_phi"] == pytest.approx(1.0) and same["mean_disagree"] == 0.0
    apart = error_correlation(np.array([[1, 0, 0, 1], [0, 1, 1, 0]]), y, ["a", "b"])  # never wrong together
    assert apart["mean_phi"] == pytest.approx(-1.0) and apart["mean_disagree"] == 1.0
    assert error_correlation(np.array([y, y]), y, ["a", "b"])["mean_phi"] is None  # no errors at all


@pytest.mark.slow
def test_bench_sets_the_hetero_bundle_beside_the_fused_one_and_its_largest_graph(hetero_run, smoke_bundle,
                                                                                smoke_data, tmp_path):
    from picojepa.benchmarks.hetero import hetero_section
    from picojepa.benchmarks.report import _hetero
    from picojepa.export.bundle import export_bundle

    export_bundle(hetero_run[0], tmp_path / "b", optimise=False)
    videos = [str(p) for p in sorted((smoke_data / "infer").rglob("*.mp4"))]
    h = hetero_section(smoke_bundle, tmp_path / "b", videos, 1, 1, tmp_path / "scratch")
    assert set(h["configs"]) == {"homogeneous", "hetero", "largest"}
    assert h["largest_members"] == ["d2"]  # the depth-2 encoder costs more than depth 1 with two heads
    assert all(c["inference"]["n"] == len(videos) for c in h["configs"].values())
    assert all(v and v > 0 for v in h["peak_rss_mb"].values())
    assert "| heterogeneous: 3 members in 2 graphs |" in "\n".join(_hetero({"hetero": h}))


def test_edge_nodes_serve_a_hetero_bundle_and_vote_as_in_process(hetero_run, smoke_data, tmp_path):
    """One node per member of a heterogeneous bundle over a real nats-server on loopback: the
    network vote equals the in-process one, stacked vote included."""
    from picojepa.export.bundle import export_bundle
    from picojepa.runtime.ensemble import Ensemble
    from picojepa.runtime.net.localnet import NatsServer, start_members
    from picojepa.runtime.net.natsconn import NatsOptions
    from picojepa.runtime.net.network import NetworkEnsemble

    bundle = tmp_path / "b"
    export_bundle(hetero_run[0], bundle, layout="separate", optimise=False)
    members = ["d1", "d2", "d1long"]
    videos = sorted(str(p) for p in (smoke_data / "infer").rglob("*.mp4"))
    local = Ensemble.load(bundle, provider="cpu")
    with NatsServer() as server:
        procs = start_members(bundle, members, server.url)
        try:
            with NetworkEnsemble.connect(bundle, NatsOptions((server.url,)), deadline_ms=3000.0) as net:
                for method in ("majority", "stacked"):
                    remote = list(net.predict_many(videos, vote=method))
                    here = list(local.predict_many(videos, vote=method))
                    assert [p.index for p in remote] == [p.index for p in here]
                    assert all(p.missing == [] and sorted(p.members) == sorted(members) for p in remote)
                    assert all(abs(a.confidence - b.confidence) < 1e-5 for a, b in zip(remote, here))
        finally:
            for p in procs:
                p.stop()


def test_cli_errors_are_one_line(tmp_path):
    """A bad ensemble recipe and a member of a run that does not exist: one line each, no traceback."""
    bad = _recipe(tmp_path, [{"name": "a"}, {"name": "b", "set": {"model.depht": 2}}])
    r = subprocess.run([sys.executable, "-m", "picojepa.train.cli", "ensemble", "--config", str(bad),
                        "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: {bad}: member b: ")
    r = subprocess.run([sys.executable, "-m", "picojepa.export.cli", "--members",
                        f"{tmp_path / 'nope'}:general,{tmp_path / 'nope2'}:1", "--out", str(tmp_path / "b")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and r.stderr.strip() == f"error: {tmp_path / 'nope'}: no member 'general' (members/general.pt missing)"
    assert not (tmp_path / "out").exists() and not (tmp_path / "b").exists()
