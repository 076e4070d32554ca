"""Every case of the bad-input corpus (cases.py) behaves as documented in docs/bad-inputs.md."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from picojepa.core.clips import ClipSpec
from picojepa.runtime.ensemble import decode_clips

import cases  # tests/hardening/cases.py: pytest puts each test file's folder on sys.path
from conftest import REPO

SPEC = ClipSpec(frames=4, size=32, frame_step=1)


def _skip_reason(case):
    if case.needs == "ffmpeg" and not cases.FFMPEG:
        return "the ffmpeg command-line tool is not installed"
    if case.needs == "non-root" and os.geteuid() == 0:
        return "root reads files without read permission"
    return None


def _params(group):
    out = []
    for c in cases.ALL:
        if c.group != group:
            continue
        marks = [pytest.mark.slow] if c.slow else []
        reason = _skip_reason(c)
        if reason:
            marks.append(pytest.mark.skip(reason=reason))
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


def _one_line(text: str, name: str, fragment: str) -> None:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert "Traceback" not in text
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, text
    assert name in errors[0] and fragment.lower() in errors[0].lower(), errors[0]


def test_corpus_is_large_and_documented():
    assert len(cases.ALL) >= 30
    assert len({c.id for c in cases.ALL}) == len(cases.ALL)
    doc = (REPO / "docs" / "bad-inputs.md").read_text()
    assert doc == cases.table(), "docs/bad-inputs.md is stale: python tests/hardening/cases.py > docs/bad-inputs.md"


@pytest.mark.parametrize("case", _params("video"))
def test_video_case(case, tmp_path):
    path = case.make(tmp_path, {})
    d = decode_clips(path, SPEC)
    if case.expect == "ok":
        assert d.error is None, d.error
        assert d.clips.shape == (1, *SPEC.input_shape) and np.isfinite(d.clips).all()
    else:
        assert d.clips is None and d.error is not None
        assert d.error.startswith(f"{path}: "), d.error
        assert case.expect.lower() in d.error.lower(), d.error
        assert "\n" not in d.error


@pytest.fixture(scope="module")
def bundle(smoke_bundle):
    return smoke_bundle


def test_video_batch_through_the_cli(bundle, tmp_path):
    """All fast video cases in one picojepa-run batch, between two good videos: every input gets
    its JSON line in order, each bad one exactly one error line, exit 1, no traceback."""
    if not cases.FFMPEG:
        pytest.skip("the ffmpeg command-line tool is not installed")
    runnable = [c for c in cases.VIDEO_CASES if not c.slow and not _skip_reason(c)]
    inputs = [cases._good(tmp_path, "first.mp4")]
    for c in runnable:
        d = tmp_path / c.id
        d.mkdir()
        inputs.append(c.make(d, {}))
    inputs.append(cases._good(tmp_path, "last.mp4"))
    done = subprocess.run([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(bundle),
                           "--format", "json", "--no-progress", *map(str, inputs)],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    rows = [json.loads(x) for x in done.stdout.splitlines()]
    assert [r["file"] for r in rows] == [str(p) for p in inputs]
    expect = ["ok", *(c.expect for c in runnable), "ok"]
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == sum(e != "ok" for e in expect)
    for r, e in zip(rows, expect):
        if e == "ok":
            assert r["error"] is None and r["label"] is not None, r
        else:
            assert r["label"] is None and e.lower() in r["error"].lower(), r
            shown = (r["file"], r["file"].encode("utf-8", "backslashreplace").decode())  # stderr's escaping
            assert any(ln.startswith(f"error: {name}: ") for ln in errors for name in shown), r["file"]


@pytest.mark.parametrize("case", _params("bundle"))
def test_bundle_case(case, bundle, tmp_path):
    from picojepa.runtime.cli import main

    b = case.make(tmp_path, {"bundle": bundle})
    video = cases._good(tmp_path, "v.mp4") if cases.FFMPEG else tmp_path / "v.mp4"
    res = CliRunner().invoke(main, ["--bundle", str(b), "--no-progress", str(video)])
    assert res.exit_code == 3, res.output
    _one_line(res.output, str(b), case.expect)
    assert len(res.output) < len(str(b)) + 400, "a manifest's value quoted whole"


@pytest.mark.parametrize("case", _params("config"))
def test_config_case(case, tmp_path):
    from picojepa.train.cli import main

    cfg = case.make(tmp_path, {"configs": REPO / "configs"})
    res = CliRunner().invoke(main, ["pretrain", "--config", str(cfg), "--out", str(tmp_path / "run"),
                                    "--no-progress"])
    assert res.exit_code == 3, res.output
    _one_line(res.output, str(cfg), case.expect)


@pytest.mark.parametrize("case", _params("data"))
def test_data_case(case, smoke_data, tmp_path):
    from picojepa.train.cli import main

    root = case.make(tmp_path, {"data": smoke_data})
    res = CliRunner().invoke(main, ["classify", "--config", str(REPO / "configs" / "smoke.yaml"),
                                    "--data", str(root), "--out", str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code == 3, res.output
    _one_line(res.output, str(root), case.expect)
    assert not (tmp_path / "run" / "members").exists(), "nothing may be trained on a bad layout"


def _snapshot(folder) -> dict:
    """Every file under `folder` (links not followed) -> its bytes' hash or link target."""
    import hashlib
    from pathlib import Path

    out = {}
    for p in sorted(Path(folder).rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = ("link", os.readlink(p)) if p.is_symlink() else \
            ("dir",) if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _command_params():
    out = []
    for c in cases.COMMAND_CASES:
        marks = []
        module = {"live": "av", "paho-mqtt": "paho"}.get(c.needs)
        if module:
            marks.append(pytest.mark.skipif(__import__("importlib").util.find_spec(module) is None,
                                            reason=f"{module} is not installed"))
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


CLIS = {"train": "picojepa.train.cli", "export": "picojepa.export.cli", "run": "picojepa.runtime.cli",
        "data": "picojepa.train.data_cli", "bench": "picojepa.benchmarks.cli"}


@pytest.mark.parametrize("case", _command_params())
def test_command_case(case, smoke_run, bundle, smoke_data, tmp_path, monkeypatch):
    """Refused with one line and the documented exit code; nothing the user had is changed."""
    import importlib

    if not cases.FFMPEG:
        pytest.skip("the ffmpeg command-line tool is not installed")
    ctx = {"run": smoke_run[0], "bundle": bundle, "data": smoke_data, "configs": REPO / "configs",
           "video": cases._good(tmp_path, "clip.mp4")}
    made = case.make(tmp_path, ctx)
    before = {str(w): _snapshot(w) for w in made["watch"]}
    if made["cwd"]:
        monkeypatch.chdir(made["cwd"])
    cli, *args = made["argv"]
    res = CliRunner().invoke(importlib.import_module(CLIS[cli]).main, args)
    text = res.output
    assert res.exit_code == case.exit, text
    assert "Traceback" not in text and not isinstance(res.exception, (AssertionError, TypeError, KeyError)), text
    lines = [ln for ln in text.splitlines() if ln.lower().startswith("error: ")]
    assert len(lines) == 1 and case.expect.lower() in lines[0].lower(), text
    if case.hidden:
        assert case.hidden not in text
    assert {str(w): _snapshot(w) for w in made["watch"]} == before, "a file the user had changed"
    assert not (tmp_path / "new").exists(), "a refused command wrote its output"
