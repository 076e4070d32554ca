"""`picojepa-run VIDEO...` on files, folders or globs: one answer per video (or per window) as
text, JSON lines or CSV on stdout, accuracies with `--labels-from-folders`, then the summary line
on stderr and the exit code (0 all answered, 1 some failed, 3 none)."""
from __future__ import annotations

import csv
import dataclasses
import glob
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from picojepa.core.console import EXIT_FAIL, EXIT_PARTIAL, EXIT_USAGE, error, fail, progress, warn
from picojepa.core.decode import VIDEO_SUFFIXES, check_ffmpeg

from .open_ensemble import DEFAULT_BUNDLE, OpenOptions, open_ensemble

# the options that mean something for video files only (given for a live source: a usage error)
FILE_PARAMS = (
    click.Option(["--clips"], default=1, show_default=True, type=click.IntRange(1, 64),
                 help="Clips spread uniformly over each video; probabilities averaged."),
    click.Option(["--placement"], type=click.Choice(["exact", "keyframe"]),
                 help="Where each clip starts: 'keyframe' moves it to the nearest keyframe so that "
                      "decoding starts at the clip [default: the bundle's recipe, usually exact]."),
    click.Option(["--decode-device"], default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]),
                 help="Where torchcodec decodes: cuda uses the GPU's NVDEC decoder."),
    click.Option(["--labels-from-folders"], is_flag=True,
                 help="Treat each video's folder name as its true label; print accuracies at the end."),
    click.Option(["--prefetch/--no-prefetch"], default=None,
                 help="Decode the next video while the current one runs [default: on for more than "
                      "one video, with onnxruntime on all cores but one]."),
)
FILE_ONLY = tuple(p.name for p in FILE_PARAMS)


@dataclass(frozen=True)
class FileOptions:
    """How `picojepa-run` classifies files: the vote, the output format, clips or windows."""

    vote: str | None
    fmt: str = "text"
    clips: int = 1
    window: float | None = None
    stride: float | None = None
    labels_from_folders: bool = False
    prefetch: bool | None = None
    no_progress: bool = False


def expand(inputs: tuple[str, ...]) -> list[str]:
    """Files as given; folders -> their video files (recursive, sorted); globs expanded."""
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir() and p.suffix.lower() not in VIDEO_SUFFIXES:
            out += sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES)
        elif not os.path.lexists(item) and glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            out += matches if matches else [item]  # an unmatched pattern is reported as missing
        else:
            out.append(item)
    return out


def run_files(paths: list[str], opening: OpenOptions, o: FileOptions) -> None:
    """Files, folders or globs: one answer per video (or per window), then the summary line."""
    if not paths:
        fail("no input: give video files, folders or globs", EXIT_USAGE)
    if o.stride is not None and o.window is None:
        fail("--stride needs --window", EXIT_USAGE)
    if o.window is not None and o.clips != 1:
        fail("--clips and --window cannot be combined", EXIT_USAGE)
    if not opening.bundle.exists():
        fail(f"{opening.bundle}: no bundle there; run `make demo` (it writes {DEFAULT_BUNDLE}) or pass --bundle")
    check_ffmpeg()
    prefetch = len(paths) > 1 if o.prefetch is None else o.prefetch
    if prefetch and opening.threads == 0 and opening.provider != "cuda":  # a core for the decoding thread (measured)
        opening = dataclasses.replace(opening, threads=max(1, (os.cpu_count() or 2) - 1))
    ens = open_ensemble(opening)
    try:
        _classify(ens, paths, dataclasses.replace(o, prefetch=prefetch))
    finally:
        ens.close()


def _text(pred) -> str:
    if pred.error:
        return f"{pred.file}: ERROR {pred.error}"
    members = ", ".join(f"{m}={r.label} ({r.probability:.2f})" for m, r in pred.members.items())
    line = f"{pred.file}: {pred.label} ({pred.confidence:.2f}, {pred.vote} vote) | {members}"
    if pred.missing:
        line += f" | missing: {', '.join(pred.missing)}"
    if pred.windows:
        line += "\n" + "\n".join(f"  {w['start_s']:8.2f}-{w['end_s']:8.2f}s  {w['label']} "
                                 f"({w['confidence']:.2f})" for w in pred.windows)
    return line


def _check_folders(ens, paths: list[str]) -> None:
    """--labels-from-folders: every video's folder must be a class of the bundle."""
    unknown = sorted({Path(p).parent.name for p in paths} - set(ens.classes))
    if unknown:
        fail(f"--labels-from-folders: {', '.join(map(repr, unknown[:5]))} "
             f"{'is' if len(unknown) == 1 else 'are'} no class of {ens.bundle.root} (classes: "
             f"{', '.join(ens.classes)}): give folders named after the classes", EXIT_USAGE)


class _Score:
    """With --labels-from-folders: how often the vote and each member named the video's folder."""

    def __init__(self):
        self.hits: dict[str, int] = {}
        self.seen: dict[str, int] = {}  # videos each member answered (over the network, not always all)

    def add(self, pred) -> None:
        truth = Path(pred.file).parent.name
        for m, right in [("vote", pred.label == truth), *((m, r.label == truth) for m, r in pred.members.items())]:
            self.hits[m] = self.hits.get(m, 0) + right
            self.seen[m] = self.seen.get(m, 0) + 1

    def line(self, ok: int) -> str:
        return f"accuracy on {ok} videos (label = folder name): " + ", ".join(
            f"{k} {100 * v / self.seen[k]:.1f}%" + (f" (of {self.seen[k]})" if self.seen[k] != ok else "")
            for k, v in self.hits.items())


def _classify(ens, paths, o: FileOptions):
    vote_method = ens.check_vote(o.vote)
    if o.labels_from_folders:
        _check_folders(ens, paths)
    for note in ens.notes:
        warn(note)
    writer = csv.writer(sys.stdout) if o.fmt == "csv" else None
    if writer:
        writer.writerow(["file", "label", "index", "confidence", "vote",
                         *[f"{m}_label" for m in ens.bundle.members], "total_ms", "error"])
    preds = ens.predict_many(paths, vote_method, o.clips, o.window, o.stride, o.prefetch)
    ok = failed = 0
    score = _Score()
    for pred in progress(preds, total=len(paths), desc="videos", unit="video",
                         disable=o.no_progress or len(paths) <= 3):
        if pred.error:
            failed += 1
            error(pred.error)
        else:
            ok += 1
        if o.fmt == "json":
            click.echo(json.dumps(pred.to_dict()))
        elif writer:
            writer.writerow([pred.file, pred.label, pred.index, pred.confidence, pred.vote,
                             *[pred.members[m].label if m in pred.members else "" for m in ens.bundle.members],
                             pred.timings_ms.get("total"), pred.error or ""])
            sys.stdout.flush()
        elif not pred.error:
            click.echo(_text(pred))
        if o.labels_from_folders and not pred.error:
            score.add(pred)
    if o.labels_from_folders and ok:
        click.echo(score.line(ok), err=True)
    click.echo(f"{ok} of {len(paths)} videos classified on {ens.provider.upper()}"
               + (f", {failed} failed" if failed else ""), err=True)
    if failed:
        sys.exit(EXIT_PARTIAL if ok else EXIT_FAIL)
