import json
import shutil

import onnx
import pytest
import torch

from picojepa.core.bundle import Manifest, load_bundle
from picojepa.core.errors import UsageError
from picojepa.core.outdir import OutputDirError
from picojepa.export.bundle import export_bundle
from picojepa.export.errors import ExportError
from picojepa.train import checkpoint
from picojepa.train.answer import column

from conftest import REAL

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


def test_members_with_different_encoders_export_as_graphs_grouped_by_encoder(smoke_run, tmp_path):
    run, _ = smoke_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    state = checkpoint.load(copy / "members" / "2.pt")
    state["encoder"] = {k: v + 0.01 * torch.randn_like(v) for k, v in state["encoder"].items()}
    state["encoder_sha"] = checkpoint.state_hash(state["encoder"])
    checkpoint.save({k: v for k, v in state.items() if k != "format"}, copy / "members" / "2.pt")
    v = export_bundle(copy, tmp_path / "bundle", verify_videos=_extra())
    assert v["layout"] == "grouped"  # the four that still share an encoder share one graph
    assert v["fp32"]["max_abs_logit_diff"] <= 1e-4 and v["fp32"]["top1_agreement"] == 1.0
    graphs = json.loads((tmp_path / "bundle" / "manifest.json").read_text())["graphs"]
    assert [g["members"] for g in graphs] == [["general", "1", "3", "4"], ["2"]]
    v = export_bundle(copy, tmp_path / "separate", layout="separate", optimise=False)
    assert v["layout"] == "separate" and len(list((tmp_path / "separate").glob("member-*.onnx"))) == 5
    whole = load_bundle(tmp_path / "bundle")  # one graph of a grouped bundle, as a bundle of its own
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy2(tmp_path / "bundle" / "member-2.onnx", alone)
    Manifest.of(whole).only("member-2.onnx").write(alone)
    part = load_bundle(alone)  # sealed and checked like any export
    assert part.members == part.vote_members == ["2"] and part.layout == "separate" and part.stacking is None
    assert part.classes == whole.classes and part.vote_weights == {"2": whole.vote_weights["2"]}


def test_existing_output_needs_force(fused_bundle, smoke_run):
    out, _ = fused_bundle
    with pytest.raises(OutputDirError, match="already exists"):
        export_bundle(smoke_run[0], out)


@pytest.mark.parametrize("members,message", [(["general", "7"], "unknown member '7'"),
                                             (["1", "1"], "distinct")])
def test_bad_member_lists(smoke_run, tmp_path, members, message):
    with pytest.raises((ExportError, UsageError), match=message):
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


def test_variants_are_measured_and_shipped_only_when_they_pay(smoke_run, tmp_path):
    from picojepa.runtime.ensemble import Ensemble

    out = tmp_path / "bundle"
    v = export_bundle(smoke_run[0], out, int8=True, fp16=True, verify_videos=_extra())
    manifest = json.loads((out / "manifest.json").read_text())
    variants = {g["variant"]: g["file"] for g in manifest["graphs"]}
    assert set(variants) <= {"fp32", "fp16", "int8"}, "no temporary variant may stay in the bundle"
    files = {p.name for p in out.iterdir()}
    assert files == {"manifest.json", "verification.json", *variants.values()}

    opt = v["optimiser"]  # LayerNorm and GELU fusion always apply to this ViT
    assert opt["fused_operators"].get("SkipLayerNormalization", 0) >= 1
    assert opt["max_abs_logit_diff"] <= 1e-4 and opt["speedup"] > 0
    ops = {n.op_type for n in onnx.load(str(out / "ensemble.onnx")).graph.node}
    assert ("SkipLayerNormalization" in ops) == opt["kept"] == ("optimised" in manifest)
    assert opt["kept"] or "not kept" in opt["reason"]

    cpu = v["fp16"]["providers"]["cpu"]  # onnxruntime's CPU provider runs fp16 graphs
    assert cpu["verified"] and cpu["max_abs_logit_diff"] <= v["fp16"]["tolerance"], cpu  # what differed, if not
    assert v["fp16"]["shipped"] == ("fp16" in variants)
    assert v["int8"]["shipped"] == ("int8" in variants)
    assert v["int8"]["shipped"] or "not shipped" in v["int8"]["reason"]

    video = _extra() or [v["videos"][0]]
    fp32, half = (Ensemble.load(out, "cpu", variant).predict(video[0]) for variant in ("fp32", "fp16"))
    assert half.error is None and half.index == fp32.index


@pytest.mark.needs_cuda
def test_fp16_is_verified_on_the_cuda_provider(smoke_run, tmp_path):
    v = export_bundle(smoke_run[0], tmp_path / "bundle", fp16=True, verify_videos=_extra())
    assert v["fp16"]["cuda_verified"], v["fp16"]["providers"]["cuda"]


def _reclassify(smoke_run, smoke_recipe, smoke_data, tmp_path, **classify):
    """The smoke run's pre-trained encoder with new heads: the recipe's classify settings changed."""
    import dataclasses

    from picojepa.train.classify import classify as run_classify

    recipe = dataclasses.replace(smoke_recipe, classify=dataclasses.replace(smoke_recipe.classify, **classify))
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(smoke_run[0] / "pretrain.pt", run / "pretrain.pt")  # same encoder, new heads
    run_classify(recipe, smoke_data, run, show_progress=False)
    return recipe, run


@pytest.mark.parametrize("pool, sampling", [("meanstd", "window"), ("meandelta", "window"),
                                             ("changemap", "window"), ("changemap", "spread")])
def test_wide_pooling_trains_exports_and_answers_like_the_report(smoke_run, smoke_recipe, smoke_data,
                                                                 tmp_path, pool, sampling):
    """classify.pool=meanstd / meandelta / changemap, clips as windows or spread over the video,
    end to end: features, heads of wider inputs, fused ONNX graph that pools the same way, runtime
    answers (decoded by the runtime's own sampling) equal to the evaluation's."""
    import dataclasses

    from picojepa.runtime.ensemble import Ensemble
    from picojepa.train.evaluate import evaluate

    clip = dataclasses.replace(smoke_recipe.clip, sampling=sampling)
    recipe, run = _reclassify(smoke_run, dataclasses.replace(smoke_recipe, clip=clip), smoke_data, tmp_path,
                              pool=pool)
    head = checkpoint.load(run / "members" / "general.pt", kind="member")["head"]
    steps, side = 2, 4  # the smoke recipe's token grid: 4 frames / tubelet 2, 32 px / patch 8
    extra = (steps - 1) * side * side if pool == "changemap" else 0
    assert head["fc.weight"].shape[1] == 2 * smoke_recipe.model.embed_dim + extra
    report = evaluate(recipe, smoke_data, run, show_progress=False)
    v = export_bundle(run, tmp_path / "bundle", max_verify=8)
    ens = Ensemble.load(tmp_path / "bundle", provider="cpu")
    # one graph, or two where the hybrid validated best and the motion member joined the bundle
    assert v["layout"] == ("grouped" if "motion" in ens.bundle.members else "fused")
    assert v["fp32"]["max_abs_logit_diff"] <= 1e-4
    preds = list(ens.predict_many(report.predictions["paths"]))
    assert [p.members["general"].index for p in preds] == report.predictions["general"]
    assert [p.index for p in preds] == report.predictions[column(ens.bundle.default_answer)]


def test_attentive_head_trains_exports_verifies_and_answers_like_the_report(smoke_run, smoke_recipe,
                                                                            smoke_data, tmp_path):
    """classify.head=attentive (V-JEPA's attentive probe on every frozen token) end to end: token
    features, the head, a fused ONNX graph verified against PyTorch, runtime answers equal to the
    evaluation's for the general model and the vote."""
    from picojepa.runtime.ensemble import Ensemble
    from picojepa.train.evaluate import evaluate

    recipe, run = _reclassify(smoke_run, smoke_recipe, smoke_data, tmp_path, head="attentive")
    head = checkpoint.load(run / "members" / "general.pt", kind="member")["head"]
    assert "query" in head and head["fc.weight"].shape[1] == smoke_recipe.model.embed_dim
    report = evaluate(recipe, smoke_data, run, show_progress=False)
    assert report.head == "attentive"
    v = export_bundle(run, tmp_path / "bundle", max_verify=8)
    assert v["layout"] == "fused" and v["fp32"]["max_abs_logit_diff"] <= 1e-4
    assert v["fp32"]["top1_agreement"] == 1.0
    ens = Ensemble.load(tmp_path / "bundle", provider="cpu")
    preds = list(ens.predict_many(report.predictions["paths"]))
    assert [p.members["general"].index for p in preds] == report.predictions["general"]
    assert [p.index for p in preds] == report.predictions[column(ens.bundle.default_answer)]


def test_finetuned_members_export_as_separate_verified_graphs_and_answer_like_the_report(
        smoke_run, smoke_recipe, smoke_data, tmp_path):
    """classify.finetune=true: each member fine-tunes its own encoder copy, so the bundle holds one
    graph per member, each verified; the runtime's answers equal the evaluation's."""
    from picojepa.runtime.ensemble import Ensemble
    from picojepa.train.evaluate import evaluate

    recipe, run = _reclassify(smoke_run, smoke_recipe, smoke_data, tmp_path, finetune=True, finetune_epochs=1)
    shas = {checkpoint.load(run / "members" / f"{m}.pt", kind="member")["encoder_sha"]
            for m in ("general", "1", "2", "3", "4")}
    assert len(shas) == 5  # every member has its own encoder now
    report = evaluate(recipe, smoke_data, run, show_progress=False)
    v = export_bundle(run, tmp_path / "bundle", max_verify=8, optimise=False)
    assert v["layout"] == "separate" and v["fp32"]["max_abs_logit_diff"] <= 1e-4
    assert v["fp32"]["top1_agreement"] == 1.0
    ens = Ensemble.load(tmp_path / "bundle", provider="cpu")
    assert len(ens.sessions) == 5
    preds = list(ens.predict_many(report.predictions["paths"]))
    assert [p.members["general"].index for p in preds] == report.predictions["general"]
    assert [p.index for p in preds] == report.predictions[column(ens.bundle.default_answer)]
    assert [p.index for p in ens.predict_many(report.predictions["paths"], vote="stacked")] == \
        report.predictions["vote_stacked"]
