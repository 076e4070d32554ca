import json
import subprocess
import sys

import pytest
import torch

from picojepa.train import checkpoint
from picojepa.train.pretrain import pretrain

from conftest import REPO


def test_smoke_run_writes_the_full_report(smoke_run):
    run, report = smoke_run
    acc = json.loads((run / "report.json").read_text())["accuracy"]
    assert set(acc) >= {"general", "partial_1", "partial_2", "partial_3", "partial_4",
                        "vote_majority", "vote_soft", "vote_stacked", "random_init_probe",
                        "motion_energy_baseline"}
    assert all(0 <= v <= 100 for v in acc.values())
    md = (run / "report.md").read_text()
    assert "Table 2" in md and "Table 3" in md and "tie-break" in md and "vote_stacked" in md
    assert "pooled by `meandelta` (the mean over tokens and how much each channel changes" in md  # the demo's pooling
    for png in ("loss.png", "confusion.png", "tsne.png", "masking.png"):
        assert (run / png).stat().st_size > 1000, png
    assert len(report.per_class_accuracy["general"]) == len(report.classes)


def test_the_report_keeps_numbers_and_draws_its_sentences_from_them(smoke_run):
    run, report = smoke_run
    saved = json.loads((run / "report.json").read_text())
    assert saved == json.loads(json.dumps(report.to_json()))  # report.json is the report, key for key
    facts = saved["extra"]
    assert all(v is None or isinstance(v, (int, float)) for v in facts.values()), facts
    assert facts["pretrain_epochs"] == report.recipe_config["pretrain"]["epochs"]
    md = (run / "report.md").read_text()
    assert f"- pre-training: {facts['pretrain_epochs']} epochs, final loss {facts['final_loss']:.4f}" in md
    assert f"{facts['encoder_passes']} encoder clip passes instead of {facts['encoder_passes_uncached']}" in md


def test_the_run_keeps_its_held_out_videos_for_export(smoke_run):
    from picojepa.core.rundir import RunDir
    from picojepa.train.classify import cached_held_out

    run, report = smoke_run
    kept = RunDir(run).held_out_videos()
    assert kept == (report.predictions["paths"], report.predictions["labels"]) and kept[0]
    assert cached_held_out(run) == kept  # what a run classified before held_out.json gives export


def test_the_stacker_is_fitted_on_videos_no_partial_member_trained_on(smoke_run):
    run, report = smoke_run
    stacker = checkpoint.load(run / "members" / "stacker.pt", kind="stacker")
    assert stacker["members"] == ["1", "2", "3", "4"]
    unseen = [checkpoint.load(run / "members" / f"{m}.pt", kind="member")["val_videos"]
              for m in stacker["members"]]
    assert stacker["fitted_on_videos"] == sum(unseen) >= 8
    assert f"{sum(unseen)} validation videos" in report.stacker


def test_checkpoints_carry_their_config_and_load_weights_only(smoke_run):
    run, _ = smoke_run
    state = torch.load(run / "members" / "general.pt", weights_only=True)
    assert state["recipe"]["name"] == "smoke" and state["kind"] == "member"
    assert not list(run.rglob("*.tmp"))


def test_undecodable_training_videos_are_skipped_and_listed(smoke_recipe, smoke_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(smoke_data, data)
    victim = next((data / "train").rglob("*.mp4"))
    victim.write_bytes(b"garbage" * 10)
    res = pretrain(smoke_recipe, data, tmp_path / "run", show_progress=False)
    assert res.skipped == [f"{victim}: not a video file FFmpeg can read"]
    from click.testing import CliRunner

    from picojepa.train.cli import main

    r = CliRunner().invoke(main, ["pretrain", "--config", str(REPO / "configs" / "smoke.yaml"), "--data",
                                  str(data), "--out", str(tmp_path / "cli"), "--no-progress"])
    assert r.exit_code == 1, r.output  # partial: the run is complete without that video
    assert f"warning: {victim}: not a video file FFmpeg can read (skipped)" in r.stderr
    assert "1 training video(s) could not be decoded" in r.stderr


def test_resume_continues_and_matches_an_uninterrupted_run(smoke_recipe, smoke_data, tmp_path):
    import dataclasses

    full = pretrain(smoke_recipe, smoke_data, tmp_path / "full", show_progress=False)
    one = dataclasses.replace(smoke_recipe, pretrain=dataclasses.replace(smoke_recipe.pretrain, epochs=1))
    pretrain(one, smoke_data, tmp_path / "resumed", show_progress=False)
    # the 1-epoch run stopped early; continue it under the full recipe
    state = checkpoint.load(tmp_path / "resumed" / "pretrain.pt")
    state["recipe"] = smoke_recipe.to_dict()
    checkpoint.save({k: v for k, v in state.items() if k != "format"}, tmp_path / "resumed" / "pretrain.pt")
    log = tmp_path / "resumed" / "pretrain.jsonl"
    log.write_text(log.read_text() + '{"stage": "pretrain", "epoch": 1, "step": 99}\n{"stage": "pre')
    resumed = pretrain(smoke_recipe, smoke_data, tmp_path / "resumed", resume=True, show_progress=False)
    assert resumed.weights_sha == full.weights_sha
    # what a killed run logged after its last checkpoint (and a cut line) is dropped on resume
    assert _steps(log) == _steps(tmp_path / "full" / "pretrain.jsonl")


def _steps(log) -> list[tuple[int, int, float]]:
    return [(r["epoch"], r["step"], r["loss"]) for r in map(json.loads, log.read_text().splitlines())]


def test_interrupted_synth_generation_is_finished_not_refused(smoke_recipe, tmp_path):
    from picojepa.train.pipeline import ensure_data
    from picojepa.train.synth import MARKER, generate

    d = smoke_recipe.data
    root = tmp_path / "synth"
    generate(root, d.synth_classes, d.synth_videos_per_class, d.synth_seed)
    (root / "classInd.txt").unlink()  # as if killed before the layout was written ...
    (root / MARKER).write_text("{}")  # ... with the generation marker still there
    victim = next((root / "train").rglob("*.mp4"))
    victim.unlink()
    ensure_data(smoke_recipe, root, show_progress=False)
    assert victim.exists() and (root / "classInd.txt").exists() and not (root / MARKER).exists()


def test_train_cli_reports_bad_config_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"base: {REPO / 'configs' / 'base.yaml'}\npretrain:\n  epohcs: 2\n")
    r = subprocess.run([sys.executable, "-m", "picojepa.train.cli", "pretrain", "--config", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode == 3
    assert r.stderr.strip().count("\n") == 0 and "pretrain.epohcs: unknown key" in r.stderr


DDP_SCRIPT = """
import sys, torch.distributed as dist
from picojepa.train.recipe_file import load_recipe
from picojepa.train.pretrain import pretrain
r = load_recipe(sys.argv[1])
res = pretrain(r, sys.argv[2], sys.argv[3], show_progress=False)
open(f"{sys.argv[3]}/rank{dist.get_rank()}.sha", "w").write(res.weights_sha)
"""


def test_torchrun_two_cpu_processes_agree_on_weights(smoke_data, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    run = tmp_path / "run"
    run.mkdir()
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                        "--master_port", "29533", str(script), str(REPO / "configs" / "smoke.yaml"),
                        str(smoke_data), str(run)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = (run / "rank0.sha").read_text(), (run / "rank1.sha").read_text()
    assert a == b and len(a) == 64
    assert (run / "pretrain.pt").exists()


def test_a_recipe_for_your_own_videos_never_generates_the_builtin_set(tmp_path):
    from picojepa.core.errors import DataLayoutError
    from picojepa.train.recipe_file import load_recipe
    from picojepa.train.pipeline import ensure_data

    recipe = load_recipe(REPO / "configs" / "real.yaml")
    with pytest.raises(DataLayoutError, match="picojepa-data index"):
        ensure_data(recipe, tmp_path / "missing", show_progress=False)
    assert not (tmp_path / "missing").exists()
