"""`picojepa-train`: pre-train, classify, evaluate, or all three, from a recipe."""
from __future__ import annotations

import json
from pathlib import Path

import click

from picojepa.core.console import EXIT_PARTIAL, examples, one_line_errors, setup_logging, warn
from picojepa.core.decode import check_ffmpeg
from picojepa.core.roster import GENERAL
from picojepa.core.rundir import MEMBERS_DIR, PRETRAIN, RunDir, RunDirError, claim
from picojepa.core.shown import cut, shown
from picojepa.core.textio import parse_yaml

from . import checkpoint
from .config import ConfigError
from .layout import check_layout, read_classes
from .recipe_file import load_recipe, nest

_RESUME = click.option("--resume", is_flag=True, help="Continue the run in OUT from its last checkpoint "
                       "(refused when its recipe differs).")
_INIT = click.option("--init", metavar="foundation|scratch|PATH",
                     help="Where pre-training starts: the foundation encoder shipped in the package, "
                          "random weights, or a pre-training checkpoint or weights file "
                          "[default: the recipe's pretrain.init].")
_FORCE = click.option("--force", is_flag=True, help="Start the run in OUT over: its checkpoints "
                      "and reports are deleted first (other files there are kept).")


def _common(fn):
    fn = click.option("--config", "config", required=True, type=click.Path(path_type=Path),
                      help="Recipe YAML, e.g. configs/demo.yaml.")(fn)
    fn = click.option("--data", type=click.Path(path_type=Path),
                      help="Data root in the standard layout [default: the recipe's data.root].")(fn)
    fn = click.option("--out", type=click.Path(path_type=Path),
                      help="Run directory [default: runs/<recipe name>].")(fn)
    fn = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                      help="Override a recipe value, e.g. --set pretrain.epochs=2 (YAML value).")(fn)
    fn = click.option("--no-progress", is_flag=True, help="Hide progress bars.")(fn)
    fn = click.option("-v", "--verbose", is_flag=True, help="Log details to stderr.")(fn)
    return fn


def parse_sets(items) -> dict:
    """`--set KEY=VALUE` options -> {dotted key: YAML value}, each value read by the YAML reader
    of recipes (so bounded the same way)."""
    flat = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{shown(item)}: expected KEY=VALUE", param_hint="--set")
        try:
            flat[key.strip()] = parse_yaml(value, shown(item), ConfigError)
        except ConfigError as exc:
            raise click.BadParameter(f"{exc}; a value is YAML: quote a string, {cut(key)}='\"...\"'",
                                     param_hint="--set") from None
    return flat


def _setup(config, data, out, overrides, verbose, layout: str | None = "labelled", init: str | None = None):
    """Recipe, data root and run dir of a command. `layout` checks the data root's CSVs before any
    work: 'labelled' (every CSV), 'unlabelled' (train.csv only), None (the caller checks); `init`
    (--init) overrides the recipe's pretrain.init."""
    setup_logging(verbose)
    check_ffmpeg()
    sets = nest(parse_sets(overrides))
    if init is not None:
        sets.setdefault("pretrain", {})["init"] = init
    recipe = load_recipe(config, sets)
    data = Path(data or recipe.data.root)
    if layout is not None:
        check_layout(data, labelled=layout == "labelled")
    return recipe, data, Path(out or Path("runs") / recipe.name)


@click.group(epilog=examples(
    "picojepa-train all --config configs/demo.yaml --out runs/demo --resume",
    "picojepa-train all --config configs/real.yaml --data data/mine --out runs/mine --seeds 3"))
def main() -> None:
    """Train pico-JEPA: self-supervised pre-training, then linear classifiers and their evaluation."""


@main.result_callback()
def _leave_process_group(*_args, **_kwargs) -> None:
    """Leave the process group pre-training joined under torchrun (nothing to do otherwise)."""
    from .distributed import shutdown  # heavy (torch): only the subcommand that runs loads it

    shutdown()


@main.command(name="pretrain", epilog=examples(
    "picojepa-train pretrain --config configs/demo.yaml --out runs/demo --resume"))
@_common
@_RESUME
@_FORCE
@_INIT
@one_line_errors
def pretrain_cmd(config, data, out, overrides, no_progress, verbose, resume, force, init):
    """JEPA pre-training of the encoder on ROOT/train/train.csv (or on generated clips)."""
    from .pretrain import pretrain  # heavy (torch): only the subcommand that runs loads it

    recipe, data, out = _setup(config, data, out, overrides, verbose, layout=None, init=init)
    if not recipe.pretrain.generated:  # generated clips need no data root
        check_layout(data, labelled=False)
    claim(out, resume, force)
    res = pretrain(recipe, data, out, resume=resume, show_progress=not no_progress)
    click.echo(f"pre-trained {res.epochs} epochs, loss {res.final_loss:.4f}: {res.path}", err=True)
    _skipped(res.skipped, None)


@main.command(name="foundation", epilog=examples(
    "picojepa-train pretrain --config configs/foundation.yaml --out runs/foundation --resume",
    "picojepa-train foundation runs/foundation"))
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--to", "to_dir", type=click.Path(path_type=Path),
              help="Folder for foundation.pt and foundation.json [default: the package's own, which "
                   "`--init foundation` reads].")
@one_line_errors
def foundation_cmd(run, to_dir):
    """Write RUN's encoder as the foundation weights, with the sha256 that loading checks.

    RUN is a pre-training of configs/foundation.yaml; `make foundation` runs both steps."""
    from .foundation import FOUNDATION_DIR, write_foundation  # heavy (torch): only this subcommand

    out = write_foundation(RunDir(run).pretrain, to_dir or FOUNDATION_DIR,
                           made_by=f"picojepa-train foundation {run}")
    click.echo(f"foundation weights: {out} ({out.stat().st_size / 2**20:.2f} MiB)", err=True)


@main.command(name="classify", epilog=examples(
    "picojepa-train classify --config configs/demo.yaml --out runs/demo --force"))
@_common
@click.option("--force", is_flag=True, help="Train the classifiers again where OUT has them already.")
@one_line_errors
def classify_cmd(config, data, out, overrides, no_progress, verbose, force):
    """Train the general and the four partial linear classifiers on the frozen encoder."""
    from .classify import classify  # heavy (torch): only the subcommand that runs loads it

    recipe, data, out = _setup(config, data, out, overrides, verbose)
    if not (out / PRETRAIN).is_file():
        raise RunDirError(f"{out}: no {PRETRAIN}; pre-train first (`picojepa-train pretrain` or `all`)")
    if (out / MEMBERS_DIR).is_dir() and not force:
        raise RunDirError(f"{out}: has trained classifiers already ({MEMBERS_DIR}/); --force trains "
                          "them again")
    checkpoint.check_resume(checkpoint.load(out / PRETRAIN, kind="pretrain"), recipe.to_dict(),
                            out / PRETRAIN, doing="its classifiers would not fit it")
    res = classify(recipe, data, out, show_progress=not no_progress)
    click.echo("classifiers: " + ", ".join(f"{m} (val {v:.2f})" if v is not None else m
                                           for m, v in res.val_accuracy.items()), err=True)


@main.command(name="evaluate", epilog=examples(
    "picojepa-train evaluate --config configs/demo.yaml --out runs/demo"))
@_common
@one_line_errors
def evaluate_cmd(config, data, out, overrides, no_progress, verbose):
    """Evaluate every classifier and the votes on ROOT/infer; write the report."""
    from .pipeline import write_report  # heavy (torch): only the subcommand that runs loads it

    recipe, data, out = _setup(config, data, out, overrides, verbose)
    _check_trained(recipe, data, out)
    report = write_report(recipe, data, out, show_progress=not no_progress)
    click.echo(json.dumps(report.accuracy, indent=1))


def _check_trained(recipe, data: Path, out: Path) -> None:
    """`evaluate` needs a run trained with this recipe on this data root's classes."""
    general = RunDir(out).member(GENERAL)
    if not general.is_file():
        raise RunDirError(f"{out}: no trained classifiers ({general} missing); run `classify` or `all` first")
    state = checkpoint.load(general, kind="member")
    checkpoint.check_resume(state, recipe.to_dict(), general, checkpoint.EVALUATE_FREE,
                            doing="evaluating it under this one would misread it")
    classes = read_classes(data)
    if list(state["classes"]) != classes:
        raise RunDirError(f"{data}: classes {classes} are not the run's {list(state['classes'])}")


@main.command(name="all", epilog=examples(
    "picojepa-train all --config configs/demo.yaml --out runs/demo --resume",
    "picojepa-train all --config configs/real.yaml --data data/mine --out runs/mine-cv --folds 5"))
@_common
@_RESUME
@_FORCE
@_INIT
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(1, 100),
              help="Run the recipe with this many seeds (seed, seed+1, ...) into OUT/seed-<s>/; "
                   "OUT/report.* then give every accuracy as mean ± sd.")
@click.option("--folds", type=click.IntRange(2, 20),
              help="Stratified K-fold cross-validation over every labelled video (each held out once) "
                   "into OUT/fold-<i>/; OUT/report.* then give every accuracy as mean ± sd over folds.")
@one_line_errors
def all_cmd(config, data, out, overrides, no_progress, verbose, resume, force, init, seeds, folds):
    """Pre-train, classify and evaluate (generating the built-in data when DATA is absent)."""
    from .pipeline import run_all  # heavy (torch): only the subcommand that runs loads it
    from .seeds import run_seeds  # heavy (torch): only the subcommand that runs loads it

    recipe, data, out = _setup(config, data, out, overrides, verbose, layout=None, init=init)  # may generate it
    claim(out, resume, force)
    if folds:
        if seeds > 1:
            raise click.UsageError("--folds and --seeds: give one of them")
        from .folds import run_folds  # heavy (torch): only the subcommand that runs loads it
        from .pipeline import ensure_data  # heavy (torch): only the subcommand that runs loads it

        ensure_data(recipe, data, not no_progress)
        report = run_folds(recipe, data, out, folds, resume, not no_progress)
        _print_spread(report, out)
        return
    if seeds > 1:
        report = run_seeds(recipe, data, out, seeds, resume=resume, show_progress=not no_progress)
        _print_spread(report, out)
        return
    report = run_all(recipe, data, out, resume=resume, show_progress=not no_progress)
    if report is not None:  # None: a distributed run's other ranks
        click.echo(json.dumps(report.accuracy, indent=1))
        click.echo(f"report: {RunDir(out).report_md}", err=True)
        _skipped(report.all_skipped(), out)


def _print_spread(report: dict | None, out: Path) -> None:
    if report is None:  # a distributed run's other ranks
        return
    click.echo(json.dumps({k: f"{v:.2f} ± {report['accuracy_sd'][k]:.2f}"
                           for k, v in report["accuracy_mean"].items()}, indent=1))
    click.echo(f"report: {RunDir(out).report_md}", err=True)
    _skipped(_skipped_of(report), out)


def _skipped_of(report: dict) -> list[str]:
    return sorted(set(report.get("skipped_videos", [])) | set(report["pretrain"]["skipped_videos"]))


def _skipped(videos: list[str], run: Path | None, shown: int = 5) -> None:
    """Videos training could not decode: a warning each (the first few where `run`'s report
    lists them all), then exit 1 (partial: the run is complete without them)."""
    if not videos:
        return
    for v in videos[:shown] if run else videos:
        warn(f"{v} (skipped)")
    listed = f": all listed in {RunDir(run).report_md}" if run else ""
    warn(f"{len(videos)} training video(s) could not be decoded and were left out{listed}")
    raise SystemExit(EXIT_PARTIAL)


@main.command(name="ensemble", epilog=examples(
    "picojepa-train ensemble --config configs/hetero.yaml --seeds 3",
    "picojepa-train ensemble --config configs/hetero-real.yaml --data data/mine"))
@click.option("--config", "config", required=True, type=click.Path(path_type=Path),
              help="Ensemble recipe YAML: a base recipe and its members (configs/hetero.yaml).")
@click.option("--data", type=click.Path(path_type=Path),
              help="Data root in the standard layout [default: the base recipe's data.root].")
@click.option("--out", type=click.Path(path_type=Path), help="Output directory [default: runs/<name>].")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a value of every member's recipe, e.g. --set pretrain.epochs=2.")
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(1, 100),
              help="Train the whole ensemble with this many seeds into OUT/seed-<k>/; every figure "
                   "then as mean ± sd.")
@click.option("--resume", is_flag=True, help="Keep member runs already finished with the same recipe.")
@_FORCE
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("-v", "--verbose", is_flag=True, help="Log details to stderr.")
@one_line_errors
def ensemble_cmd(config, data, out, overrides, seeds, resume, force, no_progress, verbose):
    """Train a heterogeneous ensemble: members with different encoders, each its own run.

    Their votes are compared with the general model and the homogeneous vote on the same
    held-out videos."""
    from .hetero import load_hetero, member_recipes, train_ensemble_seeds  # heavy (torch): only this subcommand

    setup_logging(verbose)
    check_ffmpeg()
    cfg, sets = load_hetero(config), parse_sets(overrides)
    base = member_recipes(cfg, sets)[0]
    data, out = Path(data or base.data.root), Path(out or Path("runs") / cfg.name)
    claim(out, resume, force, "heterogeneous ensemble")
    report = train_ensemble_seeds(cfg, data, out, seeds, sets, resume, not no_progress)
    mean, sd = report.get("accuracy_mean", report["accuracy"]), report.get("accuracy_sd", {})
    click.echo(json.dumps({k: f"{v:.2f}" + (f" ± {sd[k]:.2f}" if k in sd else "") for k, v in mean.items()},
                          indent=1, ensure_ascii=False))
    click.echo(f"report: {RunDir(out).report_md}", err=True)


if __name__ == "__main__":
    main()
