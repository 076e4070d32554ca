"""`picojepa-export RUN_DIR --out BUNDLE_DIR`: checkpoints -> a verified ONNX bundle."""
from __future__ import annotations

from pathlib import Path

import click

from picojepa.core.console import EXIT_USAGE, examples, fail, one_line_errors, setup_logging
from picojepa.core.options import Finite
from picojepa.core.roster import MEMBERS

from .config import ExportConfig


@click.command(epilog=examples(
    "picojepa-export runs/demo --out bundles/demo --int8 --fp16",
    "picojepa-export runs/demo --members general,motion --out bundles/hybrid --layout separate"))
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Bundle directory to write.")
@click.option("--members", default=None,
              help=f"Comma-separated members of RUN_DIR [default: {','.join(MEMBERS)}], or, without "
                   "RUN_DIR, members of several runs as RUN_DIR:MEMBER[=NAME] (default name "
                   "<run folder>-<member>); every member of such a bundle votes. A heterogeneous "
                   "ensemble's directory (picojepa-train ensemble) as RUN_DIR bundles its members.")
@click.option("--int8", is_flag=True, help="Also try a dynamic int8 variant (shipped only if it pays).")
@click.option("--fp16", is_flag=True, help="Also an fp16 variant (for the CUDA provider), verified on every "
              "provider present; shipped only if verified.")
@click.option("--no-optimise", "no_optimise", is_flag=True,
              help="Skip onnxruntime's transformer optimiser (tried by default, kept only if faster).")
@click.option("--opset", default=17, show_default=True, type=click.IntRange(14, 21),
              help="ONNX opset (14 at least: the encoder's attention needs it).")
@click.option("--tolerance", default=1e-4, show_default=True, type=Finite(min=0, min_open=True),
              help="Maximum |logit difference| between onnxruntime and PyTorch (fp32).")
@click.option("--verify-videos", multiple=True, type=click.Path(path_type=Path),
              help="Extra real videos to verify on (besides the run's held-out videos).")
@click.option("--layout", type=click.Choice(["auto", "separate"]), default="auto", show_default=True,
              help="auto: members that share an encoder share one graph; separate: a graph each.")
@click.option("--force", is_flag=True, help="Replace an existing bundle directory.")
@click.option("-v", "--verbose", is_flag=True)
@one_line_errors
def main(run_dir, out, members, int8, fp16, no_optimise, opset, tolerance, verify_videos, layout, force,
         verbose):
    """Export a run's classifiers to ONNX, verified against PyTorch, as a bundle.

    RUN_DIR's members, or with --members RUN:MEMBER,... members of several runs."""
    from .bundle import export_bundle  # heavy (torch): off `picojepa-export --help`'s path

    setup_logging(verbose)
    if members is not None and not [m for m in members.split(",") if m.strip()]:
        fail(f"--members {members!r}: names no member (give e.g. --members general,1)", EXIT_USAGE)
    cfg = ExportConfig(layout=layout, opset=opset, tolerance=tolerance, fp16=fp16, int8=int8,
                       optimise=not no_optimise)
    v = export_bundle(run_dir, out, members.split(",") if members else None, force,
                      list(verify_videos), cfg)
    f = v["fp32"]
    click.echo(f"bundle {out}: {v['layout']} layout, verified on {f['clips']} clips: max |dlogit| "
               f"{f['max_abs_logit_diff']:.2e}, top-1 agreement {f['top1_agreement']:.0%}", err=True)
    if v["optimiser"]:
        o = v["optimiser"]
        click.echo(f"optimiser: fused {o['fused_operators'] or 'nothing'}, {o['speedup']:.2f}x"
                   + ("" if o["kept"] else f"; {o['reason']}"), err=True)
    if v["fp16"]:
        h = v["fp16"]
        checked = ", ".join(f"{p} {'ok' if r['verified'] else 'FAILED' if r['verified'] is False else 'not run'}"
                            for p, r in h["providers"].items())
        click.echo(f"fp16: {checked}" + ("" if h["shipped"] else f"; {h['reason']}"), err=True)
    if v["int8"]:
        q = v["int8"]
        click.echo(f"int8: speed-up {q['speedup']:.2f}x, top-1 agreement {q['top1_agreement']:.0%}"
                   + ("" if q["shipped"] else f"; {q['reason']}"), err=True)


if __name__ == "__main__":
    main()
