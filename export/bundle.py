"""Checkpoints -> a verified, self-describing bundle directory (written aside, renamed when good)."""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from picojepa.runtime.bundle import FORMAT_VERSION, MANIFEST, sha256_file
from picojepa.runtime.ensemble import Ensemble
from picojepa.train import checkpoint
from picojepa.train.classify import STACKER
from picojepa.train.roster import MEMBERS, VOTE_MEMBERS

from . import variants
from .errors import ExportError
from .members import FusedEnsemble, SingleMember, load_members
from .onnx_graph import export_graph
from .verify import check, compare, ort_logits, torch_logits

log = logging.getLogger(__name__)


def _versions() -> dict:
    import onnx
    import onnxruntime
    import torch

    from importlib.metadata import version

    return {"picojepa": version("picojepa"), "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}


def held_out_videos(run_dir: Path) -> tuple[list[str], list[int]]:
    """The run's evaluation videos and labels (from its feature cache), for verification."""
    path = Path(run_dir) / "features.pt"
    if not path.exists():
        return [], []
    sets = checkpoint.load(path, kind="features")["sets"]
    return list(sets["infer"]["paths"]), sets["infer"]["labels"].tolist()


def export_bundle(run_dir: str | Path, out: str | Path, members: list[str] | None = None,
                  int8: bool = False, fp16: bool = False, opset: int = 17, force: bool = False,
                  verify_videos: list[str | Path] = (), tolerance: float = 1e-4,
                  max_verify: int = 24, layout: str = "auto", optimise: bool = True) -> dict:
    """Export, verify and write the bundle; returns verification.json's content.

    layout 'auto' fuses the members into one graph when they share one encoder (one encoder pass
    for all heads); 'separate' writes one graph per member (for comparison, or to ship members
    independently). `optimise` tries onnxruntime's transformer optimiser on the fp32 graphs and
    keeps it where verified and faster; `fp16` and `int8` add variants shipped only when they pay."""
    run_dir, out = Path(run_dir), Path(out)
    if layout not in ("auto", "separate"):
        raise ExportError(f"layout must be 'auto' or 'separate', got {layout!r}")
    if out.exists() and not force:
        raise ExportError(f"{out}: already exists (use --force to replace it)")
    names = list(members or MEMBERS)
    loaded = load_members(run_dir, names)
    first = loaded[0]
    fused = layout == "auto" and len({(m.encoder_sha, m.model.pool) for m in loaded}) == 1
    common = {"picojepa_classes": first.classes, "picojepa_clip": first.clip.to_dict(),
              "picojepa_recipe": first.recipe}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    try:
        graphs, modules = [], []
        if fused:
            module = FusedEnsemble(loaded)
            specs = [("ensemble.onnx", module, names)]
        else:
            specs = [(f"member-{m.name}.onnx", SingleMember(m), [m.name]) for m in loaded]
        for fname, module, gm in specs:
            export_graph(module, first.clip, tmp / fname, opset,
                         {**common, "picojepa_members": gm, "picojepa_layout": "fused" if fused else "separate"})
            graphs.append({"file": fname, "members": gm, "variant": "fp32"})
            modules.append((module, [names.index(m) for m in gm]))
        vote_members = [m for m in names if m in VOTE_MEMBERS] or names
        weights = {m.name: (m.val_accuracy if m.val_accuracy is not None else 1.0) for m in loaded}
        manifest = {
            "format_version": FORMAT_VERSION, "classes": first.classes, "clip": first.clip.to_dict(),
            "layout": "fused" if fused else "separate", "graphs": graphs, "members": names,
            "vote_members": vote_members, "default_vote": "majority",
            "vote_weights": {m: weights[m] for m in vote_members}, "recipe": first.recipe,
            "versions": _versions(), "opset": opset,
        }
        stacker = _stacker(run_dir, loaded, vote_members)
        if stacker:
            manifest["stacking"] = stacker
        _write_manifest(tmp, manifest)

        ens = Ensemble.load(tmp, provider="cpu")
        paths, labels = held_out_videos(run_dir)
        videos = [*paths[:max_verify], *map(str, verify_videos)]
        decoded = [d for d in (ens.decode(v) for v in videos) if d.error is None]
        if not decoded:
            raise ExportError(f"{run_dir}: no video to verify the export on (give --verify-videos)")
        clips = np.concatenate([d.clips for d in decoded])
        ref = torch_logits(modules, clips, len(names))
        vote_idx = [names.index(m) for m in vote_members]
        fp32 = compare(ref, ort_logits(ens, clips), names, vote_idx, tolerance)
        check(fp32, f"{out} (fp32)")
        verification = {"layout": manifest["layout"], "videos": [d.path for d in decoded],
                        "fp32": fp32, "optimiser": None, "fp16": None, "int8": None}
        ctx = variants.Ctx(tmp, manifest, _write_manifest, ens, ref, clips, names, vote_idx, tolerance)
        # fp16 and int8 start from the plain fp32 graph (neither converter handles the optimiser's
        # com.microsoft operators), so they come before the optimiser may replace it
        if fp16:
            verification["fp16"] = variants.fp16(ctx)
        if int8:
            verification["int8"] = variants.int8(ctx, paths, labels)
        if optimise:
            model = first.recipe["model"]
            verification["optimiser"] = variants.optimise(ctx, model["heads"], model["embed_dim"])
        (tmp / "verification.json").write_text(json.dumps(verification, indent=1))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
        return verification
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _stacker(run_dir: Path, loaded: list, vote_members: list[str]) -> dict | None:
    """The run's stacking meta-model for the manifest, where the bundle votes with exactly the
    members it was fitted on and their heads are the ones it saw; else None (logged)."""
    path = run_dir / "members" / STACKER
    if not path.exists():
        log.info("%s: no stacking meta-model in the run; `--vote stacked` will be unavailable", run_dir)
        return None
    state = checkpoint.load(path, kind="stacker")
    heads = {m.name: checkpoint.state_hash(m.model.head.state_dict()) for m in loaded}
    if state["members"] != vote_members or any(heads.get(m) != h for m, h in state["member_heads"].items()):
        log.warning("%s: fitted on other members or heads than this bundle votes with; left out",
                    path)
        return None
    return {k: state[k] for k in ("members", "input", "weight", "bias", "fitted_on_videos", "l2")}


def _write_manifest(root: Path, manifest: dict) -> None:
    for g in manifest["graphs"]:
        f = root / g["file"]
        g["sha256"], g["bytes"] = sha256_file(f), f.stat().st_size
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1))
