"""The motion member: frame differencing in the graph, trained in every run, voting with JEPA."""
import json

import numpy as np
import torch

from picojepa.core.clips import ClipSpec, center_indices, normalize
from picojepa.core.decode import open_video
from picojepa.train.motion import MotionEncoder, n_features
from picojepa.train.motion_baseline import motion_features


def test_the_graph_sees_the_numbers_of_the_decoded_frames(smoke_data):
    """Normalised clip through MotionEncoder == the baseline's numbers on the same uint8 frames:
    the un-normalisation in the graph is exact, so the member and the yardstick agree."""
    spec = ClipSpec(frames=8, size=64, frame_step=2)
    video = sorted((smoke_data / "infer").rglob("*.mp4"))[0]
    v = open_video(video, spec.size)
    frames = v.read(center_indices(v.num_frames, spec))
    with torch.no_grad():
        graph = MotionEncoder(spec)(torch.from_numpy(normalize(frames, spec))[None])[0, 0].numpy()
    assert graph.shape == (n_features(8),) == (30,)
    np.testing.assert_allclose(graph, motion_features(frames), rtol=1e-4, atol=1e-5)


def test_every_run_trains_a_motion_member_and_reports_the_hybrid_vote(smoke_run):
    run, report = smoke_run
    state = torch.load(run / "members" / "motion.pt", weights_only=True)
    assert state["recipe"]["model"]["kind"] == "motion" and state["recipe"]["classify"]["head"] == "linear"
    assert {"motion_member", "vote_hybrid"} <= set(report.accuracy)
    text = (run / "report.md").read_text()
    assert "hybrid vote (soft vote of the general model and the motion member" in text


def test_a_hybrid_bundle_exports_verified_and_runs_like_the_report(smoke_run, smoke_data, tmp_path):
    from click.testing import CliRunner

    from picojepa.export.cli import main as export_main
    from picojepa.runtime.ensemble import Ensemble

    run, report = smoke_run
    r = CliRunner().invoke(export_main, [str(run), "--members", "general,motion", "--out", str(tmp_path / "b"),
                                         "--no-optimise"])
    assert r.exit_code == 0, r.output
    v = json.loads((tmp_path / "b" / "verification.json").read_text())
    assert v["layout"] == "separate" and v["fp32"]["top1_agreement"] == 1.0
    assert v["fp32"]["max_abs_logit_diff"] <= 1e-4
    ens = Ensemble.load(tmp_path / "b", provider="cpu")
    assert ens.bundle.vote_members == ["general", "motion"]
    paths = report.predictions["paths"]
    preds = list(ens.predict_many(paths, vote="soft"))
    assert [p.members["motion"].index for p in preds] == report.predictions["motion_member"]
    assert [p.index for p in preds] == report.predictions["vote_hybrid"]


def test_an_attentive_recipe_report_says_attentive_not_pooled():
    from picojepa.train.report import _reads

    assert "attentive probes" in _reads({"head": "attentive", "pool": "max"})
    assert "pooled by `max`" in _reads({"head": "linear", "pool": "max"})
