import json
import shutil

import onnx
import pytest
import torch

from conftest import REAL
from picojepa.export.bundle import export_bundle
from picojepa.export.errors import ExportError
from picojepa.train import checkpoint

REAL_VIDEO = REAL / "bench" / "test__mmaction2-tests.mp4"


def _extra():
    return [REAL_VIDEO] if REAL_VIDEO.exists() else []


@pytest.fixture(scope="module")
def fused_bundle(smoke_run, tmp_path_factory):
    run, _ = smoke_run
    out = tmp_path_factory.mktemp("b") / "bundle"
    return out, export_bundle(run, out, verify_videos=_extra())


def test_fused_bundle_is_verified_and_self_describing(fused_bundle):
    out, v = fused_bundle
    assert v["layout"] == "fused"
    assert v["fp32"]["max_abs_logit_diff"] <= 1e-4 and v["fp32"]["top1_agreement"] == 1.0
    assert json.loads((out / "verification.json").read_text())["fp32"]["tolerance"] == 1e-4
    manifest = json.loads((out / "manifest.json").read_text())
    assert [g["file"] for g in manifest["graphs"]] == ["ensemble.onnx"]
    assert manifest["vote_members"] == ["1", "2", "3", "4"]
    meta = {p.key: p.value for p in onnx.load(str(out / "ensemble.onnx")).metadata_props}
    assert json.loads(meta["picojepa_classes"]) == manifest["classes"]
    assert json.loads(meta["picojepa_clip"])["frames"] == manifest["clip"]["frames"]
    assert not list(out.glob("*.data")), "weights must stay inside the one .onnx file"


def test_members_with_different_encoders_export_as_separate_graphs(smoke_run, tmp_path):
    run, _ = smoke_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    state = checkpoint.load(copy / "members" / "2.pt")
    state["encoder"] = {k: v + 0.01 * torch.randn_like(v) for k, v in state["encoder"].items()}
    state["encoder_sha"] = checkpoint.state_hash(state["encoder"])
    checkpoint.save({k: v for k, v in state.items() if k != "format"}, copy / "members" / "2.pt")
    v = export_bundle(copy, tmp_path / "bundle", verify_videos=_extra())
    assert v["layout"] == "separate"
    assert v["fp32"]["max_abs_logit_diff"] <= 1e-4 and v["fp32"]["top1_agreement"] == 1.0
    assert len(list((tmp_path / "bundle").glob("member-*.onnx"))) == 5


def test_existing_output_needs_force(fused_bundle, smoke_run):
    out, _ = fused_bundle
    with pytest.raises(ExportError, match="already exists"):
        export_bundle(smoke_run[0], out)


@pytest.mark.parametrize("members,message", [(["general", "7"], "unknown member '7'"),
                                             (["1", "1"], "distinct")])
def test_bad_member_lists(smoke_run, tmp_path, members, message):
    with pytest.raises(ExportError, match=message):
        export_bundle(smoke_run[0], tmp_path / "b", members)
    assert not (tmp_path / "b").exists()


def test_not_a_checkpoint_is_a_one_line_error(smoke_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run)
    (run / "members" / "1.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="1.pt: not a readable checkpoint"):
        export_bundle(run, tmp_path / "b")
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.*"))


def test_mismatched_classes_are_refused(smoke_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run)
    state = checkpoint.load(run / "members" / "3.pt")
    state["classes"] = ["a", "b", "c"]
    checkpoint.save({k: v for k, v in state.items() if k != "format"}, run / "members" / "3.pt")
    with pytest.raises(ExportError, match="member 3 has classes"):
        export_bundle(run, tmp_path / "b")
