import json
import socket
import subprocess
import sys

import pytest

from picojepa.benchmarks import flops, stats
from picojepa.benchmarks.report import targets
from picojepa.benchmarks.stages import CHART_FILES, STAGE_NAMES, STAGES
from picojepa.export.bundle import export_bundle

from conftest import REAL, REPO


def test_summarize_percentiles():
    s = stats.summarize([float(i) for i in range(1, 101)])
    assert s["n"] == 100 and s["p50"] == 50.5 and s["min"] == 1.0
    assert 90 < s["p90"] < 91 and 99 < s["p99"] < 100
    assert stats.summarize([]) == {"n": 0}
    assert stats.ratio({"p50": 6.0}, {"p50": 2.0}) == 3.0
    assert stats.ratio({}, {"p50": 2.0}) is None


def test_flop_formula_matches_pytorch_count(smoke_recipe):
    """The config formula and PyTorch's counter of the real module agree (attention aside)."""
    from picojepa.train.vit import VideoViT

    enc = VideoViT(smoke_recipe.model, smoke_recipe.clip)
    counted = flops.counted(enc, (1, *smoke_recipe.clip.input_shape))
    form = flops.formula(smoke_recipe.model, smoke_recipe.clip, classes=3, heads=5)
    assert counted == form["encoder_without_attention"]
    assert form["total"] == form["encoder"] + 2 * smoke_recipe.model.embed_dim * 3 * 5
    assert flops.counted(enc, (2, *smoke_recipe.clip.input_shape)) == 2 * counted


def test_targets_report_misses_by_how_much():
    r = {"headline": {"fused_over_single": 2.6, "process_per_model_over_fused": 40.0, "eager4_over_fused": None,
                      "decode_share": 0.5, "fraction_of_peak": 0.3}}
    rows = {t["key"]: t for t in targets(r)}
    assert rows["fused_over_single"]["met"] is False and rows["fused_over_single"]["missed_by_factor"] == 2.0
    assert rows["process_per_model_over_fused"]["met"] is True
    assert rows["eager4_over_fused"]["met"] is None
    assert rows["fraction_of_peak"]["missed_by_factor"] == 2.0


def test_the_stages_are_one_list_that_names_the_skips_the_sections_and_the_charts():
    names = [s.name for s in STAGES]
    assert len(set(names)) == len(names) and STAGE_NAMES == tuple(names)
    written = {k for s in STAGES for k in s.writes}
    assert {x.key for s in STAGES for x in (*s.sections, *s.charts)} <= written
    assert CHART_FILES == ("latency.png", "stages.png", "peak.png", "memory.png")


def test_the_bench_command_loads_without_torch():
    """`picojepa-bench --help` stays quick: the stages import torch only when they run."""
    code = "import sys, picojepa.benchmarks.cli; print(sorted({'torch', 'onnx'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def _peak_after(mib: int) -> float:
    code = ("import numpy as np; from picojepa.benchmarks.stats import peak_rss_mb; "
            f"block = np.ones({mib} * 2 ** 20 // 8); del block; print(peak_rss_mb())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def test_peak_rss_keeps_the_high_mark_of_memory_already_freed():
    if stats.peak_rss_mb() is None:
        pytest.skip("no /proc/self/status here")
    quiet, busy = _peak_after(0), _peak_after(128)  # 128 MiB touched, then freed
    assert busy - quiet >= 120 and stats.rss_mb() < stats.peak_rss_mb() + 1


@pytest.mark.slow
def test_bench_cli_writes_the_report(smoke_run, smoke_data, tmp_path):
    """picojepa-bench end to end on the smoke run, with the smallest settings."""
    run, _ = smoke_run
    bundle = tmp_path / "bundle"
    export_bundle(run, bundle)
    videos = sorted(str(p) for p in (smoke_data / "infer").rglob("*.mp4"))[:3]
    real = REAL / "bench" / "tree__opencv-doc.avi"
    decode = ["--decode-videos", str(real)] if real.exists() else []
    out = tmp_path / "bench"
    done = subprocess.run([sys.executable, "-m", "picojepa.benchmarks.cli", *videos, "--bundle", str(bundle),
                           "--run", str(run), "--out", str(out), "--rounds", "1", "--process-per-model-videos", "1", "--skip", "paper_size",
                           "--many", "20", "--no-progress", *decode],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads((out / "report.json").read_text())
    assert set(r["headline"]) >= {"fused_over_single", "process_per_model_over_fused", "eager4_over_fused",
                                  "decode_share", "decode_share_keyframe", "e2e_p50_ms",
                                  "e2e_p50_ms_keyframe", "fraction_of_peak"}
    head = dict(r["headline"])
    assert head.pop("hetero_over_fused_inference") is None  # measured only with --hetero
    assert all(isinstance(v, float) for v in head.values()) == bool(decode), head
    # hetero: measured only with --hetero
    assert r["skipped"]["paper_size"] == "--skip" and set(r["skipped"]) == {"paper_size", "hetero"}
    if decode:  # 68 frames, keyframes 0, 25, 50: the centre clip (start 30) moves to 25
        row = r["decoding"]["placement"]["files"][0]
        assert (row["centre_start"], row["keyframe_start"]) == (30, 25) and row["limit_ms"] > 0
    acc = r["placement_accuracy"]
    assert acc["videos"] == 3 and set(acc["exact"]) == set(acc["keyframe"]) >= {"general", "vote_majority"}
    assert set(r["configs"]) >= {"fused", "separate", "single", "eager4"}
    assert r["training"]["visible_only"]["clips_per_s"] > 0
    assert r["memory"]["videos"] == 20 and r["memory"]["errors"] == 0
    for f in ("report.md", "latency.png", "stages.png", "peak.png", "memory.png"):
        assert (out / f).stat().st_size > 0


def test_bench_cli_bad_inputs_are_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "picojepa.benchmarks.cli", str(tmp_path / "nope.mp4"),
                           "--bundle", str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 3
    assert done.stderr.strip().splitlines()[-1].startswith("error: no video to benchmark")
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_bench_network_section_measures_the_network_against_the_fused_ensemble(smoke_run, smoke_data,
                                                                                smoke_bundle, tmp_path):
    videos = sorted(str(p) for p in (smoke_data / "infer").rglob("*.mp4"))[:4]
    out = tmp_path / "net"
    done = subprocess.run([sys.executable, "-m", "picojepa.benchmarks.cli", *videos, "--network",
                           "--bundle", str(smoke_bundle), "--run", str(smoke_run[0]), "--out", str(out),
                           "--rounds", "1"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads((out / "network.json").read_text())
    assert r["latency_ms"]["network_4_members"]["n"] == 4 and r["failed_network_videos"] == 0
    assert set(r["throughput_videos_per_s"]) == {"1", "2", "4", "fused_in_process"}
    assert r["losing_one"]["answered"] == 4 and r["losing_one"]["missing_reported"] == 4
    assert r["bytes_per_clip"] == 3 * 4 * 32 * 32  # uint8 frames of the smoke clip spec
    assert (out / "network.md").read_text().startswith("# Edge network")


@pytest.mark.slow
@pytest.mark.skipif(not (REAL / "bench").is_dir(), reason="needs the real clips")
def test_bench_streams_serves_camera_streams_and_reports_real_time(smoke_bundle, smoke_data, tmp_path):
    pytest.importorskip("av")
    from picojepa.benchmarks import streams

    labelled = sorted((smoke_data / "infer").glob("*/*.mp4"))[:3]
    r = streams.streams_report(smoke_bundle, str(REAL / "bench" / "video3__pytorch-android-demo.mp4"),
                               seconds=5.0, ladders={720: (1, 2), 360: (2,)}, labelled=labelled)
    k = r["skip_accuracy"]
    assert k["none"]["windows"] >= 3 and 0 <= k["nonref"]["accuracy"] <= 100
    assert 0 < k["nonref"]["frames_decoded"] <= k["none"]["frames_decoded"]
    big, small = r["sizes"]
    assert (big["size"], small["size"]) == ("1280x720", "640x360")
    assert [x["streams"] for x in big["runs"]][:1] == [1]
    one = big["runs"][0]
    assert one["errors"] == [] and one["windows"] >= 2 and one["latency_ms"]["n"] == one["windows"]
    assert one["decode_ms_per_window"]["p50"] > 0 and one["inference_ms_per_window"]["p50"] > 0
    assert 0 < one["converted_per_decoded"] < 0.6  # 8-frame clips of 60-frame windows, one a second
    assert 0 < one["cores_reader"] <= r["cores"] and 0 < one["cores_servers"] <= r["cores"]  # where the cores went
    for z in (big, small):
        assert z["decode"]["default"]["frames_out"] > z["decode"]["nonref"]["frames_out"] > 0
        assert z["limit_streams"] > 0 and set(z["variants"]) >= {"skip non-reference frames", "decoder threads 2"}
    assert small["limit_streams"] > big["limit_streams"]  # a quarter of the pixels decodes faster
    assert "Most streams in real time" in streams.markdown(r) and "limit line" in streams.markdown(r)


def test_stream_servers_all_listen_and_one_whose_port_was_taken_starts_again(tmp_path, monkeypatch):
    from picojepa.benchmarks import streams

    cam = tmp_path / "camera.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=30", "-t", "1",
                    "-c:v", "libx264", "-f", "mpegts", str(cam)], check=True, timeout=60)
    blocker = socket.socket()  # a port something else listens on by the time its server starts
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken, first, real = blocker.getsockname()[1], [], streams.free_ports

    def taken_first(n, avoid=frozenset()):
        ports = real(n, avoid)
        first.append(n)
        return [taken, *ports[1:]] if len(first) == 1 else ports

    monkeypatch.setattr(streams, "free_ports", taken_first)
    servers, ports = streams._start_servers(cam, 3, timeout_s=20)
    try:
        assert taken not in ports and len(set(ports)) == 3 and streams._serving(servers, ports)
        assert first == [3, 1]  # the one refused server started again on a new port
        assert not streams._serving(servers, [taken, *ports[1:]])  # a port another process listens on is not ours
    finally:
        streams._stop(servers)
        blocker.close()
