"""The benchmark report: targets checked against the measurements, Markdown, PNG charts."""
from __future__ import annotations

from pathlib import Path

TARGETS = (
    # key, description, comparison, threshold
    ("fused_over_single", "fused 4-member ensemble latency / one member", "<=", 1.3),
    ("seed_style_over_fused", "original's process-per-model way / fused, per video", ">=", 20.0),
    ("eager4_over_fused", "4 eager PyTorch models / fused", ">=", 3.0),
    ("decode_share", "decode + preprocess share of end-to-end (10 s, ~340x256)", "<=", 0.25),
    ("fraction_of_peak", "encoder GFLOP/s / measured fp32 matmul peak", ">=", 0.60),
)


def targets(result: dict) -> list[dict]:
    rows = []
    h = result["headline"]
    for key, what, op, thr in TARGETS:
        v = h.get(key)
        met = None if v is None else (v <= thr if op == "<=" else v >= thr)
        by = None if v is None else (v / thr if op == "<=" else thr / v)
        rows.append({"key": key, "what": what, "target": f"{op} {thr:g}", "value": v, "met": met,
                     "missed_by_factor": None if met in (None, True) else by})
    mem = result.get("memory")
    if mem and mem.get("growth_mb_second_to_last_fifth") is not None:
        g = mem["growth_mb_second_to_last_fifth"]
        rows.append({"key": "flat_memory", "what": f"RSS growth over {mem['videos']} videos (MiB)",
                     "target": "<= 10", "value": g, "met": g <= 10, "missed_by_factor": None})
    return rows


def _f(v, fmt="{:.2f}"):
    return "—" if v is None else fmt.format(v)


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"# pico-JEPA benchmark ({r['when']})", "",
             f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPUs, {m['threads']} threads; "
             f"GPU: {m['gpu'] or 'none'}; onnxruntime providers: {', '.join(m['providers'])}.",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
             f"Bundle `{r['bundle']}`, run `{r['run']}`, {len(r['videos'])} videos x {r['rounds']} "
             "timed rounds (one warm-up round dropped); configurations interleaved video by video.",
             "", "## Headline (ratios of medians, same run)", "",
             "| measure | value | target | met |", "|---|---|---|---|"]
    for t in r["targets"]:
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else
                                               f"**no** (off by {t['missed_by_factor']:.2f}x)" if t["missed_by_factor"] else "**no**")
        lines.append(f"| {t['what']} | {_f(t['value'], '{:.3g}')} | {t['target']} | {met} |")
    lines += ["", "## Latency per video by configuration (ms)", "",
              "| configuration | p50 | p90 | p99 | mean | decode | preprocess | inference | vote | load |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for c in r["configs"].values():
        t = c["total"]
        lines.append(f"| {c['label']} | {_f(t.get('p50'))} | {_f(t.get('p90'))} | {_f(t.get('p99'))} | "
                     f"{_f(t.get('mean'))} | {_f(c['decode'].get('p50'))} | {_f(c['preprocess'].get('p50'))} | "
                     f"{_f(c['inference'].get('p50'))} | {_f(c['vote'].get('p50'), '{:.3f}')} | {_f(c['load_ms'], '{:.0f}')} |")
    s = r.get("seed_style")
    if s:
        lines += ["", f"e: the original's way ({s['processes_per_video']} fresh processes per video): "
                  + ", ".join(f"{Path(p['video']).name} {p['ms']:.0f} ms" for p in s["per_video"])
                  + f"; median {s['total']['p50']:.0f} ms."]
    bt = r["batching"]
    lines += ["", "## Throughput", "",
              f"Inference only, {bt['videos']} videos: {bt['inference_videos_per_s_batch1']:.1f} videos/s at "
              f"batch 1, {bt['inference_videos_per_s_batched']:.1f} at batch {bt['batch']} "
              f"({bt['batching_speedup']:.2f}x); decode + preprocess {bt['decode_preprocess_ms_per_video']:.1f} ms "
              "per video on top.", "",
              f"Start-up: import {r['startup']['import_ms']['p50']:.0f} ms, session load "
              f"{r['startup']['session_load_ms']['p50']:.0f} ms (medians of fresh processes).", "",
              "Peak RSS of a fresh process running one configuration over up to 16 videos (MiB): "
              + ", ".join(f"{k} {_f(v, '{:.0f}')}" for k, v in r["peak_rss_mb"].items()) + "."]
    c = r["compute"]
    lines += ["", "## Compute", "",
              f"Encoder FLOPs per clip: {c['formula']['encoder'] / 1e9:.3f} GFLOP by formula "
              f"({c['formula']['tokens']} tokens; attention {c['formula']['attention'] / 1e9:.3f}); "
              f"PyTorch's counter, attention excluded: {c['encoder_flops_counted'] / 1e9:.3f} vs formula "
              f"{c['formula']['encoder_without_attention'] / 1e9:.3f} "
              f"({'agree' if c['counted_matches_formula'] else '**disagree**'}); heads "
              f"{c['formula']['heads']} FLOP. Method: {c['method']}.",
              f"Achieved {c['batch1_gflops']:.1f} GFLOP/s at batch 1 ({c['batch1_ms']['p50']:.2f} ms), "
              f"{c['batch8_gflops']:.1f} at batch 8; measured fp32 matmul peak {c['peak_gflops']:.1f} GFLOP/s "
              f"({r['peak']['method']}): {c['fraction_of_peak']:.0%} of peak."]
    d = r["decoding"]
    lines += ["", "## Decoding (centre clip of each real file)", "",
              "| file | size | frames | codec | exact p50 ms | approximate p50 ms | every frame p50 ms |",
              "|---|---|---|---|---|---|---|"]
    for f in d["files"]:
        if "error" in f:
            lines.append(f"| {f['file']} | — | — | — | {f['error']} | | |")
            continue
        lines.append(f"| {f['file']} | {f['width']}x{f['height']} | {f['frames']} | {f['codec']} | "
                     f"{f['exact']['p50']:.1f} | {f['approximate']['p50']:.1f} | "
                     f"{_f(f.get('all_frames', {}).get('p50'), '{:.0f}')} |")
    if "exact_over_approximate_median" in d:
        lines.append("")
        lines.append(f"Exact / approximate: {d['exact_over_approximate_median']:.2f}x (median over files); "
                     f"every frame / one clip: {_f(d.get('all_frames_over_clip_median'))}x; approximate "
                     f"seek got the frame count wrong for: {', '.join(d['approximate_wrong_counts']) or 'none'}.")
    if "by_resolution" in d:
        lines.append("Output size (exact, centre clip, ms): " + ", ".join(
            f"{k}px {v['p50']:.1f}" for k, v in d["by_resolution"].items()) + ".")
    k = d.get("by_keyframe_interval")
    if k and "error" in k:
        lines.append(f"Keyframe interval: {k['source']} could not be re-encoded ({k['error']}).")
    elif k:
        lines.append(f"Keyframe interval ({k['source']} re-encoded, {k['frames']} frames): " + ", ".join(
            f"g={g}: {v['p50']:.1f} ms, {v['bytes'] / 1e3:.0f} kB" for g, v in k["by_gop"].items()) + ".")
    ds = r["decode_share"]
    lines.append(f"Decode + preprocess share of end-to-end on {', '.join(ds['videos'])}: "
                 f"{_f(ds['share'], '{:.0%}')} (end-to-end p50 {_f(ds['total_ms_p50'], '{:.1f}')} ms).")
    pf = {k: v for k, v in (r.get("prefetch") or {}).items() if isinstance(v, dict)}
    if pf:
        spare = r["prefetch"]["spare_core_threads"]
        lines += ["", "## Decoding overlapped with inference (`picojepa-run --prefetch`)", "",
                  "Whole-batch wall time, medians of interleaved rounds: sequential; prefetch; "
                  f"prefetch with onnxruntime on {spare} thread(s) so that decoding has a core:", ""]
        lines += [f"- {k} ({v['videos']} videos): {v['sequential_ms_p50']:.0f} ms; "
                  f"{v['prefetch_ms_p50']:.0f} ms ({v['speedup_prefetch']:.2f}x); "
                  f"{v['prefetch_spare_core_ms_p50']:.0f} ms ({v['speedup_prefetch_spare_core']:.2f}x)"
                  for k, v in pf.items()]
    tr = r.get("training")
    if tr:
        lines += ["", "## Pre-training throughput (same recipe, alternating steps)", "",
                  f"Context encoder over the visible tokens only ({tr['context_tokens']} of {tr['tokens']}): "
                  f"{tr['visible_only']['clips_per_s']:.1f} clips/s; over all tokens (the original): "
                  f"{tr['all_tokens']['clips_per_s']:.1f} clips/s; ratio {tr['ratio']:.2f}x "
                  f"(batch {tr['batch_size']}, {tr['steps']} steps each)."]
    mem = r.get("memory")
    if mem:
        lines += ["", f"## Memory over {mem['videos']} videos", "",
                  f"{mem['distinct_videos']} distinct files cycled, {mem['errors']} errors; RSS from "
                  f"{mem['trace'][0]['rss_mb']:.0f} to {mem['trace'][-1]['rss_mb']:.0f} MiB; growth from the "
                  f"second to the last fifth {_f(mem['growth_mb_second_to_last_fifth'], '{:.1f}')} MiB; slope "
                  f"{_f(mem['slope_mb_per_100_videos'], '{:.2f}')} MiB per 100 videos."]
    if r.get("failed_videos"):
        lines += ["", "Videos that failed to decode (left out): " + ", ".join(r["failed_videos"])]
    lines += ["", "Charts: latency.png, stages.png, peak.png, memory.png."]
    return "\n".join(lines) + "\n"


def charts(r: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cf = list(r["configs"].values())
    names = [c["name"] for c in cf]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh(names, [c["total"]["p50"] for c in cf], xerr=[[0] * len(cf),
            [c["total"]["p90"] - c["total"]["p50"] for c in cf]], color="tab:blue")
    s = r.get("seed_style")
    if s:
        ax.barh(["seed (e)"], [s["total"]["p50"]], color="tab:red")
        ax.set_xscale("log")
    ax.set_xlabel("ms per video (median, bar to p90)")
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    left = [0.0] * len(cf)
    for stage in ("decode", "preprocess", "inference", "vote"):
        vals = [c[stage]["p50"] for c in cf]
        ax.barh(names, vals, left=left, label=stage)
        left = [a + b for a, b in zip(left, vals)]
    ax.set_xlabel("ms per video (stage medians)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "stages.png", dpi=110)
    plt.close(fig)

    c = r["compute"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bars = {"matmul peak": c["peak_gflops"], "encoder b=1": c["batch1_gflops"], "encoder b=8": c["batch8_gflops"]}
    ax.bar(list(bars), list(bars.values()), color=["grey", "tab:blue", "tab:green"])
    ax.set_ylabel("GFLOP/s (fp32)")
    ax.set_title(f"{c['fraction_of_peak']:.0%} of measured peak")
    fig.tight_layout()
    fig.savefig(out / "peak.png", dpi=110)
    plt.close(fig)

    mem = r.get("memory")
    if mem:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot([t["videos"] for t in mem["trace"]], [t["rss_mb"] for t in mem["trace"]], marker=".")
        ax.set_xlabel("videos classified")
        ax.set_ylabel("RSS (MiB)")
        fig.tight_layout()
        fig.savefig(out / "memory.png", dpi=110)
        plt.close(fig)


def write(r: dict, out: Path) -> None:
    (out / "report.md").write_text(markdown(r))
    charts(r, out)
