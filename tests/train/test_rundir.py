"""A run is never silently overwritten, never resumed under another recipe, and a full disk
loses nothing: the run directory's rules and atomic writes."""
import shutil

import pytest
import torch

from picojepa.core.errors import UsageError
from picojepa.core.rundir import RunDir, RunDirError, claim
from picojepa.train import checkpoint
from picojepa.train.classify import _keep_held_out
from picojepa.train.features import Features
from picojepa.train.files import write_text


def test_claim_takes_new_and_empty_folders_and_refuses_a_run_without_resume_or_force(tmp_path):
    assert claim(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    claim(tmp_path / "empty")
    run = tmp_path / "run"
    (run / "members").mkdir(parents=True)
    (run / "pretrain.pt").write_bytes(b"weights")
    with pytest.raises(RunDirError, match="holds a training run already; --resume continues it"):
        claim(run)
    claim(run, resume=True)
    assert (run / "pretrain.pt").read_bytes() == b"weights"
    with pytest.raises(UsageError, match="give one of them"):
        claim(run, resume=True, force=True)


def test_force_removes_the_runs_own_files_and_keeps_the_users(tmp_path):
    run = tmp_path / "run"
    (run / "members").mkdir(parents=True)
    (run / "seed-1").mkdir()
    (run / "seed-photos").mkdir()
    for f in ("pretrain.pt", "features.pt", "report.md", "runtime-predictions.csv", "members/general.pt",
              "members/alice.txt", "seed-1/pretrain.pt", "seed-photos/p.jpg"):
        (run / f).write_text("x")
    claim(run, force=True)
    left = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    assert left == ["members", "members/alice.txt", "runtime-predictions.csv", "seed-photos",
                    "seed-photos/p.jpg"]


def test_an_interrupted_ensemble_resumes(tmp_path):
    """Killed before its ensemble.json: its member runs make it an ensemble's folder."""
    (tmp_path / "runs" / "d2").mkdir(parents=True)
    (tmp_path / "runs" / "d2" / "pretrain.pt").write_text("x")
    claim(tmp_path, resume=True)
    with pytest.raises(RunDirError, match="holds a training run already"):
        claim(tmp_path)


def test_a_repeat_that_failed_before_writing_anything_does_not_block_the_retry(tmp_path):
    """`--seeds 3` on a data root that is not there fails in seed-0 before writing: the empty
    seed-0/ it leaves is no reason to refuse the same command once the data is there."""
    (tmp_path / "seed-0").mkdir()
    assert claim(tmp_path) == tmp_path and not (tmp_path / "seed-0").exists()
    (tmp_path / "seed-0").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match=r"not empty and not a training run \(holds notes.txt\)"):
        claim(tmp_path, force=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_folder_of_other_files_is_never_a_run(tmp_path):
    (tmp_path / "thesis.tex").write_text("two years of work")
    for force in (False, True):
        with pytest.raises(RunDirError, match="not empty and not a training run"):
            claim(tmp_path, force=force)
    assert (tmp_path / "thesis.tex").read_text() == "two years of work"


def test_recipe_drift_lists_what_pretraining_depends_on_and_ignores_the_rest():
    a = {"name": "a", "seed": 0, "pretrain": {"mask_ratio": 0.75, "num_workers": 0},
         "classify": {"epochs": 3}, "data": {"root": "x"}}
    b = {"name": "b", "seed": 1, "pretrain": {"mask_ratio": 0.5, "num_workers": 2},
         "classify": {"epochs": 9}, "data": {"root": "y"}}
    assert checkpoint.recipe_drift(a, b) == ["pretrain.mask_ratio: 0.75 -> 0.5", "seed: 0 -> 1"]
    assert checkpoint.recipe_drift(a, a) == []


def test_resume_under_another_recipe_is_refused_before_any_step(smoke_recipe, smoke_data, smoke_run, tmp_path):
    import dataclasses

    from picojepa.train.pretrain import pretrain

    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run)
    before = (run / "pretrain.pt").read_bytes()
    other = dataclasses.replace(smoke_recipe, pretrain=dataclasses.replace(smoke_recipe.pretrain, mask="tube"))
    with pytest.raises(checkpoint.CheckpointError, match=r"pretrain.mask: 'future' -> 'tube'"):
        pretrain(other, smoke_data, run, resume=True, show_progress=False)
    assert (run / "pretrain.pt").read_bytes() == before
    same = pretrain(smoke_recipe, smoke_data, run, resume=True, show_progress=False)  # nothing left to do
    assert same.epochs == smoke_recipe.pretrain.epochs and (run / "pretrain.pt").read_bytes() == before


def test_a_checkpoint_save_on_a_full_disk_keeps_the_old_one_and_leaves_no_temporary(tiny_disk):
    path = tiny_disk / "pretrain.pt"
    checkpoint.save({"kind": "pretrain", "w": torch.zeros(10)}, path)
    with pytest.raises(checkpoint.CheckpointError, match=f"{path}: cannot write the checkpoint"):
        checkpoint.save({"kind": "pretrain", "w": torch.zeros(1 << 18)}, path)  # 1 MiB > the disk
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["pretrain.pt"], "the temporary file stays"
    assert checkpoint.load(path)["w"].shape == (10,)
    checkpoint.save({"kind": "pretrain", "w": torch.ones(10)}, path)  # space is back: works again


def test_a_text_write_on_a_full_disk_names_the_file_and_leaves_no_temporary(tiny_disk):
    path = tiny_disk / "report.md"
    with pytest.raises(OSError, match=f"cannot write {path}"):
        write_text(path, "x" * (1 << 20))
    assert list(tiny_disk.iterdir()) == []


def test_a_bad_held_out_list_is_one_error_and_the_features_write_it_again(tmp_path):
    run = RunDir(tmp_path)
    run.held_out.write_text('{"paths": ["a.mp4", "b.mp4"], "labels": [0]}')
    with pytest.raises(RunDirError, match="2 paths but 1 labels"):
        run.held_out_videos()
    run.held_out.write_text('["not", "a", "list"]')
    with pytest.raises(RunDirError, match="not a held-out list"):
        run.held_out_videos()
    _keep_held_out(tmp_path, Features(torch.zeros(2, 1, 4), torch.tensor([1, 0]), ["a.mp4", "b.mp4"], []))
    assert run.held_out_videos() == (["a.mp4", "b.mp4"], [1, 0])
