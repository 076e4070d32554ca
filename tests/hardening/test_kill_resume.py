"""Crash safety: SIGKILL training at random moments, resume, and get the uninterrupted result."""
import re
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_sigkill_then_resume_matches_the_uninterrupted_run(tmp_path):
    # 20 trials of one kill each, on a 20-epoch smoke recipe: about 6 minutes on 2 cores
    r = subprocess.run([sys.executable, str(REPO / "tools" / "kill_resume.py"), "--trials", "20",
                        "--max-kills", "1", "--set", "pretrain.epochs=20",
                        "--out", str(tmp_path / "kill")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "20/20 trials resumed to the uninterrupted result" in r.stdout
    killed = int(re.search(r"(\d+) trials killed at least once", r.stdout).group(1))
    assert killed >= 15, r.stdout  # a kill time past the end of a run is not a trial
