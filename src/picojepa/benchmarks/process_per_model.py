"""The original pipeline's way of inferring, kept only as a benchmark baseline: one fresh Python
process per video and per model, each importing torch, loading its PyTorch checkpoint, decoding
the video and printing its probabilities; the votes are parsed from those outputs afterwards.

`python -m picojepa.benchmarks.process_per_model CHECKPOINT VIDEO` prints one JSON list of probabilities.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from picojepa.core.clips import center_indices
from picojepa.core.decode import load_clip


def _infer(checkpoint: str, video: str) -> list[float]:
    import torch  # heavy: only the worker process pays for it (the baseline's cost)

    from picojepa.export.members import load_member  # loads torch: as above

    member = load_member(Path(checkpoint), Path(checkpoint).stem)
    clip = load_clip(video, member.clip, lambda n, keys: center_indices(n, member.clip, keys))
    with torch.no_grad():
        logits = member.model(torch.from_numpy(clip)[None])
    return torch.softmax(logits, -1)[0].tolist()


def run_video(checkpoints: list[Path], video: str, threads: int) -> tuple[np.ndarray, float]:
    """Probabilities (M, C) and the wall time in ms of the seed-style inference of one video."""
    t0 = time.perf_counter()
    outs = []
    for ckpt in checkpoints:
        cmd = [sys.executable, "-m", "picojepa.benchmarks.process_per_model", str(ckpt), str(video)]
        env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"{video}: seed-style worker failed: {done.stderr.strip()[-300:]}")
        outs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return np.asarray(outs, np.float32), (time.perf_counter() - t0) * 1e3


if __name__ == "__main__":
    print(json.dumps(_infer(sys.argv[1], sys.argv[2])))
