"""Follow a run directory through `picojepa-train all`: which modules receive it, in what order.

Runs the smoke recipe into OUT with a tracer on; every call of a picojepa function with an
argument that is the run directory (a path or string naming it, or a `RunDir` of it) is one step,
its module the room. Prints the steps, the rooms, and how often the walk returns to a room it had
left, with and without `core/rundir.py` (the one module that names a run's files, which every
step asks by design). Used for issue notes on the house's layout:

    .venv/bin/python tools/run_dir_walk.py /tmp/walk-run
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from picojepa.train.cli import main as train_main

OWNER = "picojepa.core.rundir"


def _names_run(value, run: Path) -> bool:
    if isinstance(value, (str, os.PathLike)):
        return Path(value).resolve() == run
    root = getattr(value, "root", None)
    return type(value).__name__ == "RunDir" and root is not None and Path(root).resolve() == run


def walk(run: Path) -> list[tuple[str, str]]:
    """(module, function) of each call that received the run directory, in order."""
    steps = []

    def tracer(frame, event, _arg):
        if event == "call" and frame.f_globals.get("__name__", "").startswith("picojepa."):
            code = frame.f_code
            names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
            if any(_names_run(frame.f_locals.get(n), run) for n in names):
                steps.append((frame.f_globals["__name__"], code.co_name))

    sys.settrace(tracer)
    try:
        train_main(["all", "--config", "configs/smoke.yaml", "--out", str(run), "--no-progress", "--force"],
                   standalone_mode=False)
    finally:
        sys.settrace(None)
    return steps


def returns(modules: list[str]) -> tuple[list[str], int]:
    """The rooms in visiting order (repeats merged) and how many visits return to a room left before."""
    visits = [m for i, m in enumerate(modules) if i == 0 or m != modules[i - 1]]
    return visits, sum(m in visits[:i] for i, m in enumerate(visits))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: run_dir_walk.py OUT")
    steps = walk(Path(sys.argv[1]).resolve())
    for label, mods in (("every module", [m for m, _ in steps]),
                        (f"without {OWNER}", [m for m, _ in steps if m != OWNER])):
        visits, back = returns(mods)
        print(f"{label}: {len(mods)} calls in {len(set(mods))} modules, {len(visits)} visits, {back} returns")
        if label != "every module":
            print("  " + " -> ".join(v.removeprefix("picojepa.") for v in visits))
