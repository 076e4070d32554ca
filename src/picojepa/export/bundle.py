"""Checkpoints -> a verified, self-describing bundle directory (written aside, renamed when good)."""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch

from picojepa.core import outdir
from picojepa.core.bundle import MANIFEST, GraphEntry, Manifest, answers
from picojepa.core.decode import open_video
from picojepa.core.errors import DecodeError
from picojepa.core.roster import ANSWERS, VOTE_MEMBERS
from picojepa.core.rundir import RunDir
from picojepa.core.vote import VOTES, vote_weights
from picojepa.runtime.ensemble import Ensemble
from picojepa.runtime.run_files import expand  # a folder gives its videos, as for picojepa-run
from picojepa.train import checkpoint
from picojepa.train.answer import choose
from picojepa.train.classify import cached_held_out
from picojepa.train.recipe_file import recipe_from_dict

from . import variants
from .config import ExportConfig
from .errors import ExportError
from .members import FusedEnsemble, SingleMember, load_members, select
from .onnx_graph import export_graph
from .verify import check, compare, ort_logits, torch_logits

log = logging.getLogger(__name__)


def _versions() -> dict:
    return {"picojepa": version("picojepa"), "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}


def export_bundle(run_dir: str | Path | None, out: str | Path, members: list[str] | None = None,
                  force: bool = False, verify_videos: list[str | Path] = (),
                  config: ExportConfig | None = None, **settings) -> dict:
    """Export, verify and write the bundle; returns verification.json's content. `members`: names
    of the run's members, or 'RUN:MEMBER[=NAME]' items from several runs (run_dir None); a
    heterogeneous ensemble's directory as run_dir bundles its members (`members.select`).
    `settings` override fields of `config` (an `ExportConfig`), e.g. layout="separate"."""
    cfg = replace(config or ExportConfig(), **settings)
    out = Path(out)
    sel = select(Path(run_dir) if run_dir is not None else None, ",".join(members or []) or None)
    protect = {r.run for r in sel.refs} | {sel.held_out_run} | ({Path(run_dir)} if run_dir else set())
    outdir.check_target(out, BUNDLE, force, sorted(protect))
    videos = _verify_videos(verify_videos)
    loaded = load_members(sel.refs)
    with outdir.draft(out) as tmp:
        modules, manifest = _write_graphs(loaded, sel.vote_members, tmp, cfg)
        manifest.default_vote, manifest.default_answer = defaults(sel.choice, manifest.members, manifest.vote_members)
        stacker = _stacker(sel.stacker, loaded, manifest.vote_members)
        if stacker:
            manifest.stacking = stacker
        manifest.write(tmp)
        draft = _verify(sel.held_out_run, tmp, manifest, modules, videos, cfg, str(out))
        verification = {"layout": manifest.layout, "videos": draft.videos, "fp32": draft.fp32_check,
                        **_variants(draft, sel.held_out_run, cfg)}
        (tmp / "verification.json").write_text(json.dumps(verification, indent=1))
        outdir.commit(tmp, out)
    return verification


def defaults(choice: dict | None, members: list[str], vote_members: list[str]) -> tuple[str, str | None]:
    """(default_vote, default_answer): the vote that validated best, and the answer the run's rule
    (`train.answer.choose`) picks among those a bundle of `members` can give, from the run's
    answer choice. The votes were scored on the run's partial members, so they count only where
    those are the bundle's voters. Without a choice (members of several runs, a run evaluated
    before choices were kept): the paper's majority vote."""
    if not choice:
        return "majority", None
    scored, videos = choice["accuracy"], choice.get("videos") or {}
    own_vote = list(vote_members) == list(VOTE_MEMBERS)
    votes = [k for k in scored if k in VOTES and own_vote]
    vote = max(votes, key=lambda k: (scored[k], -votes.index(k))) if votes else "majority"
    possible = {k: (scored[k], int(videos.get(k, 1))) for k in scored
                if k in answers(members) and (k in ANSWERS or own_vote)}
    return vote, (choose(possible).chosen if possible else vote)


def _bundle_file(name: str) -> bool:
    """The names a bundle's folder holds (what --force may delete with it)."""
    return name in (MANIFEST, "verification.json", outdir.INCOMPLETE) or name.endswith(".onnx") \
        or ".onnx." in name


BUNDLE = outdir.Kind("bundle", outdir.only_entries(_bundle_file, MANIFEST, "bundle"))


def _verify_videos(paths) -> list[str]:
    """The --verify-videos, each checked to be a decodable video before any work: an export asked
    to verify on a video must verify on it, not silently on fewer."""
    out = []
    for p in expand(tuple(map(str, paths))):
        try:
            open_video(p, 32, "exact")
        except DecodeError as exc:
            raise ExportError(f"--verify-videos: {exc}") from None
        out.append(p)
    return out


def _groups(loaded: list, layout: str) -> list[list]:
    """Members grouped by identical encoder weights and pooling, in member order: each group
    becomes one graph (one encoder pass for all its heads); 'separate' gives every member its own."""
    groups: dict = {}
    for i, m in enumerate(loaded):
        groups.setdefault(i if layout == "separate" else (m.encoder_sha, m.model.pool), []).append(m)
    return list(groups.values())


def _write_graphs(loaded: list, vote_members: list[str], tmp: Path, cfg: ExportConfig) -> tuple[list, Manifest]:
    """The fp32 graphs, one per group of members sharing an encoder -> ([(module, member
    indices)], the manifest without checksums). Layout: 'fused' (one graph), 'separate' (a graph
    per member) or 'grouped' (some graphs hold several members)."""
    names, first = [m.name for m in loaded], loaded[0]
    groups = _groups(loaded, cfg.layout)
    layout = "fused" if len(groups) == 1 else "separate" if len(groups) == len(loaded) else "grouped"
    common = {"picojepa_classes": first.classes, "picojepa_clip": first.clip.to_dict(),
              "picojepa_layout": layout}
    graphs, modules = [], []
    for group in groups:
        gm = [m.name for m in group]
        fname = ("ensemble.onnx" if len(groups) == 1 else f"member-{gm[0]}.onnx" if len(gm) == 1
                 else f"encoder-{gm[0]}.onnx")
        module = FusedEnsemble(group) if len(groups) == 1 or len(gm) > 1 else SingleMember(group[0])
        export_graph(module, first.clip, tmp / fname, cfg.opset,
                     {**common, "picojepa_recipe": group[0].recipe, "picojepa_members": gm})
        graphs.append(GraphEntry(fname, gm))
        modules.append((module, [names.index(m) for m in gm]))
    accuracy = {m.name: m.val_accuracy for m in loaded}
    weights = dict(zip(vote_members, vote_weights([accuracy[m] for m in vote_members])))
    manifest = Manifest(
        classes=list(first.classes), clip=first.clip.to_dict(), layout=layout, graphs=graphs, members=names,
        vote_members=list(vote_members), vote_weights=weights, recipe=first.recipe,
        member_recipes={m.name: m.recipe for m in loaded}, versions=_versions(), opset=cfg.opset)
    return modules, manifest


def _verify(run_dir: Path, tmp: Path, manifest: Manifest, modules: list, verify_videos, cfg: ExportConfig,
            what: str) -> variants.BundleDraft:
    """onnxruntime against PyTorch on the run's held-out clips (and any given videos);
    ExportMismatchError beyond the tolerance. -> the draft the variants build on."""
    ens = Ensemble.load(tmp, provider="cpu", draft=True)
    paths, _ = held_out_videos(run_dir)
    videos = [*paths[:cfg.max_verify], *map(str, verify_videos)]
    decoded = [ens.decode(v) for v in videos]
    bad = [d for d in decoded[len(paths[:cfg.max_verify]):] if d.error]
    if bad:
        raise ExportError(f"--verify-videos: {bad[0].error}")
    decoded = [d for d in decoded if d.error is None]
    if not decoded:
        raise ExportError(f"{run_dir}: no video to verify the export on (give --verify-videos)")
    clips = np.concatenate([d.clips for d in decoded])
    names = manifest.members
    ref = torch_logits(modules, clips, len(names))
    vote_idx = [names.index(m) for m in manifest.vote_members]
    fp32 = compare(ref, ort_logits(ens, clips), names, vote_idx, cfg.tolerance)
    check(fp32, f"{what} (fp32)")
    return variants.BundleDraft(tmp, manifest, ens, ref, clips, names, vote_idx, cfg,
                                videos=[d.path for d in decoded], fp32_check=fp32)


def _variants(draft: variants.BundleDraft, run_dir: Path, cfg: ExportConfig) -> dict:
    """fp16, int8 and the optimiser, each kept only where it is verified and pays. fp16 and int8
    start from the plain fp32 graph (neither converter handles the optimiser's com.microsoft
    operators), so they come before the optimiser may replace it."""
    out = {"optimiser": None, "fp16": None, "int8": None}
    if cfg.fp16:
        out["fp16"] = variants.fp16(draft)
    if cfg.int8:
        out["int8"] = variants.int8(draft, *held_out_videos(run_dir))
    if cfg.optimise:
        recipes = draft.manifest.member_recipes
        out["optimiser"] = variants.optimise(draft, lambda g: recipe_from_dict(recipes[g.members[0]]).model)
    return out


def held_out_videos(run_dir: Path) -> tuple[list[str], list[int]]:
    """The run's held-out videos and labels (what the export is verified and int8 scored on)."""
    kept = RunDir(run_dir).held_out_videos()
    return kept if kept[0] else cached_held_out(run_dir)  # a run classified before held_out.json


def _stacker(path: Path | None, loaded: list, vote_members: list[str]) -> dict | None:
    """The stacking meta-model at `path` for the manifest, where the bundle votes with exactly
    the members it was fitted on and their heads are the ones it saw; else None (logged)."""
    if path is None or not path.exists():
        log.info("no stacking meta-model for these members; `--vote stacked` will be unavailable")
        return None
    state = checkpoint.load(path, kind="stacker")
    heads = {m.name: checkpoint.state_hash(m.model.head.state_dict()) for m in loaded}
    if state["members"] != vote_members or any(heads.get(m) != h for m, h in state["member_heads"].items()):
        log.info("%s: fitted on other members or heads than this bundle votes with; left out", path)
        return None
    return {k: state[k] for k in ("members", "input", "weight", "bias", "fitted_on_videos", "l2")}
