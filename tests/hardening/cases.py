"""The bad-input corpus: every case is generated here (no committed binaries), with the behaviour
the toolchain must show. `tests/hardening/test_corpus.py` checks each case; the table in
docs/bad-inputs.md is generated from this list (`python tests/hardening/cases.py > docs/bad-inputs.md`)
and a test keeps it current.

Expected behaviour, `ok`: the video is classified (exit 0 alone); anything else is the start of
the one-line reason printed as `error: <input>: <reason>` (exit 1 in a batch with good videos,
3 alone; bundle, config and data errors exit 3). Never a traceback, never invented frames.
"""
from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

FFMPEG = shutil.which("ffmpeg")


@dataclass(frozen=True)
class Case:
    id: str
    group: str  # video | bundle | config | data
    what: str
    expect: str  # "ok", or the start of the reason after "<input>: "
    make: Callable[[Path, dict], Path]  # (tmp dir, context) -> the input
    slow: bool = False
    needs: str = ""  # "ffmpeg" (the CLI) or "non-root"


# -- video generators ---------------------------------------------------------------------------
def ffmpeg(out: Path, *args: str, src: str = "testsrc2=size=96x64:rate=12:duration=2") -> Path:
    subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", src, *args, str(out)],
                   check=True, capture_output=True)
    return out


def _good(tmp: Path, name: str = "good.mp4") -> Path:
    return ffmpeg(tmp / name, "-c:v", "libx264", "-pix_fmt", "yuv420p")


def _bytes(name: str, data: bytes):
    def make(tmp: Path, ctx: dict) -> Path:
        p = tmp / name
        p.write_bytes(data)
        return p
    return make


def _truncated(fraction: float):
    def make(tmp: Path, ctx: dict) -> Path:
        data = _good(tmp, "src.mp4").read_bytes()
        p = tmp / f"truncated_{int(fraction * 100)}.mp4"
        p.write_bytes(data[:int(len(data) * fraction)])
        return p
    return make


def _ts_truncated(tmp: Path, ctx: dict) -> Path:
    """A camera recording cut mid-stream: MPEG-TS has no index to lose, the first half plays."""
    data = ffmpeg(tmp / "whole.ts", "-c:v", "libx264", "-bf", "3", "-f", "mpegts").read_bytes()
    p = tmp / "camera_cut.ts"
    p.write_bytes(data[:len(data) // 2])
    return p


def _faststart_truncated(tmp: Path, ctx: dict) -> Path:
    """Index at the front (as web videos have it), stream cut at 60 %: the header promises
    frames the file does not hold."""
    src = ffmpeg(tmp / "fs.mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart")
    p = tmp / "faststart_truncated.mp4"
    data = src.read_bytes()
    p.write_bytes(data[:int(len(data) * 0.6)])
    return p


def _corrupt_middle(tmp: Path, ctx: dict) -> Path:
    data = bytearray(_good(tmp, "src.mp4").read_bytes())
    at = int(len(data) * 0.4)  # inside the media data; the index (at the end) stays intact
    data[at:at + 1024] = random.Random(0).randbytes(1024)
    p = tmp / "corrupt_middle.mp4"
    p.write_bytes(bytes(data))
    return p


def _vid(name: str, *args: str, src: str = "testsrc2=size=96x64:rate=12:duration=2"):
    return lambda tmp, ctx: ffmpeg(tmp / name, *args, src=src)


def _audio_only(tmp: Path, ctx: dict) -> Path:
    return ffmpeg(tmp / "audio_only.mp4", "-c:a", "aac", src="sine=frequency=440:duration=1")


def _image(tmp: Path, ctx: dict) -> Path:
    return ffmpeg(tmp / "image.mp4", "-frames:v", "1", "-c:v", "png", "-f", "image2")


def _directory(tmp: Path, ctx: dict) -> Path:
    p = tmp / "x.mp4"
    p.mkdir()
    return p


def _dangling(tmp: Path, ctx: dict) -> Path:
    p = tmp / "dangling.mp4"
    p.symlink_to(tmp / "nowhere.mp4")
    return p


def _unreadable(tmp: Path, ctx: dict) -> Path:
    p = _good(tmp, "unreadable.mp4")
    p.chmod(0)
    return p


def _unicode(tmp: Path, ctx: dict) -> Path:
    return _good(tmp, "vidéo con espacio ñ 日本.mp4")


def _vfr(tmp: Path, ctx: dict) -> Path:
    # frames at irregular times: every third frame gets a long gap
    return ffmpeg(tmp / "vfr.mp4", "-vf", "setpts='N/12/TB+floor(N/3)*0.2/TB'", "-fps_mode", "vfr",
                  "-c:v", "libx264", "-pix_fmt", "yuv420p")


X264 = ("-c:v", "libx264")
VIDEO_CASES = [
    Case("zero_bytes", "video", "a 0-byte .mp4", "empty file", _bytes("zero.mp4", b"")),
    Case("random_bytes", "video", "64 KiB of random bytes named .mp4", "not a video file",
         _bytes("random.mp4", random.Random(1).randbytes(65536))),
    Case("text_file", "video", "a text file named .mp4", "not a video file",
         _bytes("text.mp4", b"this is not a video\n" * 50)),
    Case("missing", "video", "a path that does not exist", "no such file", lambda t, c: t / "absent.mp4"),
    Case("directory", "video", "a directory named x.mp4", "is a directory", _directory),
    Case("dangling_symlink", "video", "a symlink to nothing", "dangling symbolic link", _dangling),
    Case("unreadable", "video", "a file without read permission", "permission denied", _unreadable,
         needs="non-root"),
    Case("truncated_10", "video", "an H.264 MP4 cut at 10 % (index at the end: lost)", "not a video file",
         _truncated(0.10), needs="ffmpeg"),
    Case("truncated_50", "video", "the same cut at 50 %", "not a video file", _truncated(0.50), needs="ffmpeg"),
    Case("truncated_95", "video", "the same cut at 95 %", "not a video file", _truncated(0.95), needs="ffmpeg"),
    Case("faststart_truncated", "video", "index at the front, stream cut at 60 %", "ok",
         _faststart_truncated, needs="ffmpeg"),
    Case("corrupt_middle", "video", "1 KiB of random bytes inside the stream (40 %)", "corrupt video data",
         _corrupt_middle, needs="ffmpeg"),
    Case("audio_only", "video", "an MP4 with an audio stream and no video", "no video stream",
         _audio_only, needs="ffmpeg"),
    Case("image", "video", "a PNG image named .mp4 (one still frame)", "ok", _image, needs="ffmpeg"),
    Case("one_frame", "video", "an H.264 video of one frame (the clip repeats it)", "ok",
         _vid("one_frame.mp4", "-frames:v", "1", *X264), needs="ffmpeg"),
    Case("short", "video", "5 frames, shorter than a clip (last frame repeated)", "ok",
         _vid("short.mp4", "-frames:v", "5", *X264), needs="ffmpeg"),
    Case("tiny_16x16", "video", "16x16 frames", "ok",
         _vid("tiny.mp4", *X264, src="testsrc2=size=16x16:rate=12:duration=1"), needs="ffmpeg"),
    Case("huge_4k", "video", "3840x2160 frames", "ok",
         _vid("huge.mp4", *X264, "-preset", "ultrafast", src="testsrc2=size=3840x2160:rate=12:duration=0.5"),
         slow=True, needs="ffmpeg"),
    Case("odd_size", "video", "101x75 frames (odd width and height, 4:4:4)", "ok",
         _vid("odd.mp4", *X264, "-pix_fmt", "yuv444p", src="testsrc2=size=101x75:rate=12:duration=1"),
         needs="ffmpeg"),
    Case("portrait", "video", "64x112 portrait frames", "ok",
         _vid("portrait.mp4", *X264, src="testsrc2=size=64x112:rate=12:duration=1"), needs="ffmpeg"),
    Case("rotation", "video", "rotation metadata (90 degrees)", "ok",
         _vid("rotated.mp4", *X264, "-metadata:s:v:0", "rotate=90"), needs="ffmpeg"),
    Case("ten_bit", "video", "10-bit 4:2:0 (yuv420p10le)", "ok",
         _vid("tenbit.mp4", *X264, "-pix_fmt", "yuv420p10le"), needs="ffmpeg"),
    Case("yuv444", "video", "4:4:4 chroma (yuv444p)", "ok", _vid("yuv444.mp4", *X264, "-pix_fmt", "yuv444p"),
         needs="ffmpeg"),
    Case("grayscale", "video", "grayscale (gray, FFV1 in MKV)", "ok",
         _vid("gray.mkv", "-c:v", "ffv1", "-pix_fmt", "gray"), needs="ffmpeg"),
    Case("vfr", "video", "variable frame rate", "ok", _vfr, needs="ffmpeg"),
    Case("mkv", "video", "H.264 in Matroska", "ok", _vid("clip.mkv", *X264), needs="ffmpeg"),
    Case("webm", "video", "VP9 in WebM", "ok", _vid("clip.webm", "-c:v", "libvpx-vp9", "-deadline", "realtime"),
         needs="ffmpeg"),
    Case("avi", "video", "MPEG-4 Part 2 in AVI", "ok", _vid("clip.avi", "-c:v", "mpeg4"), needs="ffmpeg"),
    Case("mpegts_bframes", "video", "H.264 with B-frames in MPEG-TS (a camera recording; remuxed to MP4 first)",
         "ok", _vid("camera.ts", *X264, "-bf", "3", "-f", "mpegts"), needs="ffmpeg"),
    Case("mpegts_truncated", "video", "the same recording cut at 50 %", "ok",
         _ts_truncated, needs="ffmpeg"),
    Case("unicode_path", "video", "a path with spaces and non-ASCII characters", "ok", _unicode,
         needs="ffmpeg"),
]


# -- bundle corruptions (ctx["bundle"] is a good bundle to copy) --------------------------------
def _bundle_copy(tmp: Path, ctx: dict) -> Path:
    out = tmp / "bundle"
    shutil.copytree(ctx["bundle"], out)
    return out


def _manifest_edit(fn):
    def make(tmp: Path, ctx: dict) -> Path:
        import json

        b = _bundle_copy(tmp, ctx)
        m = json.loads((b / "manifest.json").read_text())
        fn(m)
        (b / "manifest.json").write_text(json.dumps(m))
        return b
    return make


def _missing_graph(tmp, ctx):
    b = _bundle_copy(tmp, ctx)
    (b / "ensemble.onnx").unlink()
    return b


def _flipped(tmp, ctx):
    b = _bundle_copy(tmp, ctx)
    f = b / "ensemble.onnx"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    return b


def _not_json(tmp, ctx):
    b = _bundle_copy(tmp, ctx)
    (b / "manifest.json").write_text("{oops")
    return b


def _wrong_shape(tmp, ctx):
    """The manifest's clip and model disagree: the size edited, hashes still valid."""
    return _manifest_edit(lambda m: m["clip"].update(size=m["clip"]["size"] * 2))(tmp, ctx)


BUNDLE_CASES = [
    Case("bundle_missing_graph", "bundle", "the member graph file deleted", "ensemble.onnx: listed in the manifest but missing", _missing_graph),
    Case("bundle_flipped_byte", "bundle", "one byte flipped in the member graph", "ensemble.onnx: sha256 does not match the manifest", _flipped),
    Case("bundle_missing_key", "bundle", "manifest without 'classes'", "manifest.json: missing key 'classes'",
         _manifest_edit(lambda m: m.pop("classes"))),
    Case("bundle_future_format", "bundle", "manifest of an unknown format version", "manifest.json: format_version 99 is not supported",
         _manifest_edit(lambda m: m.update(format_version=99))),
    Case("bundle_path_escape", "bundle", "a graph path outside the bundle (../)", "escapes the bundle",
         _manifest_edit(lambda m: m["graphs"][0].update(file="../../etc/passwd"))),
    Case("bundle_class_count", "bundle", "the manifest lists one class more than the model has",
         "model has", _manifest_edit(lambda m: (m["classes"].append("extra"),
                                                 m.pop("stacking", None)))),
    Case("bundle_input_shape", "bundle", "the model's input shape does not match the clip spec",
         "model input", _wrong_shape),
    Case("bundle_not_json", "bundle", "manifest.json is not JSON",
         "manifest.json is not valid JSON", _not_json),
]




# -- configs and data layouts ---------------------------------------------------------------------
def _config(text: str):
    def make(tmp: Path, ctx: dict) -> Path:
        p = tmp / "recipe.yaml"
        p.write_text(f"base: {ctx['configs']}/smoke.yaml\n{text}")
        return p
    return make


CONFIG_CASES = [
    Case("config_unknown_key", "config", "an unknown key (model.widht)", "model.widht: unknown key",
         _config("model:\n  widht: 3\n")),
    Case("config_wrong_type", "config", "a string where an integer belongs", "model.depth: expected an integer",
         _config("model:\n  depth: deep\n")),
    Case("config_zero_size", "config", "clip size 0", "clip: size must be >= 8", _config("clip:\n  size: 0\n")),
    Case("config_negative", "config", "negative epochs", "pretrain: epochs and batch_size: must be >= 1", _config("pretrain:\n  epochs: -1\n")),
    Case("config_not_yaml", "config", "not YAML at all", "not valid YAML", _config("model: [unclosed\n")),
]


def _layout(edit):
    def make(tmp: Path, ctx: dict) -> Path:
        root = tmp / "data"
        shutil.copytree(ctx["data"], root, symlinks=True)
        edit(root)
        return root
    return make


def _csv(name: str, text: str):
    return _layout(lambda root: (root / "train" / name).write_text(text))


DATA_CASES = [
    Case("csv_missing_column", "data", "train.csv without its 'video_name' header", "first column must be",
         _csv("train.csv", "path\nx.mp4\n")),
    Case("csv_missing_file", "data", "train.csv naming a file that does not exist", "file not found",
         _csv("train.csv", "video_name\nnothing_here.mp4\n")),
    Case("csv_escapes_root", "data", "train.csv naming ../../etc/passwd", "escapes",
         _csv("train.csv", "video_name\n../../etc/passwd\n")),
    Case("csv_no_label_column", "data", "model-1.csv without its 'label' column", "missing column 'label'",
         _csv("model-1.csv", "video_name\nx.mp4\n")),
    Case("no_classind", "data", "a data root without classInd.txt", "classInd.txt",
         _layout(lambda root: (root / "classInd.txt").unlink())),
]

ALL = VIDEO_CASES + BUNDLE_CASES + CONFIG_CASES + DATA_CASES


def table() -> str:
    lines = ["# Bad inputs and what the toolchain does with them", "",
             "Generated from `tests/hardening/cases.py` (`python tests/hardening/cases.py > docs/bad-inputs.md`);",
             "`tests/hardening/test_corpus.py` checks every row on every `make test` (rows marked slow: "
             "`make test-slow`) and keeps this file current.", "",
             "Every error is one line, `error: <input>: <reason>`, with no traceback. Videos: exit 1 when "
             "other videos of the batch succeeded (they are all answered), 3 when none did. Bundles, "
             "configs and data roots: exit 3.", "",
             f"{len(ALL)} cases.", "",
             "| # | case | input | expected |", "|---|---|---|---|"]
    for i, c in enumerate(ALL, 1):
        exp = "classified (exit 0)" if c.expect == "ok" else f"`{c.expect}…`"
        tags = " ".join(t for t in (("slow" if c.slow else ""), (f"needs {c.needs}" if c.needs else "")) if t)
        lines.append(f"| {i} | `{c.id}` ({c.group}{', ' + tags if tags else ''}) | {c.what} | {exp} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(), end="")
