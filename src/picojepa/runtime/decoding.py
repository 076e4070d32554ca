"""Decoding for the ensemble: one video's clips, or the clip of each window, decoded and
preprocessed (`decode_clips` -> `Decoded`, never raising on a bad video); the decode device
checked; the next video decoded while the current one is classified (`pipelined`)."""
from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from picojepa.core.clips import ClipSpec, Region, normalize, sliding_starts, uniform_clips, window_picks
from picojepa.core.decode import check_ffmpeg, open_video
from picojepa.core.errors import DecodeError

from .session import ProviderError


@dataclass
class Decoded:
    path: str
    clips: np.ndarray | None  # (K, 3, T, S, S) float32, normalised (None when not asked for)
    spans: list[tuple[float, float]]
    decode_ms: float
    preprocess_ms: float
    exc: DecodeError | None = None  # why the video could not be decoded
    frames: np.ndarray | None = None  # (K, T, S, S, 3) uint8, before normalisation
    windowed: bool = False  # clips are sliding windows: the answer lists them, even just one

    @property
    def error(self) -> str | None:
        return None if self.exc is None else str(self.exc)


def decode_clips(path: str | Path, spec: ClipSpec, clips: int = 1, window_s: float | None = None,
                 stride_s: float | None = None, device: str = "cpu", normalise: bool = True,
                 region: Region | None = None) -> Decoded:
    """Decode and preprocess `clips` uniform clips of one video, or the clip of each window of
    `window_s` seconds every `stride_s` (its centre clip, or its frames spread); never raises on a bad video (see `error`).
    `device` 'cuda' decodes on the GPU (NVDEC, through torchcodec); frames come back to the CPU
    for the shared preprocessing. `normalise` False keeps only the uint8 frames (what the
    network coordinator sends: its member nodes normalise). `region`: only that part of each
    frame (see `core.clips.Region`)."""
    t0 = time.perf_counter()
    try:
        video = open_video(path, spec.size, spec.seek_mode, device=device, region=region)
        n, fps = video.num_frames, video.fps or 1.0
        if window_s is not None:  # each window of window_s seconds -> its centre clip
            if window_s * fps > n + 0.5:  # in floats: an absurd --window is refused, not overflowed
                raise DecodeError(path, f"{n / fps:.2f} s long, shorter than the {window_s:g} s window "
                                        "(give a shorter --window, or none for one label per video)")
            win = max(spec.span if spec.sampling == "window" else spec.frames, int(round(window_s * fps)))
            wins = [(w, min(n, w + win)) for w in
                    sliding_starts(n, fps, ClipSpec(frames=1, size=spec.size), stride_s or window_s)
                    if w == 0 or w + win <= n]
            picks = [[a + i for i in window_picks(b - a, spec)] for a, b in wins]
        else:
            picks = uniform_clips(n, spec, clips, video.placement_keyframes(spec))
            wins = [(c[0], min(n, c[-1] + 1)) for c in picks]
        raw = video.read_clips(picks)
    except DecodeError as exc:
        return Decoded(str(path), None, [], (time.perf_counter() - t0) * 1e3, 0.0, exc)
    t1 = time.perf_counter()
    batch = np.stack([normalize(f, spec) for f in raw]) if normalise else None
    t2 = time.perf_counter()
    spans = [(a / fps, b / fps) for a, b in wins]
    return Decoded(str(path), batch, spans, (t1 - t0) * 1e3, (t2 - t1) * 1e3, frames=np.stack(raw),
                   windowed=window_s is not None)


def check_decode_device(device: str) -> str:
    """'cpu', or 'cuda' where torch sees a GPU (torchcodec decodes with NVDEC there); a
    ProviderError otherwise, never a silent CPU decode."""
    if device == "cpu":
        return device
    if device != "cuda":
        raise ProviderError(f"unknown decode device {device!r}; choose cpu or cuda")
    check_ffmpeg()  # loads torchcodec, which loads torch: the runtime itself never imports torch
    if not sys.modules["torch"].cuda.is_available():
        raise ProviderError("--decode-device cuda: torch sees no CUDA device (a CPU-only torch "
                            "build, or no GPU); decode on the CPU instead")
    return device


def pipelined(paths: Iterable, decode, finish, prefetch: bool) -> Iterator:
    """finish(decode(p)) for each path in order; with `prefetch`, the next video decodes in a
    thread while the current one is being classified."""
    paths = list(paths)
    if not prefetch:
        for p in paths:
            yield finish(decode(p))
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(decode, paths[0]) if paths else None
        for i in range(len(paths)):
            d = pending.result()
            if i + 1 < len(paths):
                pending = pool.submit(decode, paths[i + 1])
            yield finish(d)
