"""`picojepa-bench --streams`'s levers in the report, on made-up ladder results (no streams)."""
import pytest

from picojepa.benchmarks import streams
from picojepa.runtime.live.options import LiveStats


def _run(n: int, real_time: bool, gated: float = 0.0) -> dict:
    cpu = {"decode": 30.0, "convert": 10.0, "gate": 1.0, "inference_and_rest": 40.0, "inference_wall": 20.0}
    return {"streams": n, "real_time": real_time, "windows": 10 * n, "dropped": 0, "fps_min": 30.0,
            "latency_ms": {"p50": 10, "p90": 20}, "decode_ms_per_window": {"p50": 5}, "inference_ms_per_window": {"p50": 3},
            "converted_per_decoded": 0.25, "cores_reader": 1.0, "cores_servers": 0.1, "gated_share": gated,
            "cpu_ms_per_stream_s": cpu}


def test_the_levers_are_today_each_alone_and_all_three_and_the_report_sets_each_beside_today():
    assert list(streams.LEVERS) == ["today", "deblocking skip", "motion gate", "one-step conversion",
                                    "all three (the defaults)"]
    today, both = streams.LEVERS["today"], streams.LEVERS["all three (the defaults)"]
    assert (today.skip_loop_filter, today.motion_gate, today.one_step_convert) == (False, None, False)
    assert both.skip_loop_filter and both.motion_gate == streams.DEFAULT_THRESHOLD and both.one_step_convert
    levers = {"today": [_run(4, True), _run(8, False)], "all three (the defaults)": [_run(4, True), _run(8, True, 0.5),
                                                                                 _run(12, False)]}
    z = {"size": "640x360", "levers": levers, "runs": levers["all three (the defaults)"], "most_by_lever": {
         "today": 4, "all three (the defaults)": 8}, "max_real_time_streams": 8, "limit_streams": 50.0,
         "limit_streams_loop_filter_skipped": 62.0, "variants_at": 12, "variants": {},
         "decode": {k: {"decode_ms_per_frame_out": 1.0, "scale_ms_per_frame_out": 1.0, "one_step_scale_ms_per_frame_out": 1.0}
                    for k in ("default", "nonref", "loop_filter_skipped")} | {"frames_kept_by_nonref": 0.65}}
    md = streams.markdown({"camera": "cam", "source": "v.mp4", "bundle": "b", "window_s": 2.0, "stride_s": 1.0,
                           "cores": 2, "sizes": [z]})
    assert "| all three (the defaults) | 8 | 2.00 | 50% | 30 / 10 / 1.0 / 40 (20) |" in md
    assert "62.0 without it" in md and "Most streams in real time (all three (the defaults)): 8" in md


def test_the_cpu_breakdown_splits_the_process_time_by_step():
    a, b = LiveStats(decode_cpu_ms=2000.0, convert_cpu_ms=500.0), LiveStats(decode_cpu_ms=1000.0, gate_cpu_ms=100.0)
    got = streams._breakdown([a, b], inference_ms=400.0, process_s=8.0, wall=10.0)
    assert got == {"decode": 150.0, "convert": 25.0, "gate": 5.0, "inference_and_rest": pytest.approx(220.0),
                   "inference_wall": 20.0}


def test_the_cli_measures_only_the_levers_named_for_as_long_as_asked(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from picojepa.benchmarks import cli

    video = tmp_path / "cam.mp4"
    video.write_bytes(b"")
    asked = {}

    def fake_report(bundle, source, seconds, threads, labelled=(), levers=()):
        asked.update(seconds=seconds, levers=levers)
        raise streams.BenchError("stop here")

    monkeypatch.setattr(streams, "streams_report", fake_report)
    r = CliRunner().invoke(cli.main, [str(video), "--streams", "--lever", "defaults", "--lever", "today",
                                      "--stream-seconds", "6", "--out", str(tmp_path / "out")])
    assert asked == {"seconds": 6.0, "levers": ("today", "all three (the defaults)")}  # LEVERS' order
    assert r.exit_code != 0 and "stop here" in r.output
    r = CliRunner().invoke(cli.main, [str(video), "--lever", "gate", "--out", str(tmp_path / "out2")])
    assert r.exit_code == 2 and "apply to --streams only" in r.output


@pytest.mark.parametrize("top, tried, most", [(10, [1, 4, 8, 12, 10, 11], 10), (8, [1, 4, 8, 12, 10, 9], 8),
                                              (40, [1, 4, 8, 12], 12), (0, [1], 0)])
def test_a_ladder_finds_its_top_to_one_stream_by_halving_the_last_gap(monkeypatch, top, tried, most):
    asked = []

    def fake(ens, camera, n, seconds, opts):
        asked.append(n)
        return {"streams": n, "real_time": n <= top}

    monkeypatch.setattr(streams, "concurrent", fake)
    runs = streams._ladder(None, None, (1, 4, 8, 12), 1.0, None)
    assert asked == tried
    assert [r["streams"] for r in runs] == sorted(tried)
    assert streams._most(runs) == most


def test_the_spinning_benchmark_runs_its_streams_with_the_live_defaults(monkeypatch, tmp_path):
    """`python -m picojepa.benchmarks.spinning streams` measures the lever that is the live defaults."""
    from picojepa.benchmarks import spinning

    used = []
    monkeypatch.setattr(spinning, "_pair", lambda bundle: {True: "spin", False: "still"})
    monkeypatch.setattr(streams, "camera_file", lambda source, tmp, size: tmp_path / "cam.ts")

    def fake(ens, camera, n, seconds, opts):
        used.append((ens, opts))
        return dict.fromkeys(("real_time", "fps_min", "dropped", "windows", "cores_reader", "cpu_ms_per_stream_s",
                              "inference_ms_per_window"), 0)

    monkeypatch.setattr(streams, "concurrent", fake)
    out = spinning.camera_streams(tmp_path / "b", "v.mp4", 3, 360, rounds=2, seconds=4.0)
    assert [e for e, _ in used] == ["spin", "still", "still", "spin"]
    assert all(o == streams.LEVERS["all three (the defaults)"] for _, o in used)
    assert len(out["spinning"]) == len(out["not_spinning"]) == 2
