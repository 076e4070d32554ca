"""`picojepa-data`: make a data root in the standard layout (built-in, your own videos, Kinetics)."""
from __future__ import annotations

from pathlib import Path

import click

from picojepa.core.console import EXIT_PARTIAL, examples, one_line_errors, progress, setup_logging, warn
from picojepa.core.decode import check_ffmpeg
from picojepa.core.errors import DataLayoutError
from picojepa.core.options import Finite
from picojepa.core.shown import shown

from .config import MAX_SEED
from .index import IndexOptions, index
from .kinetics import download, prepare
from .synth import MARKER, generate


def _bar(desc: str):
    return lambda items: progress(items, desc=desc, unit="video")


@click.group(epilog=examples(
    "picojepa-data index my_videos/ --out data/mine --unlabelled /footage/cam1",
    "picojepa-data synth data/synth"))
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
def main(verbose: bool) -> None:
    """Prepare video data in the layout every picojepa stage reads."""
    setup_logging(verbose)


@main.command(epilog=examples("picojepa-data synth data/synth --classes 4 --videos-per-class 60"))
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.option("--classes", default=4, show_default=True, type=click.IntRange(2, 8))
@click.option("--videos-per-class", default=60, show_default=True, type=click.IntRange(8, 100_000))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, MAX_SEED))
@click.option("--unlabelled-per-class", default=0, show_default=True, type=click.IntRange(0, 100_000),
              help="More videos per class, listed for pre-training only (train/unlabelled/).")
@one_line_errors
def synth(root: Path, classes: int, videos_per_class: int, seed: int,
          unlabelled_per_class: int) -> None:
    """Generate the built-in motion data set (real H.264 files) under ROOT."""
    check_ffmpeg()
    if root.is_symlink() and not root.exists():
        raise DataLayoutError(f"{root}: a dangling symbolic link; give a new folder")
    if root.is_dir() and any(p.name != MARKER for p in root.iterdir()) and not (root / MARKER).is_file():
        raise DataLayoutError(f"{root}: not empty; synth writes a new data root (choose a new folder, "
                              "or remove this one first)")
    names = generate(root, classes, videos_per_class, seed, progress=_bar("synth"),
                     unlabelled_per_class=unlabelled_per_class)
    extra = f" + {classes * unlabelled_per_class} unlabelled" if unlabelled_per_class else ""
    click.echo(f"wrote {len(names)} classes x {videos_per_class} videos{extra} to {root} "
               f"({', '.join(names)})", err=True)


@main.command(name="index", epilog=examples(
    "picojepa-data index my_videos/ --out data/mine --unlabelled /footage/cam1",
    "picojepa-data index clips/ --out data/clips --held-out-prefix test__"))
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Layout root to write [default: data/<name of SOURCE>].")
@click.option("--holdout", default=0.2, show_default=True, type=Finite(0.05, 0.9),
              help="Fraction of each class held out for evaluation (ROOT/infer).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, MAX_SEED))
@click.option("--copy", is_flag=True, help="Copy files instead of linking them.")
@click.option("--unlabelled", multiple=True, type=click.Path(path_type=Path),
              help="A folder of unlabelled footage (searched recursively), for pre-training only; "
                   "repeat for more folders.")
@click.option("--held-out-prefix", "prefixes", multiple=True,
              help="Keep the data set's own split: files whose names start with this (e.g. test__; "
                   "repeatable) are held out, all others train; --holdout is then not used.")
@click.option("--with-builtin", "builtin", default=0, show_default=True, type=click.IntRange(0, 100_000),
              help="Also pre-train on this many built-in synthetic videos per motion class (4 classes).")
@click.option("--piece-s", default=10.0, show_default=True, type=Finite(min=0.5),
              help="Unlabelled recordings count as one pre-training sample per this many seconds.")
@click.option("--force", is_flag=True, help="Replace a data root this command wrote before (nothing of "
              "the old one stays); any other folder is never replaced.")
@one_line_errors
def index_cmd(source: Path, out: Path | None, holdout: float, seed: int, copy: bool,
              unlabelled: tuple[Path, ...], piece_s: float, prefixes: tuple[str, ...], builtin: int,
              force: bool) -> None:
    """Index your own videos: SOURCE/<class>/* (mp4, avi, mkv, webm...) -> the standard layout.

    Every file is probed; unreadable ones are named on stderr and left out (exit code 1).
    """
    check_ffmpeg()
    out = out or Path("data") / source.resolve().name
    opts = IndexOptions(holdout, seed, copy, tuple(unlabelled), piece_s, tuple(prefixes), builtin, force)
    res = index(source, out, opts, progress=_bar("probe"))
    for path, reason in res.bad:
        warn(f"{path}: {reason} (left out)")
    for first, copy in res.duplicates:
        where = (f"twice in class {shown(first.parent.name)}:" if first.parent == copy.parent else
                 f"under classes {shown(first.parent.name)} and {shown(copy.parent.name)}: a labelling error, and")
        warn(f"{first} and {copy}: the same video (byte-identical) {where} it may be both trained on and held "
             "out (both indexed; remove one)")
    click.echo(f"indexed {res.train} training and {res.infer} held-out videos of "
               f"{len(res.classes)} classes into {out}"
               + (f", and {res.unlabelled} unlabelled recordings and {builtin * 4} built-in videos as "
                  f"{res.pieces} pre-training samples" if unlabelled or builtin else "")
               + (f"; {len(res.bad)} unreadable file(s) left out" if res.bad else ""), err=True)
    if res.bad:
        raise SystemExit(EXIT_PARTIAL)


@main.command(epilog=examples("picojepa-data kinetics data/kinetics --classes 10"))
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.option("--classes", default=10, show_default=True, type=click.IntRange(2, 700))
@click.option("--raw", type=click.Path(file_okay=False, path_type=Path),
              help="Where archives are downloaded [default: ROOT/raw].")
@click.option("--skip-download", is_flag=True, help="Only prepare archives already in --raw.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, MAX_SEED))
@one_line_errors
def kinetics(root: Path, classes: int, raw: Path | None, skip_download: bool, seed: int) -> None:
    """Download Kinetics-700-2020 (resumable) and prepare its first N classes under ROOT."""
    raw = raw or root / "raw"
    if not skip_download:
        download(raw, progress=_bar("download"))
    names = prepare(raw, root, classes, seed)
    click.echo(f"prepared {len(names)} Kinetics classes under {root}", err=True)
