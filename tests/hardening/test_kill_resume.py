"""Crash safety: SIGKILL training at random moments, resume, and get the uninterrupted result."""
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_sigkill_then_resume_matches_the_uninterrupted_run(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "tools" / "kill_resume.py"), "--trials", "20",
                        "--out", str(tmp_path / "kill")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "20/20 trials resumed to the uninterrupted result" in r.stdout
