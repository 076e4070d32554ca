"""Decoder fuzzing, bounded: mutated real videos through the runtime's decode path, one child
process each; no child may die of a signal or fail in any way other than a clean DecodeError."""
import re
import subprocess
import sys

import pytest

from conftest import REAL, REPO, needs_real


@pytest.mark.slow
@needs_real
def test_mutated_real_videos_never_crash_the_decoder(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "tools" / "fuzz_decode.py"), str(REAL / "bench"),
                        "--seconds", "60", "--keep", str(tmp_path / "fuzz")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    counts = dict(re.findall(r"'(\w+)': (\d+)", r.stdout))
    assert int(counts["ok"]) + int(counts["error"]) >= 10, r.stdout
    assert counts["signal"] == "0" and counts["other"] == "0"
