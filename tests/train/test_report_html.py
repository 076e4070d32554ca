"""report.html, the page beside report.md: self-contained, its headline report.json's, every wrong
clip (up to the cap) shown as an animated thumbnail, the clips to label next when there are
unlabelled videos."""
import base64
import io
import json
import re
import shutil

import numpy as np
import pytest

from picojepa.core.rundir import RunDir
from picojepa.train.answer import column
from picojepa.train.report_html import precision_recall
from picojepa.train.report_page import WRONG, write_page


@pytest.fixture(scope="module")
def page(smoke_run):
    run = RunDir(smoke_run[0])
    return run.report_html.read_text(), json.loads(run.report_json.read_text())


def _figures(html: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r'data-key="([^"]+)" data-value="([^"]+)"', html)}


def test_every_run_writes_a_self_contained_report_page(page):
    html, _ = page
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html, re.I), "nothing is fetched from elsewhere"
    assert "<script" not in html.lower() and "@import" not in html
    srcs = re.findall(r'src="([^"]+)"', html)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    assert all(f'href="#{a}"' not in html or f'id="{a}"' in html for a in re.findall(r'href="#([^"]+)"', html))


def test_the_page_headline_is_report_json(page):
    html, r = page
    got = _figures(html)
    chosen = re.search(r'data-key="answer.chosen">([^<]+)<', html).group(1)
    assert chosen == r["answer"]["chosen"]
    for key in (column(chosen), "random_init_probe", "motion_energy_baseline", "label_shuffled"):
        assert got[f"accuracy.{key}"] == r["accuracy"][key], key
    assert all(got[k] == r["accuracy"][k.split(".", 1)[1]] for k in got if k.startswith("accuracy."))


def test_per_class_precision_and_recall_come_from_the_answers_confusion(page):
    html, r = page
    m = np.asarray(r["confusion"][column(r["answer"]["chosen"])])
    prec, rec = precision_recall(m)
    got = _figures(html)
    for c in range(len(r["classes"])):
        assert got.get(f"precision.{c}") == prec[c] and got.get(f"recall.{c}") == rec[c]
    assert rec == [None if not m[c].sum() else m[c, c] / m[c].sum() * 100 for c in range(len(m))]


def test_every_misclassified_clip_up_to_the_cap_has_an_animated_thumbnail(page):
    from PIL import Image

    html, r = page
    p = r["predictions"]
    pred = p[column(r["answer"]["chosen"])]
    wrong = [k for k in range(len(pred)) if pred[k] != p["labels"][k]]
    assert len(p["answer_confidence"]) == len(pred) and all(0 < c <= 1 for c in p["answer_confidence"])
    tiles = dict(re.findall(r'<div class="tile[^"]*" id="clip-(\d+)"[^>]*><img src="data:image/gif;base64,([^"]+)"',
                            html))
    assert {int(k) for k in tiles} >= set(sorted(wrong, key=lambda k: -p["answer_confidence"][k])[:WRONG])
    gif = Image.open(io.BytesIO(base64.b64decode(next(iter(tiles.values())))))
    assert gif.n_frames > 1
    if wrong:
        assert "occlusion map" in html


def test_each_confusion_cell_links_to_its_clips(page):
    html, r = page
    m = np.asarray(r["confusion"][column(r["answer"]["chosen"])])
    for i, j in zip(*np.nonzero(m)):
        assert f'href="#cell-{i}-{j}"' in html and f'id="cell-{i}-{j}"' in html


def test_the_page_ranks_the_unlabelled_clips_to_label_next(smoke_run, smoke_recipe, smoke_data, tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    shutil.copytree(smoke_data, data, symlinks=True)
    shutil.copytree(smoke_run[0], run)
    (data / "train" / "unlabelled").mkdir()
    extra = sorted((data / "infer").glob("*/*.mp4"))[:3]
    for i, v in enumerate(extra):
        shutil.copy(v, data / "train" / "unlabelled" / f"u{i}.mp4")
    with open(data / "train" / "train.csv", "a") as f:
        f.writelines(f"unlabelled/u{i}.mp4\n" for i in range(len(extra)))
    html = write_page(smoke_recipe, data, run, smoke_run[1]).read_text()
    section = html[html.index('id="label-next"'):html.index('id="cell-')]
    assert section.count('data-path="') == 3 and section.count("data:image/gif") == 3 and "disagreement" in section


def test_the_answer_model_answers_the_held_out_clips_as_the_evaluation(smoke_run, smoke_recipe, page):
    """The occlusion maps follow the members the evaluation scored: the same clips, the same labels."""
    from picojepa.core.roster import VOTE_MEMBERS, report_key
    from picojepa.train.answer_model import AnswerModel
    from picojepa.train.thumbnails import view

    _, r = page
    model = AnswerModel(smoke_run[0], r["answer"]["chosen"], [r["vote_weights"][report_key(m)] for m in VOTE_MEMBERS])
    clips = np.stack([view(p, smoke_recipe.clip, with_clip=True).clip for p in r["predictions"]["paths"]])
    probs = model.member_probs(clips)
    for m in VOTE_MEMBERS:
        assert probs[m].argmax(-1).tolist() == r["predictions"][report_key(m)]
    answered = r["predictions"][column(r["answer"]["chosen"])]
    got = model(clips)[np.arange(len(answered)), answered]
    assert np.allclose(got, r["predictions"]["answer_confidence"], atol=1e-4)


CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (sudo apt-get install chromium)")
def test_the_page_renders_offline_in_a_real_browser_and_its_links_open_the_clips(smoke_run, tmp_path):
    import subprocess
    from urllib.parse import unquote

    path = RunDir(smoke_run[0]).report_html
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
               "--virtual-time-budget=3000"]
    dom = subprocess.run([*browser, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120).stdout
    shot = tmp_path / "page.png"
    subprocess.run([*browser, "--window-size=1100,1400", f"--screenshot={shot}", path.as_uri()], capture_output=True,
                   timeout=120)
    assert 'id="headline"' in dom and 'id="confusion"' in dom and "data:image/gif" in dom
    links = re.findall(r'<a class="clip" href="([^"]+)"', dom)
    assert links and all((path.parent / unquote(h)).resolve().is_file() for h in links)
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_repeated_runs_page_has_the_mean_as_its_headline_and_links_each_run(tmp_path):
    from picojepa.train.report_page import write_repeats_page
    from picojepa.train.seeds import seed_summary, spread

    def report(general, random):
        return {"accuracy": {"general": general, "random_init_probe": random, "motion_energy_baseline": 55.0,
                             "label_shuffled": 25.0}, "pretrain": {"history": [{"target_rank": 30.0}]},
                "recipe": "x", "classes": ["a", "b"], "held_out_videos": 10, "embed_dim": 96,
                "answer": {"chosen": "general"}}

    reports = [report(60.0, 50.0), report(80.0, 52.0)]
    summary = {**seed_summary(reports, [0, 1]), **spread(reports)}
    html = write_repeats_page(tmp_path, summary, ["seed-0", "seed-1"]).read_text()
    got = _figures(html)
    assert got["accuracy.general"] == 70.0 == summary["accuracy"]["general"]
    assert got["accuracy.random_init_probe"] == 51.0 and "± 14.14" in html
    assert 'href="seed-0/report.html"' in html and 'href="seed-1/report.html"' in html
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
