"""`picojepa-bench --streams`'s report as markdown: per size the levers side by side, each
lever's ladder, the variants at the ladder's top, one stream's decode costs."""
from __future__ import annotations

from pathlib import Path

from picojepa.core.mdtable import row, table

from .stream_decode import FPS


def _row(x: dict, label: str) -> str:
    cores = "–" if x.get("cores_servers") is None else f"{x['cores_servers']:.2f}"
    return row([label, "yes" if x["real_time"] else "no", f"{x['windows']} ({x['dropped']})", f"{x['fps_min']:.1f}",
                f"{x['latency_ms'].get('p50', 0):.0f} / {x['latency_ms'].get('p90', 0):.0f}",
                f"{x['decode_ms_per_window'].get('p50', 0):.0f}", f"{x['inference_ms_per_window'].get('p50', 0):.1f}",
                f"{x['converted_per_decoded']:.2f}", f"{x.get('gated_share', 0):.0%}",
                f"{x.get('cores_reader', 0):.2f} / {cores}"])


HEAD = table(["streams", "real time", "windows (dropped)", "slowest stream fps", "latency p50 / p90 ms",
              "decode+convert ms per window p50", "inference ms per window p50", "frames converted / decoded",
              "windows gated", "cores busy: reader / FFmpeg servers"])


def _levers(z: dict, r: dict) -> list[str]:
    """Each lever's ladder top beside today's, its gated share and its CPU per stream by step."""
    most, today = z["most_by_lever"], z["most_by_lever"].get("today")
    out = table(["lever", "most streams in real time", "x today", "windows gated (at the top)",
                 "CPU ms per stream-second at the top: decode / convert / gate / inference and the rest "
                 "(inference's wall time)"])
    for name, runs in z["levers"].items():
        top = next((x for x in runs if x["streams"] == most[name]), runs[0])
        c = top["cpu_ms_per_stream_s"]
        ratio = f"{most[name] / today:.2f}" if today else "–"
        out.append(row([name, most[name], ratio, f"{top['gated_share']:.0%}",
                        f"{c['decode']:.0f} / {c['convert']:.0f} / {c['gate']:.1f} / {c['inference_and_rest']:.0f} "
                        f"({c['inference_wall']:.0f})"]))
    return out + ["", f"Limit lines: {z['limit_streams']:.1f} decoding every frame with its deblocking filter, "
                      f"{z['limit_streams_loop_filter_skipped']:.1f} without it ({r['cores']} cores / one stream's "
                      "decode cost, everything else at zero).", ""]


def markdown(r: dict) -> str:
    lines = ["# Live streams on this machine (`picojepa-bench --streams`)", "",
             f"Camera: {r['camera']}, from `{Path(r['source']).name}`; bundle `{r['bundle']}`; window "
             f"{r['window_s']:g} s, stride {r['stride_s']:g} s; {r['cores']} cores. Real time: no window dropped "
             f"and every stream's frames read at >= 90 % of {FPS} fps.", ""]
    for z in r["sizes"]:
        d = z["decode"]
        lines += [f"## {z['size']}", "", *_levers(z, r)]
        for name, runs in z["levers"].items():
            lines += [f"{name}:", "", *HEAD, *[_row(x, str(x["streams"])) for x in runs], ""]
        lines += [f"**Most streams in real time ({list(z['levers'])[-1]}): {z['max_real_time_streams']}; limit line "
                      f"{z['limit_streams']:.1f}** ({r['cores']} cores / (decoding every frame, "
                      f"{d['default']['decode_ms_per_frame_out']:.2f} ms a frame x {FPS} fps), everything else at zero).",
                  "", f"At {z['variants_at']} streams:", "", *HEAD]
        lines += [_row(x, name) for name, x in z["variants"].items()]
        lines += ["", f"One stream flat out, one decoder thread: {d['default']['decode_ms_per_frame_out']:.2f} ms decode + "
                      f"{d['default']['scale_ms_per_frame_out']:.2f} ms converting a frame; skipping non-reference "
                      f"frames keeps {d['frames_kept_by_nonref']:.0%} of them at {d['nonref']['decode_ms_per_frame_out']:.2f} "
                      "ms each. Converting in one swscale step instead of the file path's two: "
                      f"{d['default']['one_step_scale_ms_per_frame_out']:.2f} ms a frame (pixels ~2 grey levels off).", ""]
    if r.get("skip_accuracy"):
        k = r["skip_accuracy"]
        lines += ["## Skipping non-reference frames: accuracy", "",
                  f"The labelled videos read by the live path (1-s windows, majority vote): every frame decoded "
                  f"{k['none']['accuracy']:.1f} % of {k['none']['windows']} windows ({k['none']['frames_decoded']} "
                  f"frames decoded); non-reference frames skipped {k['nonref']['accuracy']:.1f} % of "
                  f"{k['nonref']['windows']} windows ({k['nonref']['frames_decoded']} frames decoded).", ""]
    return "\n".join(lines)
