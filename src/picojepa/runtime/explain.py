"""`picojepa-run --bundle B --explain CLIP --out DIR`: where and when in one clip the bundle's
answer came from. The bundle answers the clip on onnxruntime as every answer is made, then once
with each block of frames x cells of the picture occluded (`core.occlusion`); the drop in the
answered class's probability is drawn over the frames. Needs the runtime install only: the
pictures are PNG files written with zlib (`png`), no image library.

DIR/occlusion.png            the clip's frames (top) and the map over them (bottom)
DIR/occlusion-animated.png   the same as an animation (APNG), clip and map side by side
DIR/occlusion.json           the answer, each member's, and the map's numbers
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from picojepa.core.errors import UsageError
from picojepa.core.occlusion import OcclusionMap, edges, occlusion_map, overlay

from .ensemble import Ensemble
from .png import apng, png, strip
from .prediction import Prediction

PICTURE = 96  # the pictures' frames are enlarged (whole pixels) to at least this side
FILES = ("occlusion.png", "occlusion-animated.png", "occlusion.json")
EXPLAIN_PARAMS = (
    click.Option(["--explain", "explain_clip"], metavar="CLIP",
                 help="Draw where and when in CLIP the answer came from (an occlusion map) into --out."),
    click.Option(["--out", "out_dir"], type=click.Path(path_type=Path), help="With --explain: the folder for its pictures."),
)
# the options --explain takes: the bundle's graphs in this process, the answer; any other is a usage error
APPLIES = ("bundle", "provider", "vote_method", "variant", "threads", *(p.name for p in EXPLAIN_PARAMS))


@dataclass
class Explanation:
    """One clip's answer, its occlusion map and the files written."""

    prediction: Prediction
    map: OcclusionMap
    classes: list[str]
    files: list[Path]

    def summary(self) -> str:
        """What the map says, in one line: the answer and the block it leaned on most."""
        p, m = self.prediction, self.map
        t, y, x = np.unravel_index(int(m.drop.argmax()), m.drop.shape)
        a, b = edges(m.frames, m.drop.shape[0])[t]
        frames = f"frame {a}" if b - a == 1 else f"frames {a}-{b - 1}"
        return (f"{p.file}: {p.label} ({p.confidence:.2f}, answer {p.vote}); it leaned most on {frames}, row "
                f"{y + 1}, column {x + 1} of a {m.drop.shape[1]}x{m.drop.shape[2]} grid: without that block its "
                f"probability is {m.base - m.drop.max():.2f} instead of {m.base:.2f} | "
                + ", ".join(str(f) for f in self.files))


def explain(ens: Ensemble, clip: str | Path, out: Path, vote: str | None = None) -> Explanation:
    """The occlusion map of `clip`'s evaluation clip under the bundle's answer (`vote`: another
    vote), its pictures and numbers written into `out`."""
    method = ens.check_vote(vote)
    d = ens.decode(clip)
    if d.exc:
        raise d.exc
    pred = ens.answer(d, method)
    names = list(ens.bundle.members)
    m = occlusion_map(d.clips[0], lambda b: ens.plan.scores(ens.member_probs(b), names, method), pred.index)
    frames = enlarge(d.frames[0])
    shown = overlay(frames, m)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / f for f in FILES]
    files[0].write_bytes(png(strip([frames, shown])))
    files[1].write_bytes(apng(np.concatenate([frames, np.full_like(frames[:, :, :2], 255), shown], axis=2)))
    files[2].write_text(json.dumps({**pred.to_dict(), "classes": ens.classes, "occlusion": m.to_json()}, indent=1))
    return Explanation(pred, m, ens.classes, files)


def enlarge(frames: np.ndarray) -> np.ndarray:
    """Frames (T, S, S, 3) repeated pixel by pixel to at least PICTURE pixels a side."""
    k = max(1, -(-PICTURE // frames.shape[1]))
    return frames.repeat(k, axis=1).repeat(k, axis=2)


def run(clip: str, out: Path | None, videos: tuple, bundle: Path, provider: str, vote: str | None,
        variant: str, threads: int) -> Explanation:
    """`picojepa-run --explain CLIP --out DIR` (the command's other options as given)."""
    if out is None or clip is None:
        raise UsageError("--explain CLIP and --out DIR go together: the clip to explain and the folder for its pictures")
    if videos:
        raise UsageError(f"--explain takes one clip; also given: {' '.join(videos)}")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: not a directory")
    with Ensemble.load(bundle, provider, variant, threads) as ens:
        return explain(ens, clip, out, vote)
