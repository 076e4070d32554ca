"""How a camera stream decodes for `picojepa-bench --streams`: one stream's decode and conversion
cost per frame flat out (every frame, non-reference frames skipped, the deblocking filter
skipped), the limit line's input; and the accuracy of the live path with non-reference frames
skipped, on labelled videos."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from picojepa.core.clips import normalize
from picojepa.runtime.decoding import Decoded
from picojepa.runtime.ensemble import Ensemble
from picojepa.runtime.live.options import LiveOptions, LiveStats
from picojepa.runtime.live.reader import windows
from picojepa.runtime.live.source import av_module, clip_rgb

FPS = 30
# name -> (FFmpeg's skip_frame, the decoder's options)
MODES = {"default": ("DEFAULT", {}), "nonref": ("NONREF", {}),
         "loop_filter_skipped": ("DEFAULT", {"skip_loop_filter": "all"})}


def timed_packets(camera: Path, options: dict, skip_frame: str = "DEFAULT", clock=time.perf_counter):
    """One stream decoded with one thread (a core's work per frame), packet by packet: yields the
    frames each packet gave and the `clock` seconds its decoding took. The decoding loop of every
    decode-cost measurement here and in `deblock`."""
    with av_module().open(str(camera)) as c:
        stream = c.streams.video[0]
        stream.codec_context.skip_frame = skip_frame
        stream.codec_context.options = dict(options)
        stream.codec_context.thread_count = 1
        for packet in c.demux(stream):
            t0 = clock()
            decoded = packet.decode()
            yield decoded, clock() - t0


def decode_costs(camera: Path, size: int, frames: int = 300) -> dict:
    """ms per frame of one stream decoded flat out (the first `frames` packets): every frame,
    with non-reference frames skipped, and without the deblocking filter; and the part of each that is converting and scaling
    it to the clip's size as the live path does (two swscale steps, pixel-identical to the file
    path), beside one combined step (cheaper, ~2 grey levels off)."""
    out = {}
    for name, (mode, options) in MODES.items():
        got, decode_s, scale_s, one_step_s = 0, 0.0, 0.0, 0.0
        for k, (decoded, spent) in enumerate(timed_packets(camera, options, mode)):
            if k >= frames:
                break
            decode_s += spent
            for f in decoded:
                t1 = time.perf_counter()
                clip_rgb(f, size)  # the live path's conversion and resize
                t2 = time.perf_counter()
                f.to_ndarray(width=size, height=size, format="rgb24", interpolation="BILINEAR")
                scale_s += t2 - t1
                one_step_s += time.perf_counter() - t2
                got += 1
        out[name] = {"frames_out": got, "decode_ms_per_frame_out": decode_s * 1e3 / got,
                     "scale_ms_per_frame_out": scale_s * 1e3 / got,
                     "one_step_scale_ms_per_frame_out": one_step_s * 1e3 / got}
    d, s = out["default"], out["nonref"]
    # per second of stream: every frame vs what skipping leaves (I and P frames only)
    kept = s["frames_out"] / max(1, d["frames_out"])
    out["frames_kept_by_nonref"] = kept
    out["decode_ms_per_stream_second"] = {"every_frame": (d["decode_ms_per_frame_out"] + d["scale_ms_per_frame_out"]) * FPS,
                                          "nonref_skipped": (s["decode_ms_per_frame_out"] + s["scale_ms_per_frame_out"]) * FPS * kept}
    return out


def skip_accuracy(ens: Ensemble, videos: list[Path], window_s: float = 1.0) -> dict:
    """Labelled videos (the folder names the class) read by the live path, as a stream would be,
    windows of `window_s` every `window_s`: the vote's accuracy over the windows and the frames
    decoded, with every frame decoded and with FFmpeg skipping the non-reference frames (the clip
    then comes from the frames that remain)."""
    out = {}
    for mode in ("none", "nonref"):
        opts = LiveOptions(window_s, None, None, 10.0, 5.0, skip_frame=mode)
        right = total = frames = 0
        for v in videos:
            stats = LiveStats()
            for w in windows(str(v), ens.bundle.clip, opts, stats, threading.Event()):
                clip = normalize(w.frames, ens.bundle.clip)[None]
                pred = ens.finish(Decoded(str(v), clip, [(w.start_s, w.end_s)], 0.0, 0.0), "majority")
                right += pred.label == Path(v).parent.name
                total += 1
            frames += stats.frames
        out[mode] = {"windows": total, "accuracy": 100.0 * right / max(1, total), "frames_decoded": frames}
    return out
