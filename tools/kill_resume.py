"""Crash safety of training: SIGKILL `picojepa-train all` at random moments, check that every
checkpoint and JSON file left behind is readable, resume with `--resume`, and check that the
finished run equals an uninterrupted one (same accuracies, same weights).

    python tools/kill_resume.py --trials 20 --out runs/kill-resume

The reference run and every trial share one data root (the recipe's built-in data, generated once).
Each trial kills 1 to `--max-kills` times (the resumed runs too) before the last resume runs to
completion. Prints one line per trial and a summary; exits 1 on any failure.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from picojepa.core.rundir import RunDir
from picojepa.train import checkpoint
from picojepa.train.recipe_file import load_recipe
from picojepa.train.pipeline import ensure_data

REPO = Path(__file__).resolve().parent.parent


def train_cmd(config: Path, data: Path, out: Path, resume: bool, overrides: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "picojepa.train.cli", "all", "--config", str(config),
           "--data", str(data), "--out", str(out), "--no-progress"]
    cmd += [a for kv in overrides for a in ("--set", kv)]
    return cmd + ["--resume"] if resume else cmd


def run_to_end(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return time.perf_counter() - t0


def run_and_kill(cmd: list[str], after_s: float) -> bool:
    """Start `cmd`, SIGKILL it after `after_s` seconds; False when it finished before that."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=after_s)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def stage_of(run: Path, since: float) -> str:
    """Where a killed attempt had got to: the last artefact it wrote (files older than `since`,
    the attempt's start, were left by an earlier attempt)."""
    r = RunDir(run)
    written = [(p.stat().st_mtime, p) for p in [r.pretrain, r.features, *sorted(r.members.glob("*.pt")), r.report_json]
               if p.exists() and p.stat().st_mtime >= since]
    if not written:
        return "before its first checkpoint"
    last = max(written)[1]
    if last == r.pretrain:
        return f"pretrain, after epoch {checkpoint.load(last)['epoch'] + 1}"
    return {r.features: "classify (features cached)", r.report_json: "report"}.get(last, "classify (members written)")


def unreadable(run: Path) -> list[str]:
    """Every checkpoint and JSON file in the run that does not load."""
    bad = []
    for p in sorted(run.rglob("*")):
        if p.name.startswith("."):  # temporary files of an interrupted atomic write
            continue
        try:
            if p.suffix == ".pt":
                checkpoint.load(p)
            elif p.suffix == ".json":
                json.loads(p.read_text())
        except Exception as exc:  # noqa: BLE001 - any failure to load is the finding
            bad.append(f"{p}: {exc}")
    return bad


def fingerprint(run: Path) -> dict:
    """What must equal the uninterrupted run: accuracies, per-class tables, and weight hashes."""
    r = RunDir(run)
    report = json.loads(r.report_json.read_text())
    hashes = {"pretrain": checkpoint.state_hash(checkpoint.load(r.pretrain)["model"])}
    for p in sorted(r.members.glob("*.pt")):
        m = checkpoint.load(p)
        if m["kind"] == "stacker":  # its weights are plain lists (they travel in the manifest)
            state = {k: torch.tensor(m[k], dtype=torch.float64) for k in ("weight", "bias")}
        else:
            state = {**m.get("encoder", {}), **m["head"]}
        hashes[p.stem] = checkpoint.state_hash(state)
    return {"accuracy": report["accuracy"], "per_class": report.get("per_class"),
            "weights": hashes}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--max-kills", type=int, default=2, help="kills per trial, 1..N at random")
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "smoke.yaml")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "kill-resume")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE",
                    default=None, help="recipe overrides [default: pretrain.epochs=50, so that most "
                    "kills land inside pre-training]")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    overrides = args.overrides if args.overrides is not None else ["pretrain.epochs=50"]
    if args.out.exists():
        shutil.rmtree(args.out)
    data, ref = args.out / "data", args.out / "reference"
    ensure_data(load_recipe(args.config), data, show_progress=False)
    startup = run_to_end([sys.executable, "-c", "import torch, picojepa.train.cli"])
    t_ref = run_to_end(train_cmd(args.config, data, ref, False, overrides))
    expected = fingerprint(ref)
    print(f"reference: {t_ref:.1f} s uninterrupted (start-up {startup:.1f} s); accuracy "
          f"{expected['accuracy']}", flush=True)

    failures, stages, killed = 0, {}, 0
    for trial in range(1, args.trials + 1):
        run = args.out / f"trial-{trial:02d}"
        kills, notes, problems = rng.randint(1, args.max_kills), [], []
        for k in range(kills):
            after, started = rng.uniform(startup, t_ref), time.time() - 1
            if not run_and_kill(train_cmd(args.config, data, run, k > 0, overrides), after):
                notes.append(f"finished before the kill at {after:.1f} s")
                break
            where = stage_of(run, started)
            stages[where] = stages.get(where, 0) + 1
            notes.append(f"killed at {after:.1f} s ({where})")
            problems += unreadable(run)
        try:
            run_to_end(train_cmd(args.config, data, run, True, overrides))
            got = fingerprint(run)
            if got != expected:
                diff = [k for k in expected if got[k] != expected[k]]
                problems.append(f"differs from the uninterrupted run in {diff}: {got['accuracy']}")
        except Exception as exc:  # noqa: BLE001 - reported, then the next trial
            problems.append(str(exc))
        failures += bool(problems)
        killed += any(n.startswith("killed") for n in notes)
        print(f"trial {trial:2d}: {'FAIL' if problems else 'ok'}; " + "; ".join(notes + problems),
              flush=True)
        if not problems:
            shutil.rmtree(run)
    print(f"{args.trials - failures}/{args.trials} trials resumed to the uninterrupted result; "
          f"{killed} trials killed at least once; {sum(stages.values())} kills by stage: "
          f"{dict(sorted(stages.items()))}")
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
