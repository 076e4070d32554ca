"""The benchmark report: targets checked against the measurements, Markdown, PNG charts."""
from __future__ import annotations

from pathlib import Path

from picojepa.core.mdtable import row, table

TARGETS = (
    # key, description, comparison, threshold
    ("fused_over_single", "fused 4-member ensemble latency / one member", "<=", 1.3),
    ("process_per_model_over_fused", "original's process-per-model way / fused, per video", ">=", 20.0),
    ("eager4_over_fused", "4 eager PyTorch models / fused", ">=", 3.0),
    ("decode_share", "decode + preprocess share of end-to-end (10 s, ~340x256), exact placement", "<=", 0.5),
    ("decode_share_keyframe", "the same with keyframe placement", "<=", 0.25),
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


def markdown(r: dict, stages) -> str:
    """The report: the sections of the `stages` (benchmarks.stages.STAGES) whose results are there,
    in stage order, then what was skipped."""
    lines = _header(r)
    for section in (s for stage in stages for s in stage.sections):
        if r.get(section.key):
            lines += ["", *section.render(r)]
    if r.get("failed_videos"):
        lines += ["", "Videos that failed to decode (left out): " + ", ".join(r["failed_videos"])]
    if r.get("skipped"):
        lines += ["", "Skipped stages: " + "; ".join(f"{k} ({v})" for k, v in r["skipped"].items()) + "."]
    lines += ["", f"Charts: {', '.join(c.file for stage in stages for c in stage.charts)} (where their stages ran)."]
    return "\n".join(lines) + "\n"


def _met(t: dict) -> str:
    if t["met"] is None:
        return "n/a"
    if t["met"]:
        return "yes"
    return f"**no** (off by {t['missed_by_factor']:.2f}x)" if t["missed_by_factor"] else "**no**"


def _header(r: dict) -> list[str]:
    m = r["machine"]
    lines = [f"# pico-JEPA benchmark ({r['when']})", "",
             f"Machine: {m['cpu']}, {m['usable_cpus']} usable CPUs, {m['threads']} threads; "
             f"GPU: {m['gpu'] or 'none'}; onnxruntime providers: {', '.join(m['providers'])}.",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
             f"Bundle `{r['bundle']}`, run `{r['run']}`, {len(r['videos'])} videos x {r['rounds']} "
             "timed rounds (one warm-up round dropped); configurations interleaved video by video.",
             "", "## Headline (ratios of medians, same run)", "",
             *table(["measure", "value", "target", "met"],
                    ([t["what"], _f(t["value"], "{:.3g}"), t["target"], _met(t)] for t in r["targets"]))]
    h = r["headline"]
    lines.append(row(["end-to-end p50 per 10-s clip (ms), exact / keyframe placement",
                      f"{_f(h.get('e2e_p50_ms'), '{:.1f}')} / {_f(h.get('e2e_p50_ms_keyframe'), '{:.1f}')}", "", ""]))
    return lines


def _configs(r: dict) -> list[str]:
    head = ["configuration", "p50", "p90", "p99", "mean", "decode", "preprocess", "inference", "vote", "load"]
    return ["## Latency per video by configuration (ms)", "", *table(head, (
        [c["label"], *(_f(c["total"].get(q)) for q in ("p50", "p90", "p99", "mean")), _f(c["decode"].get("p50")),
         _f(c["preprocess"].get("p50")), _f(c["inference"].get("p50")), _f(c["vote"].get("p50"), "{:.3f}"),
         _f(c["load_ms"], "{:.0f}")] for c in r["configs"].values()))]


def _process_per_model(r: dict) -> list[str]:
    s = r["process_per_model"]
    return [f"e: the original's way ({s['processes_per_video']} fresh processes per video): "
            + ", ".join(f"{Path(p['video']).name} {p['ms']:.0f} ms" for p in s["per_video"])
            + f"; median {s['total']['p50']:.0f} ms."]


def _throughput(r: dict) -> list[str]:
    bt = r["batching"]
    return ["## Throughput", "",
            f"Inference only, {bt['videos']} videos: {bt['inference_videos_per_s_batch1']:.1f} videos/s at "
            f"batch 1, {bt['inference_videos_per_s_batched']:.1f} at batch {bt['batch']} "
            f"({bt['batching_speedup']:.2f}x); decode + preprocess {bt['decode_preprocess_ms_per_video']:.1f} ms "
            "per video on top."]


def _startup(r: dict) -> list[str]:
    return [f"Start-up: import {r['startup']['import_ms']['p50']:.0f} ms, session load "
            f"{r['startup']['session_load_ms']['p50']:.0f} ms (medians of fresh processes).", "",
            "Peak RSS of a fresh process running one configuration over up to 16 videos (MiB): "
            + ", ".join(f"{k} {_f(v, '{:.0f}')}" for k, v in r["peak_rss_mb"].items()) + "."]


def _compute(r: dict) -> list[str]:
    c = r["compute"]
    return ["## Compute (the recipe's model)", "",
            f"Encoder FLOPs per clip: {c['formula']['encoder'] / 1e9:.3f} GFLOP by formula "
            f"({c['formula']['tokens']} tokens; attention {c['formula']['attention'] / 1e9:.3f}); "
            f"PyTorch's counter, attention excluded: {c['encoder_flops_counted'] / 1e9:.3f} vs formula "
            f"{c['formula']['encoder_without_attention'] / 1e9:.3f} "
            f"({'agree' if c['counted_matches_formula'] else '**disagree**'}); heads "
            f"{c['formula']['heads']} FLOP. Method: {c['method']}.",
            f"Achieved {c['batch1_gflops']:.1f} GFLOP/s at batch 1 ({c['batch1_ms']['p50']:.2f} ms), "
            f"{c['batch8_gflops']:.1f} at batch 8; measured fp32 matmul peak {c['peak_gflops']:.1f} GFLOP/s "
            f"({r['peak']['method']}): {c['fraction_of_peak']:.0%} of peak."]


def _paper_size(r: dict) -> list[str]:
    e, t = r["paper_size"]["encoder"], r["paper_size"]["pretraining"]
    return ["## The paper's model size (224x224, 8 frames, ViT 192/8 layers, random weights)", "",
            f"Encoder {e['encoder_gflop']:.2f} GFLOP per clip ({e['tokens']} tokens, attention "
            f"{e['attention_gflop']:.2f}); onnxruntime CPU at batch 1: fp32 {e['fp32']['ms']['p50']:.1f} ms "
            f"= {e['fp32']['gflops']:.0f} GFLOP/s ({e['fp32']['fraction_of_peak']:.0%} of the measured "
            f"peak {e['peak_gflops']:.0f}); dynamic int8 {e['int8']['ms']['p50']:.1f} ms "
            f"({e['int8_speedup']:.2f}x fp32).",
            "Pre-training at this size: " + _side_by_side(t)]


def _side_by_side(t: dict) -> str:
    return (f"context encoder over the visible tokens only ({t['context_tokens']} of {t['tokens']}) "
            f"{t['visible_only']['clips_per_s']:.3g} clips/s; over every token (the original's "
            f"formulation) {t['all_tokens']['clips_per_s']:.3g} clips/s; ratio {t['ratio']:.2f}x "
            f"(batch {t['batch_size']}, {t['steps']} alternating steps each).")


def _decoding(r: dict) -> list[str]:
    d = r["decoding"]
    lines = ["## Decoding (centre clip of each real file)", "",
             *table(["file", "size", "frames", "codec", "exact p50 ms", "approximate p50 ms", "every frame p50 ms"])]
    lines += _file_rows(d["files"], lambda f: [
        f"{f['width']}x{f['height']}", f["frames"], f["codec"], f"{f['exact']['p50']:.1f}",
        f"{f['approximate']['p50']:.1f}", _f(f.get("all_frames", {}).get("p50"), "{:.0f}")])
    if "exact_over_approximate_median" in d:
        lines += ["", f"Exact / approximate: {d['exact_over_approximate_median']:.2f}x (median over files); "
                  f"every frame / one clip: {_f(d.get('all_frames_over_clip_median'))}x; approximate "
                  f"seek got the frame count wrong for: {', '.join(d['approximate_wrong_counts']) or 'none'}."]
    if "by_resolution" in d:
        lines.append("Output size (exact, centre clip, ms): " + ", ".join(
            f"{k}px {v['p50']:.1f}" for k, v in d["by_resolution"].items()) + ".")
    k = d.get("by_keyframe_interval")
    if k and "error" in k:
        lines.append(f"Keyframe interval: {k['source']} could not be re-encoded ({k['error']}).")
    elif k:
        lines.append(f"Keyframe interval ({k['source']} re-encoded, {k['frames']} frames): " + ", ".join(
            f"g={g}: {v['p50']:.1f} ms, {v['bytes'] / 1e3:.0f} kB" for g, v in k["by_gop"].items()) + ".")
    return lines + _placement(d.get("placement"))


def _file_rows(files: list[dict], cells) -> list[str]:
    """One table row per file: its name and `cells(row)`, or its name and why it failed."""
    return [row([f["file"], f["error"]] if "error" in f else [f["file"], *cells(f)]) for f in files]


def _placement(pl: dict | None) -> list[str]:
    if not pl:
        return []
    th = pl["threads"]
    lines = ["", "### Clip placement and decoder threads (open + centre clip, ms; threads 0 = FFmpeg's choice)", "",
             *table(["file", "keyframes", "centre start", "keyframe start", "frames decoded before the clip (exact)",
                     *(f"{p}, {t} thr" for p in ("exact", "keyframe") for t in th), "limit"])]
    lines += _file_rows(pl["files"], lambda f: [
        f["keyframes"], f["centre_start"], f["keyframe_start"], f["frames_before_clip_exact"],
        *(f"{f[f'{p}_threads{t}_ms']:.1f}" for p in ("exact", "keyframe") for t in th), f"{f['limit_ms']:.1f}"])
    lines.append(f"Limit: {pl['limit_method']}.")
    return lines


def _decode_share(r: dict) -> list[str]:
    ds = r["decode_share"]
    return [f"Decode + preprocess share of end-to-end on {', '.join(ds['videos'])}: exact placement "
            f"{_f(ds['exact']['share'], '{:.0%}')} (end-to-end p50 {_f(ds['exact']['total_ms_p50'], '{:.1f}')} ms), "
            f"keyframe placement {_f(ds['keyframe']['share'], '{:.0%}')} "
            f"({_f(ds['keyframe']['total_ms_p50'], '{:.1f}')} ms)."]


def _placement_accuracy(r: dict) -> list[str]:
    pa = r["placement_accuracy"]
    keys = list(pa["exact"])
    return ["### Accuracy by clip placement (bench videos, label = folder; mean of per-class %)", "",
            f"Keyframe placement moved the clip on {pa['moved']} of {pa['videos']} videos.", "",
            *table(["placement", *keys], ([pl, *(f"{pa[pl][k]:.1f}" for k in keys)] for pl in ("exact", "keyframe")))]


def _prefetch(r: dict) -> list[str]:
    pf = {k: v for k, v in r["prefetch"].items() if isinstance(v, dict)}
    spare = r["prefetch"]["spare_core_threads"]
    return ["## Decoding overlapped with inference (`picojepa-run --prefetch`)", "",
            "Whole-batch wall time, medians of interleaved rounds: sequential; prefetch; "
            f"prefetch with onnxruntime on {spare} thread(s) so that decoding has a core:", "",
            *(f"- {k} ({v['videos']} videos): {v['sequential_ms_p50']:.0f} ms; "
              f"{v['prefetch_ms_p50']:.0f} ms ({v['speedup_prefetch']:.2f}x); "
              f"{v['prefetch_spare_core_ms_p50']:.0f} ms ({v['speedup_prefetch_spare_core']:.2f}x)"
              for k, v in pf.items())]


def _training(r: dict) -> list[str]:
    return ["## Pre-training throughput (the recipe's size)", "", "The " + _side_by_side(r["training"])]


def _memory(r: dict) -> list[str]:
    mem = r["memory"]
    return [f"## Memory over {mem['videos']} videos", "",
            f"{mem['distinct_videos']} distinct files cycled, {mem['errors']} errors; RSS from "
            f"{mem['trace'][0]['rss_mb']:.0f} to {mem['trace'][-1]['rss_mb']:.0f} MiB; growth from the "
            f"second to the last fifth {_f(mem['growth_mb_second_to_last_fifth'], '{:.1f}')} MiB; slope "
            f"{_f(mem['slope_mb_per_100_videos'], '{:.2f}')} MiB per 100 videos."]


def _hetero(r: dict) -> list[str]:
    h = r["hetero"]
    shapes = ", ".join(f"{m} (depth {x['depth']}, patch {x['patch_size']}, width {x['embed_dim']})"
                       for m, x in h["member_recipes"].items())
    lines = ["## Heterogeneous bundle beside the fused one", "",
             f"{len(h['members'])} members in {h['graphs']} graphs: {shapes or ', '.join(h['members'])}. "
             "Medians over interleaved rounds, ms per video; peak RSS of a fresh process running up to 16 of the "
             "videos:", "",
             *table(["configuration", "inference p50", "total p50", "peak RSS MiB"],
                    ([c["label"], _f(c["inference"].get("p50")), _f(c["total"].get("p50")),
                      _f(h["peak_rss_mb"].get(k), "{:.0f}")] for k, c in h["configs"].items()))]
    return lines + ["", f"Inference: heterogeneous / homogeneous {h['inference_ratio_hetero_vs_homogeneous']:.2f}x, "
                    f"heterogeneous / its largest graph {h['inference_ratio_hetero_vs_largest']:.2f}x."]


def charts(r: dict, out: Path, stages) -> None:
    """One PNG per chart of the `stages` whose results are there."""
    import matplotlib  # heavy, from the train extra: only where charts are drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after matplotlib.use: no display needed

    for chart in (c for stage in stages for c in stage.charts):
        if r.get(chart.key):
            fig, ax = plt.subplots(figsize=(7, 3.5))
            chart.draw(r, ax)
            fig.tight_layout()
            fig.savefig(out / chart.file, dpi=110)
            plt.close(fig)


def _latency_chart(r: dict, ax) -> None:
    cf = list(r["configs"].values())
    ax.barh([c["name"] for c in cf], [c["total"]["p50"] for c in cf], xerr=[[0] * len(cf),
            [c["total"]["p90"] - c["total"]["p50"] for c in cf]], color="tab:blue")
    s = r.get("process_per_model")
    if s:
        ax.barh(["process per model (e)"], [s["total"]["p50"]], color="tab:red")
        ax.set_xscale("log")
    ax.set_xlabel("ms per video (median, bar to p90)")


def _stages_chart(r: dict, ax) -> None:
    cf = list(r["configs"].values())
    left = [0.0] * len(cf)
    for stage in ("decode", "preprocess", "inference", "vote"):
        vals = [c[stage]["p50"] for c in cf]
        ax.barh([c["name"] for c in cf], vals, left=left, label=stage)
        left = [a + b for a, b in zip(left, vals)]
    ax.set_xlabel("ms per video (stage medians)")
    ax.legend()


def _peak_chart(r: dict, ax) -> None:
    c = r["compute"]
    bars = {"matmul peak": c["peak_gflops"], "encoder b=1": c["batch1_gflops"], "encoder b=8": c["batch8_gflops"]}
    ax.bar(list(bars), list(bars.values()), color=["grey", "tab:blue", "tab:green"])
    ax.set_ylabel("GFLOP/s (fp32)")
    ax.set_title(f"{c['fraction_of_peak']:.0%} of measured peak")


def _memory_chart(r: dict, ax) -> None:
    mem = r["memory"]
    ax.plot([t["videos"] for t in mem["trace"]], [t["rss_mb"] for t in mem["trace"]], marker=".")
    ax.set_xlabel("videos classified")
    ax.set_ylabel("RSS (MiB)")


def write(r: dict, out: Path, stages) -> None:
    """report.md and the charts of `r`, the result of running `stages`."""
    (out / "report.md").write_text(markdown(r, stages))
    charts(r, out, stages)
