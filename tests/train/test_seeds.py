import json
import subprocess
import sys

import pytest

from picojepa.train.report import COLUMNS, seeds_markdown
from picojepa.train.seeds import spread

from conftest import REPO


def _report(general, random, rank):
    return {"accuracy": {"general": general, "random_init_probe": random, "vote_majority": general - 5},
            "pretrain": {"history": [{"target_rank": rank}]}, "recipe": "x", "classes": ["a", "b"],
            "held_out_videos": 10, "embed_dim": 96}


def test_spread_gives_mean_and_sample_sd_with_the_accuracy_keys():
    s = spread([_report(60, 50, 20), _report(70, 50, 30), _report(80, 50, 40)])
    assert s["accuracy_mean"] == {"general": 70.0, "random_init_probe": 50.0, "vote_majority": 65.0}
    assert s["accuracy_sd"]["general"] == pytest.approx(10.0) and s["accuracy_sd"]["random_init_probe"] == 0
    assert s["target_rank_mean"] == 30.0


def test_a_repeated_runs_headline_is_the_mean_not_the_first_runs_figure():
    from picojepa.train.seeds import seed_summary

    reports = [_report(60, 50, 20), _report(80, 50, 30)]
    for summary in ({**reports[0], **spread(reports)}, seed_summary(reports, [0, 1])):
        assert summary["accuracy"]["general"] == 70.0
        assert summary["accuracy_sd"]["general"] == pytest.approx(14.142, abs=1e-3)


def test_seeds_report_shows_mean_sd_every_seed_and_warns_on_the_mean():
    reports = [_report(40, 50, 3), _report(44, 52, 4)]
    r = {**reports[0], **spread(reports), "seeds": [0, 1],
         "per_seed": {"0": reports[0]["accuracy"], "1": reports[1]["accuracy"]},
         "per_seed_target_rank": {"0": 3, "1": 4}}
    md = seeds_markdown(r, [c for c in COLUMNS if c in r["accuracy_mean"]])
    assert "**42.00 ± 2.83**" in md and "| seed 1 | 44.00 |" in md
    assert "collapsed" in md and "did not help" in md


@pytest.mark.slow
def test_train_all_with_seeds_writes_each_run_and_the_spread(smoke_data, tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "picojepa.train.cli", "all", "--config",
                           str(REPO / "configs" / "smoke.yaml"), "--data", str(smoke_data), "--out", str(out),
                           "--seeds", "2", "--no-progress"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads((out / "report.json").read_text())
    assert r["seeds"] == [0, 1] and set(r["accuracy_mean"]) == set(r["accuracy"]) == set(r["accuracy_sd"])
    assert (out / "seed-0" / "members" / "general.pt").exists() and (out / "seed-1" / "report.md").exists()
    assert (out / "report.html").exists() and (out / "seed-1" / "report.html").exists()
    assert r["per_seed"]["0"] == json.loads((out / "seed-0" / "report.json").read_text())["accuracy"]


def test_the_other_ranks_of_a_distributed_run_take_part_in_every_seed_and_leave_the_summary(monkeypatch, tmp_path):
    import picojepa.train.seeds as seeds_mod
    from picojepa.train.recipe_file import load_recipe

    ran = []
    monkeypatch.setattr(seeds_mod, "run_all", lambda recipe, *a, **k: ran.append(recipe.seed))  # a rank > 0: None
    recipe = load_recipe(REPO / "configs" / "smoke.yaml")
    assert seeds_mod.run_seeds(recipe, tmp_path / "data", tmp_path / "out", 3) is None
    assert ran == [recipe.seed, recipe.seed + 1, recipe.seed + 2] and not (tmp_path / "out").exists()
