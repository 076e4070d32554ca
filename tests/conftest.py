import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from picojepa.core.decode import VIDEO_SUFFIXES
from picojepa.core.ports import free_port

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"


def real_clips(*folders: str) -> list[Path]:
    out = []
    for f in folders:
        d = REAL / f
        if d.is_dir():
            out += sorted(p for p in d.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    return out


needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real clips not found at {REAL}")


@pytest.fixture(autouse=True)
def seed_everything():
    """Every test starts from the same RNG state."""
    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:
        pass


@pytest.fixture(scope="session")
def smoke_recipe():
    from picojepa.train.recipe_file import load_recipe

    return load_recipe(REPO / "configs" / "smoke.yaml")


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory, smoke_recipe):
    from picojepa.train.synth import generate

    root = tmp_path_factory.mktemp("smoke_data")
    d = smoke_recipe.data
    generate(root, d.synth_classes, d.synth_videos_per_class, d.synth_seed)
    return root


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, smoke_recipe, smoke_data):
    """A complete smoke-recipe run (pre-train, classify, evaluate, report)."""
    from picojepa.train.pipeline import run_all

    run = tmp_path_factory.mktemp("smoke_run")
    report = run_all(smoke_recipe, smoke_data, run, show_progress=False)
    return run, report


def pytest_collection_modifyitems(config, items):
    has_cuda = False
    try:
        import onnxruntime as ort

        has_cuda = "CUDAExecutionProvider" in ort.get_available_providers() and bool(
            os.environ.get("CUDA_VISIBLE_DEVICES", "0") != "")
    except ImportError:
        pass
    import torch

    for item in items:
        if "needs_cuda" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs an NVIDIA GPU and onnxruntime-gpu"))
        if "needs_torch_cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="needs an NVIDIA GPU and torch with CUDA"))


@pytest.fixture(scope="session")
def smoke_bundle(smoke_run, tmp_path_factory):
    """The smoke run exported to a fused bundle (fp32)."""
    from picojepa.export.bundle import export_bundle

    out = tmp_path_factory.mktemp("smoke_bundle") / "bundle"
    export_bundle(smoke_run[0], out)
    return out


@pytest.fixture
def tiny_disk(tmp_path):
    """A 512 KiB tmpfs (root only): what a full disk does to a write."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def serve_looped(video, port: int) -> subprocess.Popen:
    """FFmpeg looping `video` as a real-time MPEG-TS stream on tcp://127.0.0.1:port (packets
    copied). FFmpeg's TCP server takes one client: a stream per reader."""
    return subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i", str(video),
                             "-c", "copy", "-f", "mpegts", f"tcp://127.0.0.1:{port}?listen=1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def looped_stream(smoke_data):
    """A built-in video looped as a real-time MPEG-TS stream over TCP on loopback (FFmpeg)."""
    port = free_port()
    proc = serve_looped(sorted((smoke_data / "infer").glob("*/*.mp4"))[0], port)
    time.sleep(0.5)
    yield f"tcp://127.0.0.1:{port}"
    proc.kill()
    proc.wait(10)


def run_cameras_until(bundle, camera_file, streams: dict, deadline_s: float = 60.0):
    """picojepa-run --cameras until each stream in `streams` (name -> windows wanted) has printed
    that many windows, or the deadline passes; then SIGTERM. Waiting on output, not on a fixed
    duration, keeps a slow machine's start-up (servers, imports, reconnects) out of the result."""
    import signal
    import threading

    run = subprocess.Popen([sys.executable, "-m", "picojepa.runtime.cli", "--bundle", str(bundle), "--format",
                            "json", "--cameras", str(camera_file)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=REPO)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(run.stdout.readline, "")), daemon=True).start()
    end = time.monotonic() + deadline_s
    try:
        while time.monotonic() < end and run.poll() is None:
            rows = [json.loads(x) for x in list(lines)]
            if all(sum(r.get("stream", n) == n for r in rows) >= k for n, k in streams.items()):
                break
            time.sleep(0.2)
        run.send_signal(signal.SIGTERM)
        err = run.communicate(timeout=60)[1]
    finally:
        run.kill()
    time.sleep(0.2)  # the reader thread's last lines
    return subprocess.CompletedProcess(run.args, run.returncode, "".join(lines), err)
