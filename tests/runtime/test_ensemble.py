import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from picojepa.core.bundle import load_bundle, seal
from picojepa.core.errors import BundleError, DecodeError
from picojepa.runtime.cli import main as run_main
from picojepa.runtime.ensemble import Ensemble
from picojepa.train.answer import column

from conftest import REAL, needs_real

SCHEMA = {"file", "label", "index", "confidence", "vote", "members", "timings_ms", "error",
          "windows", "timeline", "missing"}


@pytest.fixture(scope="module")
def bundle(smoke_bundle):
    return smoke_bundle


def test_runtime_accuracy_equals_the_evaluation_report(bundle, smoke_run):
    _, report = smoke_run
    ens = Ensemble.load(bundle, provider="cpu")
    paths = report.predictions["paths"]
    got = [p.index for p in ens.predict_many(paths)]
    assert got == report.predictions[column(ens.bundle.default_answer)]
    assert [p.index for p in ens.predict_many(paths, vote="majority")] == report.predictions["vote_majority"]
    general = [p.members["general"].index for p in ens.predict_many(paths)]
    assert general == report.predictions["general"]
    assert ens.stacker is not None
    stacked = [p.index for p in ens.predict_many(paths, vote="stacked")]
    assert stacked == report.predictions["vote_stacked"]


def test_vote_stacked_on_a_bundle_without_a_stacker_is_a_one_line_error(bundle, smoke_data, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(bundle, b)
    m = json.loads((b / "manifest.json").read_text())
    del m["stacking"]
    (b / "manifest.json").write_text(json.dumps(seal(m)))
    video = str(next((smoke_data / "infer").rglob("*.mp4")))
    r = CliRunner().invoke(run_main, ["--bundle", str(b), "--vote", "stacked", video])
    assert r.exit_code == 3 and "no stacking meta-model" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output
    r = CliRunner().invoke(run_main, ["--bundle", str(b), "--vote", "soft", "--format", "json", video])
    assert r.exit_code == 0 and json.loads(r.stdout)["vote"] == "soft"


@needs_real
@pytest.mark.parametrize("placement", ["exact", "keyframe"])
def test_training_and_runtime_preprocessing_are_identical_on_real_videos(bundle, placement):
    from picojepa.train.dataset import ClipDataset, multi_clips

    ens = Ensemble.load(bundle, provider="cpu", placement=placement)
    videos = sorted((REAL / "bench").glob("*.mp4"))[:4] + sorted((REAL / "bench").glob("*.avi"))[:1]
    for cache_mb in (0, 256):  # decoded per clip, and sliced from the training cache
        ds = ClipDataset([(v, 0) for v in videos], ens.bundle.clip, mode="center", cache_mb=cache_mb)
        for i, v in enumerate(videos):
            assert np.abs(ds[i]["clip"].numpy() - ens.decode(v).clips[0]).max() <= 1e-5, v.name
    for v in videos[:2]:  # the classifiers' feature clips
        assert np.abs(multi_clips(v, ens.bundle.clip, 3) - ens.decode(v, clips=3).clips).max() <= 1e-5


def test_predict_raises_decode_error_and_batch_carries_on(bundle, smoke_data, tmp_path):
    ens = Ensemble.load(bundle, provider="cpu")
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(DecodeError, match="bad.mp4"):
        ens.predict(bad)
    good = next((smoke_data / "infer").rglob("*.mp4"))
    for prefetch in (False, True):
        preds = list(ens.predict_many([good, bad, good], prefetch=prefetch))
        assert [p.error is None for p in preds] == [True, False, True]


def test_cli_json_schema_and_exit_codes(bundle, smoke_data, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 100)
    runner = CliRunner()
    r = runner.invoke(run_main, ["--bundle", str(bundle), "--format", "json", "--no-progress",
                                 str(smoke_data / "infer"), str(bad)])
    assert r.exit_code == 1, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert all(set(row) == SCHEMA for row in rows)
    assert sum(row["error"] is not None for row in rows) == 1
    ok = [row for row in rows if row["error"] is None]
    assert set(ok[0]["timings_ms"]) == {"decode", "preprocess", "inference", "vote", "total"}
    assert set(ok[0]["members"]) == {"general", "1", "2", "3", "4"}
    assert "broken.mp4" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(run_main, ["--bundle", str(bundle), str(bad)])
    assert r.exit_code == 3


def test_sliding_windows_and_multi_clip(bundle, smoke_data):
    ens = Ensemble.load(bundle, provider="cpu")
    video = next((smoke_data / "infer").rglob("*.mp4"))
    p = ens.predict(video, window_s=0.5, stride_s=0.5)
    assert p.windows and len(p.windows) == len(p.timeline)
    assert all(w["end_s"] > w["start_s"] for w in p.windows)
    assert ens.predict(video, clips=3).label in ens.classes


@needs_real
def test_cli_placement_keyframe_classifies_from_the_keyframe(bundle):
    video = REAL / "bench" / "test__mmaction2-tests.mp4"  # centre clip ~140 frames from a keyframe
    runs = {}
    for placement in ("exact", "keyframe"):
        r = CliRunner().invoke(run_main, ["--bundle", str(bundle), "--format", "json",
                                          "--placement", placement, str(video)])
        assert r.exit_code == 0, r.output
        runs[placement] = json.loads(r.stdout)
    ens = Ensemble.load(bundle, provider="cpu", placement="keyframe")
    assert runs["keyframe"]["confidence"] == pytest.approx(ens.predict(video).confidence, abs=1e-6)
    assert ens.decode(video).spans[0][0] * 30 == pytest.approx(235, abs=1)  # starts at the keyframe


@pytest.mark.parametrize("damage,message", [
    ("flip", "sha256 does not match"),
    ("remove_member", "listed in the manifest but missing"),
    ("drop_key", "missing key 'classes'"),
    ("version", "format_version 99 is not supported"),
    ("escape", "escapes the bundle"),
    ("stacking_shape", "'stacking' weight"),
    ("stacking_members", "'stacking' must combine"),
])
def test_damaged_bundles_are_refused_with_the_reason(bundle, tmp_path, damage, message):
    b = tmp_path / "b"
    shutil.copytree(bundle, b)
    m = json.loads((b / "manifest.json").read_text())
    if damage == "flip":
        data = bytearray((b / "ensemble.onnx").read_bytes())
        data[len(data) // 2] ^= 1
        (b / "ensemble.onnx").write_bytes(bytes(data))
    elif damage == "remove_member":
        (b / "ensemble.onnx").unlink()
    elif damage == "drop_key":
        del m["classes"]
    elif damage == "version":
        m["format_version"] = 99
    elif damage == "escape":
        m["graphs"][0]["file"] = "../../etc/passwd"
    elif damage == "stacking_shape":
        m["stacking"]["weight"] = m["stacking"]["weight"][1:]
    elif damage == "stacking_members":
        m["stacking"]["members"] = ["1", "2"]
    (b / "manifest.json").write_text(json.dumps(seal(m)))
    with pytest.raises(BundleError, match=message):
        load_bundle(b)
    r = CliRunner().invoke(run_main, ["--bundle", str(b), "x.mp4"])
    assert r.exit_code == 3 and message.split()[0] in r.stderr and "Traceback" not in r.output


def test_sessions_do_not_spin_between_runs(bundle):
    """Decoding runs beside inference (prefetch, camera readers): onnxruntime's threads must not
    keep a core busy waiting for the next run."""
    from picojepa.runtime.session import SPINNING

    for ens, want in ((Ensemble.load(bundle, provider="cpu"), "0"),
                      (Ensemble(load_bundle(bundle), "cpu", spinning=True), "1")):  # onnxruntime's default
        assert {s.get_session_options().get_session_config_entry(SPINNING) for s, _ in ens.sessions} == {want}
        ens.close()


def test_the_spinning_benchmark_runs_both_settings_on_the_same_videos(bundle, smoke_data):
    from picojepa.benchmarks.spinning import files

    videos = sorted(str(v) for v in (smoke_data / "infer").glob("*/*"))[:3]
    out = files(bundle, videos, rounds=2)
    assert out["same_answers"] and out["videos"] == 3
    assert all(len(out[k][m]) == 2 for k in ("spinning", "not_spinning") for m in ("wall_s", "cpu_s"))


def test_cuda_provider_without_cuda_is_an_error_not_a_cpu_run(bundle):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    r = CliRunner().invoke(run_main, ["--bundle", str(bundle), "--provider", "cuda", "x.mp4"])
    assert r.exit_code == 3 and "CUDA" in r.stderr


def test_gpu_decoding_without_a_gpu_is_an_error_not_a_cpu_decode(bundle):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    r = CliRunner().invoke(run_main, ["--bundle", str(bundle), "--decode-device", "cuda", "x.mp4"])
    assert r.exit_code == 3 and "--decode-device cuda" in r.stderr and "Traceback" not in r.output


@pytest.mark.needs_cuda
@needs_real
def test_gpu_decoding_matches_cpu_decoding_and_answers_the_same(bundle):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("this torch build sees no CUDA device (GPU decoding needs a CUDA torch)")
    videos = sorted((REAL / "bench").glob("*.mp4"))[:4]
    cpu = Ensemble.load(bundle, provider="cpu")
    gpu = Ensemble.load(bundle, provider="cpu", decode_device="cuda")
    for v in videos:
        a, b = cpu.decode(v), gpu.decode(v)
        assert b.error is None and a.clips.shape == b.clips.shape, v.name
        # NVDEC and FFmpeg's software decoder differ slightly in colour conversion and scaling
        assert np.abs(a.clips - b.clips).mean() < 0.1, v.name
        assert cpu.finish(a).label == gpu.finish(b).label, v.name


@pytest.mark.needs_cuda
def test_cuda_provider_runs_and_matches_cpu(bundle, smoke_data):
    video = next((smoke_data / "infer").rglob("*.mp4"))
    cpu = Ensemble.load(bundle, provider="cpu").predict(video)
    gpu = Ensemble.load(bundle, provider="cuda")
    assert gpu.provider == "cuda"
    assert gpu.predict(video).label == cpu.label


@needs_real
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")
def test_a_folder_with_camera_mpegts_recordings_classifies_every_file(bundle, smoke_data, tmp_path):
    import subprocess

    folder = tmp_path / "camera"
    folder.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(REAL / "bench" / "video3__pytorch-android-demo.mp4"),
                    "-t", "3", "-c:v", "libx264", "-bf", "3", "-f", "mpegts", str(folder / "cam.ts")],
                   check=True, timeout=120)
    shutil.copy(next((smoke_data / "infer").rglob("*.mp4")), folder / "clip.mp4")
    r = CliRunner().invoke(run_main, ["--bundle", str(bundle), "--format", "json", str(folder)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(Path(row["file"]).name for row in rows) == ["cam.ts", "clip.mp4"]
    assert all(row["error"] is None for row in rows)


def test_a_graph_giving_nan_is_that_videos_error_never_a_label(bundle, smoke_data):
    """A broken graph's NaN probabilities are argmax-ed to class 0 with no sign of it: refused."""
    ens = Ensemble.load(bundle, provider="cpu")
    nan = np.full((len(ens.bundle.members), 1, len(ens.classes)), np.nan, np.float32)
    ens.member_probs = lambda batch: nan
    video = sorted((smoke_data / "infer").rglob("*.mp4"))[0]
    p = next(iter(ens.predict_many([video])))
    assert p.label is None and "non-finite probabilities" in p.error and str(video) in p.error
