"""`picojepa-run --explain CLIP --out DIR`: one clip's occlusion map, from the bundle on
onnxruntime, written as PNG files without an image library; with the runtime install only."""
import json
import subprocess
import sys
import zlib

import numpy as np
from click.testing import CliRunner

from picojepa.runtime.cli import main as run_main
from picojepa.runtime.explain import FILES
from picojepa.runtime.png import apng, png

# What a runtime-only install lacks (the training and export extras): importing any of them fails.
RUNTIME_ONLY = """
import importlib.abc, sys
BLOCKED = ("PIL", "matplotlib", "sklearn", "onnx", "onnxscript", "picojepa.train", "picojepa.export")
class Hide(importlib.abc.MetaPathFinder):  # every finder, blind to the blocked packages (as if absent)
    def __init__(self, inner):
        self.inner = inner
    def find_spec(self, name, path=None, target=None):
        if name in BLOCKED or name.startswith(tuple(b + "." for b in BLOCKED)):
            return None
        return self.inner.find_spec(name, path, target)
    def invalidate_caches(self):
        getattr(self.inner, "invalidate_caches", lambda: None)()
sys.meta_path[:] = [Hide(f) for f in sys.meta_path]
from picojepa.runtime.cli import main
main()
"""


def _held_out(smoke_data) -> str:
    return str(sorted((smoke_data / "infer").glob("*/*.mp4"))[0])


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, i = [], 8
    while i < len(data):
        n = int.from_bytes(data[i:i + 4], "big")
        out.append((data[i + 4:i + 8], data[i + 8:i + 8 + n]))
        i += 12 + n
    return out


def test_png_holds_the_pixels_it_was_given():
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    chunks = dict(_chunks(png(img)))
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(5, 1 + 7 * 3)
    assert (rows[:, 0] == 0).all() and (rows[:, 1:].reshape(5, 7, 3) == img).all()


def test_apng_holds_every_frame():
    frames = np.random.default_rng(0).integers(0, 256, (4, 6, 6, 3), dtype=np.uint8)
    kinds = [k for k, _ in _chunks(apng(frames))]
    assert kinds.count(b"fcTL") == 4 and kinds.count(b"fdAT") == 3 and kinds.count(b"IDAT") == 1
    assert kinds.index(b"acTL") < kinds.index(b"IDAT")


def test_explain_writes_the_map_of_a_clip_from_the_runtime_install_only(smoke_bundle, smoke_data, tmp_path):
    out = tmp_path / "why"
    r = subprocess.run([sys.executable, "-c", RUNTIME_ONLY, "--bundle", str(smoke_bundle), "--explain",
                        _held_out(smoke_data), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert (out / "occlusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [k for k, _ in _chunks((out / "occlusion-animated.png").read_bytes())].count(b"fcTL") > 1
    got = json.loads((out / "occlusion.json").read_text())
    drop = np.asarray(got["occlusion"]["drop"])
    assert drop.ndim == 3 and got["label"] in got["classes"] and got["occlusion"]["target"] == got["index"]
    assert str(out / "occlusion.png") in r.stdout and got["label"] in r.stdout


def test_explain_without_out_is_a_usage_error():
    r = CliRunner().invoke(run_main, ["--bundle", "/nonexistent/bundle", "--explain", "clip.mp4"])
    assert r.exit_code == 2 and "--out" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_explain_takes_one_clip(tmp_path):
    r = CliRunner().invoke(run_main, ["--bundle", "/nonexistent/bundle", "--explain", "a.mp4", "--out",
                                      str(tmp_path), "b.mp4"])
    assert r.exit_code == 2 and "b.mp4" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
