"""Decoding costs on real files: exact vs approximate seek, output resolution, keyframe interval,
and reading one clip against decoding every frame of the video."""
from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from picojepa.core.clips import ClipSpec, center_indices
from picojepa.core.console import one_line
from picojepa.core.decode import open_video
from picojepa.core.errors import DecodeError

from .stats import repeat_ms, summarize


def clip_ms(path: Path, spec: ClipSpec, seek_mode: str, repeats: int) -> dict:
    """Open the video and read its centre clip (exact placement), as the runtime does for one
    video; one warm-up read first."""
    exact = replace(spec, seek_mode=seek_mode, placement="exact")
    return summarize([placed_clip_ms(path, exact, 1) for _ in range(repeats + 1)][1:])


def all_frames_ms(path: Path, spec: ClipSpec, repeats: int) -> dict:
    """Decode every frame (resized in the decoder), then keep the clip: the naive alternative."""
    def once():
        v = open_video(path, spec.size, "exact")
        frames = v.read(range(v.num_frames))
        return frames[center_indices(v.num_frames, spec)]

    return summarize(repeat_ms(once, max(1, repeats // 2), warmup=0))


def per_file(videos: list[Path], spec: ClipSpec, repeats: int) -> list[dict]:
    rows = []
    for p in videos:
        try:
            v = open_video(p, spec.size, "exact")
        except DecodeError as exc:
            rows.append({"file": p.name, "error": str(exc)})
            continue
        row = {"file": p.name, "width": v.width, "height": v.height, "frames": v.num_frames,
               "codec": v.codec, "duration_s": round(v.duration_s, 2),
               "exact": clip_ms(p, spec, "exact", repeats),
               "approximate": clip_ms(p, spec, "approximate", repeats)}
        approx = open_video(p, spec.size, "approximate").num_frames
        row["approximate_frame_count"] = approx
        if v.num_frames <= 1500:
            try:
                row["all_frames"] = all_frames_ms(p, spec, repeats)
            except DecodeError as exc:  # e.g. the container promises more frames than it holds
                row["all_frames_error"] = str(exc)
        rows.append(row)
    return rows


def by_resolution(path: Path, spec: ClipSpec, sizes=(64, 112, 160, 224), repeats: int = 5) -> dict:
    out = {}
    for s in sizes:
        out[s] = clip_ms(path, ClipSpec(frames=spec.frames, size=s, frame_step=spec.frame_step),
                         "exact", repeats)
    return out


def by_keyframe_interval(path: Path, spec: ClipSpec, gops=(1, 10, 50, 250), repeats: int = 5) -> dict:
    """Re-encode `path` (H.264, crf 23) with each keyframe interval and time the centre clip."""
    import torch  # heavy: off `picojepa-bench --help`'s path
    from torchcodec.decoders import VideoDecoder  # loads torch: as above
    from torchcodec.encoders import VideoEncoder  # as above

    dec = VideoDecoder(str(path))
    frames = dec.get_frames_in_range(0, dec.metadata.num_frames).data
    w, h = frames.shape[-1] - frames.shape[-1] % 2, frames.shape[-2] - frames.shape[-2] % 2
    frames = torch.as_tensor(frames[..., :h, :w]).contiguous()
    fps = max(1, int(round(float(dec.metadata.average_fps or 25))))  # MP4 wants a whole rate
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for g in gops:
            f = Path(tmp) / f"g{g}.mp4"
            try:
                VideoEncoder(frames, frame_rate=fps).to_file(
                    str(f), codec="libx264", crf=23, pixel_format="yuv420p",
                    extra_options={"g": g, "keyint_min": g})
            except RuntimeError as exc:  # FFmpeg refused this source: say so, keep the report
                return {"source": path.name, "error": one_line(exc, 200)}
            out[g] = {"bytes": f.stat().st_size, **clip_ms(f, spec, "exact", repeats)}
    return {"source": path.name, "frames": int(frames.shape[0]), "fps": fps, "by_gop": out}


def decode_report(videos: list[Path], spec: ClipSpec, repeats: int) -> dict:
    rows = per_file(videos, spec, repeats)
    ok = [r for r in rows if "exact" in r]
    out = {"clip": spec.to_dict(), "files": rows}
    if ok:
        ex = np.array([r["exact"]["p50"] for r in ok])
        ap = np.array([r["approximate"]["p50"] for r in ok])
        out["exact_over_approximate_median"] = float(np.median(ex / ap))
        full = [r for r in ok if "all_frames" in r]
        if full:
            out["all_frames_over_clip_median"] = float(np.median(
                [r["all_frames"]["p50"] / r["exact"]["p50"] for r in full]))
        out["approximate_wrong_counts"] = [r["file"] for r in ok
                                           if r["approximate_frame_count"] != r["frames"]]
    return out


def placed_clip_ms(path: Path, spec: ClipSpec, threads: int) -> float:
    """Open the video and read its centre clip under `spec.placement`, with `threads` FFmpeg
    decoder threads (0: FFmpeg's choice): one sample, in ms."""
    t0 = time.perf_counter()
    v = open_video(path, spec.size, spec.seek_mode, threads=threads)
    v.read(center_indices(v.num_frames, spec, v.placement_keyframes(spec)))
    return (time.perf_counter() - t0) * 1e3


def placement_study(videos: list[Path], spec: ClipSpec, rounds: int, threads=(1, 2, 0)) -> dict:
    """Per file: the centre clip's open + decode time with exact and keyframe placement and each
    decoder thread count, all interleaved round by round (round 0 warms up); how far the keyframe
    clip moved; and the file's limit: decoding only the clip's own frames, at the per-frame cost
    of decoding the whole file in order."""
    rows = []
    for p in videos:
        try:
            v = open_video(p, spec.size, "exact")
            keys = v.keyframes
        except DecodeError as exc:
            rows.append({"file": p.name, "error": str(exc)})
            continue
        setups = [(pl, t) for pl in ("exact", "keyframe") for t in threads]
        times: dict[tuple, list[float]] = {s: [] for s in setups}
        for r in range(rounds + 1):
            for pl, t in setups:
                ms = placed_clip_ms(p, replace(spec, placement=pl), t)
                if r:
                    times[(pl, t)].append(ms)
        n = v.num_frames
        centre = center_indices(n, spec)[0]
        moved = center_indices(n, replace(spec, placement="keyframe"), keys)[0]
        whole = summarize(repeat_ms(lambda: open_video(p, spec.size, "exact").read(range(n)), 2, warmup=0))
        rows.append({"file": p.name, "frames": n, "keyframes": len(keys),
                     "centre_start": centre, "keyframe_start": moved,
                     "frames_before_clip_exact": centre - max(k for k in keys if k <= centre),
                     **{f"{pl}_threads{t}_ms": float(np.median(times[(pl, t)])) for pl, t in setups},
                     "per_frame_ms": whole["p50"] / n,
                     "limit_ms": whole["p50"] / n * len(set(center_indices(n, spec)))})
    return {"threads": list(threads), "rounds": rounds, "files": rows,
            "limit_method": "decode time of every frame in order / frame count x the clip's "
                            "distinct frames: decoding nothing the clip does not show"}
