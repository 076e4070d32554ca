"""Mutate real video bytes and push them through the runtime's decode path, each in a child
process, for a bounded time: the child must never die of a signal (a crash in FFmpeg or
torchcodec). Inputs that crash are kept under --keep for the regression corpus.

    python tools/fuzz_decode.py ../shared/data/real/bench --seconds 120 --keep runs/fuzz
"""
from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import sys
from picojepa.core.clips import ClipSpec
from picojepa.runtime.decoding import decode_clips
d = decode_clips(sys.argv[1], ClipSpec(frames=8, size=64, frame_step=2), clips=2)
print("ok" if d.error is None else "error")
"""


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op, at = rng.random(), rng.randrange(len(b))
        if op < 0.5:  # flip a few bytes
            for i in range(at, min(len(b), at + rng.randint(1, 16))):
                b[i] = rng.randrange(256)
        elif op < 0.75:  # cut
            del b[at:at + rng.randint(1, 4096)]
        else:  # duplicate a chunk
            b[at:at] = b[at:at + rng.randint(1, 4096)]
    return bytes(b)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("sources", nargs="+", type=Path)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=Path("runs/fuzz"))
    a = ap.parse_args()
    files = [f for s in a.sources for f in (sorted(s.iterdir()) if s.is_dir() else [s])
             if f.stat().st_size < 5_000_000]
    rng = random.Random(a.seed)
    a.keep.mkdir(parents=True, exist_ok=True)
    counts = {"ok": 0, "error": 0, "timeout": 0, "signal": 0, "other": 0}
    t_end, n = time.monotonic() + a.seconds, 0
    while time.monotonic() < t_end:
        src = rng.choice(files)
        case = a.keep / f"case{src.suffix}"
        case.write_bytes(mutate(src.read_bytes(), rng))
        n += 1
        try:
            done = subprocess.run([sys.executable, "-c", CHILD, str(case)], capture_output=True,
                                  text=True, timeout=60)
        except subprocess.TimeoutExpired:
            counts["timeout"] += 1
            case.rename(a.keep / f"timeout-{n}-{src.name}")
            continue
        if done.returncode < 0:
            counts["signal"] += 1
            case.rename(a.keep / f"signal{-done.returncode}-{n}-{src.name}")
        elif done.returncode == 0 and done.stdout.strip() in ("ok", "error"):
            counts[done.stdout.strip()] += 1
        else:
            counts["other"] += 1
            (a.keep / f"other-{n}.txt").write_text(done.stderr[-2000:])
            case.rename(a.keep / f"other-{n}-{src.name}")
    print(f"{n} mutated inputs from {len(files)} files in {a.seconds:.0f} s: {counts}")
    return 1 if counts["signal"] or counts["other"] else 0


if __name__ == "__main__":
    sys.exit(main())
