"""tools/arm_check.py (`make arm-check`): the parts that run without root or emulation. The check
itself takes minutes of emulation and is run by hand, never by `make test`."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]


def arm_check():
    spec = importlib.util.spec_from_file_location("arm_check", REPO / "tools" / "arm_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_without_root_it_fails_with_one_line_saying_so(monkeypatch, tmp_path):
    mod = arm_check()
    monkeypatch.setattr(mod.os, "geteuid", lambda: 1000)
    r = CliRunner().invoke(mod.main, ["--cache", str(tmp_path)])
    assert r.exit_code == 1, r.output
    assert r.output.strip().splitlines() == ["arm-check: error: needs root (debootstrap, chroot and mounts): "
                                             "run 'sudo make arm-check'"]
    assert not any(tmp_path.iterdir())  # nothing built


def test_a_changed_vote_or_a_logit_past_the_tolerance_on_the_same_clips_fails_the_comparison():
    mod = arm_check()
    x86 = {"videos": [{"file": "a.mp4", "label": "spin", "logits": [[1.0, 2.0]]},
                      {"file": "b.mp4", "label": "spin", "logits": [[1.0, 2.0]]},
                      {"file": "c.mp4", "label": "spin", "logits": [[1.0, 2.0]]}]}
    arm = {"videos": [{"file": "a.mp4", "label": "spin", "logits_same_clips": [[1.0, 2.0005]]},
                      {"file": "b.mp4", "label": "slide_left", "logits_same_clips": [[1.0, 2.0]]},
                      {"file": "c.mp4", "label": "spin", "logits_same_clips": [[1.0, 2.01]]}]}
    same, worst, bad = mod.compare(x86, arm, atol=1e-3)
    assert same == 2 and abs(worst - 0.01) < 1e-9
    assert [b.split(":")[0] for b in bad] == ["b.mp4", "c.mp4"]


def test_the_videos_are_taken_in_turn_from_each_class():
    mod = arm_check()
    videos = [Path(f"{c}/{i}.mp4") for c in ("spin", "slide_left") for i in range(3)]
    assert [str(v) for v in mod.spread(videos, 3)] == ["spin/0.mp4", "slide_left/0.mp4", "spin/1.mp4"]
