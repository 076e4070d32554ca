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


def _latin1_name(tmp: Path, ctx: dict) -> Path:
    import os

    return _good(tmp).rename(tmp / os.fsdecode(b"vid\xe9o.mp4"))


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
    Case("non_utf8_name", "video", "a file name in Latin-1 (not valid UTF-8)", "the file name is not valid UTF-8",
         _latin1_name, needs="ffmpeg"),
]


# -- bundle corruptions (ctx["bundle"] is a good bundle to copy) --------------------------------
def _bundle_copy(tmp: Path, ctx: dict) -> Path:
    out = tmp / "bundle"
    shutil.copytree(ctx["bundle"], out)
    return out


def _manifest_edit(fn, reseal: bool = True):
    """A copy of the bundle with its manifest edited by `fn`; `reseal` recomputes the manifest's
    own checksum (as a buggy exporter would write it), so the checks behind it are reached."""
    def make(tmp: Path, ctx: dict) -> Path:
        import json

        from picojepa.core.bundle import seal

        b = _bundle_copy(tmp, ctx)
        m = json.loads((b / "manifest.json").read_text())
        fn(m)
        (b / "manifest.json").write_text(json.dumps(seal(m) if reseal else m))
        return b
    return make


def _unfinished(tmp, ctx):
    """What an export killed half-way leaves beside --out: its draft, never verified."""
    from picojepa.core.outdir import INCOMPLETE

    b = _bundle_copy(tmp, ctx)
    (b / INCOMPLETE).write_text("")
    return b


def _manifest_latin1(tmp, ctx):
    b = _bundle_copy(tmp, ctx)
    (b / "manifest.json").write_bytes((b / "manifest.json").read_bytes().replace(b'"', b'\xab', 1))
    return b


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


def _graph_edit(fn):
    """A copy of the bundle whose graph is rewritten by `fn(bytes) -> bytes`, the manifest's sha256
    of it updated and resealed (as a buggy exporter would write it), so the graph checks are reached."""
    def edit(m: dict, b: Path) -> None:
        import hashlib

        f = b / m["graphs"][0]["file"]
        f.write_bytes(fn(f.read_bytes()))
        m["graphs"][0].update(sha256=hashlib.sha256(f.read_bytes()).hexdigest(), bytes=f.stat().st_size)

    def make(tmp: Path, ctx: dict) -> Path:
        b = _bundle_copy(tmp, ctx)
        import json

        from picojepa.core.bundle import seal

        m = json.loads((b / "manifest.json").read_text())
        edit(m, b)
        (b / "manifest.json").write_text(json.dumps(seal(m)))
        return b
    return make


def _extra_input(data: bytes) -> bytes:
    """The same graph asking for a second input ('mask') that the runtime never feeds."""
    import onnx

    model = onnx.load_from_string(data)
    model.graph.input.append(onnx.helper.make_tensor_value_info("mask", onnx.TensorProto.FLOAT, ["batch", 8]))
    return model.SerializeToString()


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
         "manifest.json: not valid JSON", _not_json),
    Case("bundle_not_utf8", "bundle", "manifest.json with a byte that is not UTF-8",
         "manifest.json: not UTF-8 text", _manifest_latin1),
    Case("bundle_classes_reordered", "bundle", "the manifest's class names reordered by hand (would relabel "
         "every answer)", "manifest.json: its checksum does not match",
         _manifest_edit(lambda m: m["classes"].reverse(), reseal=False)),
    Case("bundle_classes_not_names", "bundle", "a class list of [1, null, {}] (checksum recomputed)",
         "'classes' must be a list of distinct non-empty names",
         _manifest_edit(lambda m: m.update(classes=[1, None, {}]))),
    Case("bundle_graph_file_not_text", "bundle", "a graph whose file is a number (checksum recomputed)",
         "each graph needs file, sha256 and variant", _manifest_edit(lambda m: m["graphs"][0].update(file=7))),
    Case("bundle_layout_unknown", "bundle", "an unknown layout (checksum recomputed)", "layout 'bogus' is none of",
         _manifest_edit(lambda m: m.update(layout="bogus"))),
    Case("bundle_clip_std_tiny", "bundle", "a clip std of 1e-9 (checksum recomputed)", "bad clip spec",
         _manifest_edit(lambda m: m["clip"].update(std=[1e-9, 0.5, 0.5]))),
    Case("bundle_vote_weights_zero", "bundle", "every vote weight 0 (checksum recomputed)", "not all zero",
         _manifest_edit(lambda m: m.update(vote_weights={k: 0 for k in m["vote_weights"]}))),
    Case("bundle_vote_weights_missing", "bundle", "no vote weights at all (checksum recomputed)",
         "must give every voting member a weight", _manifest_edit(lambda m: m.update(vote_weights={}))),
    Case("bundle_default_vote_unknown", "bundle", "a default vote of 'bogus' (checksum recomputed)",
         "default_vote 'bogus' is none of", _manifest_edit(lambda m: m.update(default_vote="bogus"))),
    Case("bundle_graph_not_onnx", "bundle", "a graph file of text, not ONNX (sha256 recomputed)",
         "ensemble.onnx: onnxruntime cannot load it", _graph_edit(lambda data: b"not an onnx graph\n" * 64)),
    Case("bundle_graph_truncated", "bundle", "the graph cut at half its size (sha256 recomputed)",
         "ensemble.onnx: onnxruntime cannot load it", _graph_edit(lambda data: data[:len(data) // 2])),
    Case("bundle_graph_other_input", "bundle", "a graph that needs a second input (sha256 recomputed)",
         "takes 'clip' alone", _graph_edit(_extra_input)),
    Case("bundle_vote_members_not_names", "bundle", "vote_members of [{}] (checksum recomputed)",
         "'vote_members' must be a list of distinct non-empty names",
         _manifest_edit(lambda m: m.update(vote_members=[{}]))),
    Case("bundle_graph_members_not_names", "bundle", "a graph whose members are [{}] (checksum recomputed)",
         "each graph needs file, sha256 and variant", _manifest_edit(lambda m: m["graphs"][0].update(members=[{}]))),
    Case("bundle_graph_file_nul", "bundle", "a graph file name with a NUL byte (checksum recomputed)",
         "is not a usable path", _manifest_edit(lambda m: m["graphs"][0].update(file="ensemble\u0000.onnx"))),
    Case("bundle_default_answer_huge", "bundle", "a default_answer of 100 000 characters (checksum recomputed)",
         "default_answer 'xxx", _manifest_edit(lambda m: m.update(default_answer="x" * 100_000))),
    Case("bundle_default_answer_list", "bundle", "a default_answer that is a list (checksum recomputed)",
         "default_answer [] is none of", _manifest_edit(lambda m: m.update(default_answer=[]))),
    Case("bundle_unfinished_export", "bundle", "the draft an export killed part-way leaves (INCOMPLETE inside)",
         "an export that never finished left this folder", _unfinished),
]




# -- configs and data layouts ---------------------------------------------------------------------
def _fifo(name: str):
    """A named pipe called `name`: reading it would wait forever."""
    def make(tmp: Path, ctx: dict) -> Path:
        import os

        p = tmp / name
        os.mkfifo(p)
        return p
    make.__name__ = f"fifo_{name}"
    return make


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
    Case("config_zero_size", "config", "clip size 0", "clip: size must be an integer in [8, 2048]", _config("clip:\n  size: 0\n")),
    Case("config_negative", "config", "negative epochs", "pretrain: epochs and batch_size: must be >= 1", _config("pretrain:\n  epochs: -1\n")),
    Case("config_not_yaml", "config", "not YAML at all", "not valid YAML", _config("model: [unclosed\n")),
    Case("config_empty", "config", "an empty recipe file (would train base.yaml's large defaults)",
         "empty recipe", _bytes("recipe.yaml", b"")),
    Case("config_not_utf8", "config", "a recipe saved as Latin-1 (an accented comment)",
         "not UTF-8 text", _bytes("recipe.yaml", "# recette d\u2019\u00e9t\u00e9\nseed: 1\n".encode("latin-1", "replace"))),
    Case("config_binary", "config", "a binary file given as the recipe", "not UTF-8 text",
         _bytes("recipe.yaml", bytes(range(256)))),
    Case("config_fifo", "config", "a named pipe given as the recipe (reading it would wait forever)",
         "not a regular file", _fifo("recipe.yaml")),
    Case("config_number_keys", "config", "a key that is a number (`1: 2` under model)", "keys must be names",
         _config("model:\n  1: 2\n")),
    Case("config_nan", "config", "a learning rate of .nan", "expected a finite number",
         _config("pretrain:\n  lr: .nan\n")),
    Case("config_inf", "config", "an mlp_ratio of .inf", "expected a finite number",
         _config("model:\n  mlp_ratio: .inf\n")),
    Case("config_negative_seed", "config", "seed -1", "seed: must be in", _config("seed: -1\n")),
    Case("config_huge_seed", "config", "seed 10^23", "seed: must be in", _config("seed: 100000000000000000000000\n")),
    Case("config_huge_clip", "config", "a 100000-pixel clip (would exhaust memory)", "size must be an integer in",
         _config("clip:\n  size: 100000\n")),
    Case("config_huge_width", "config", "embed_dim 10^9 (would exhaust memory)", "embed_dim: must be in",
         _config("model:\n  embed_dim: 1000000000\n")),
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
    Case("csv_fifo", "data", "train.csv replaced by a named pipe (reading it would wait forever)",
         "train.csv: not a regular file", _layout(lambda root: (
             (root / "train" / "train.csv").unlink(), __import__("os").mkfifo(root / "train" / "train.csv")))),
    Case("csv_not_utf8", "data", "train.csv with a Latin-1 file name in it", "train.csv: not UTF-8 text",
         _layout(lambda root: (root / "train" / "train.csv").write_bytes(b"video_name\nvid\xe9o.mp4\n"))),
    Case("classind_superscript", "data", "classInd.txt numbering a class with a superscript digit",
         "expected '2 <name>'", _layout(lambda root: (root / "classInd.txt").write_text("1 a\n\u00b2 b\n3 c\n"))),
    Case("classind_duplicate", "data", "classInd.txt naming one class twice", "is listed twice",
         _layout(lambda root: (root / "classInd.txt").write_text(
             (root / "classInd.txt").read_text().splitlines()[0] + "\n2 " +
             (root / "classInd.txt").read_text().split()[1] + "\n"))),
    Case("classind_not_utf8", "data", "classInd.txt that is not UTF-8", "classInd.txt: not UTF-8 text",
         _layout(lambda root: (root / "classInd.txt").write_bytes(b"1 caf\xe9\n2 other\n"))),
]

ALL = VIDEO_CASES + BUNDLE_CASES + CONFIG_CASES + DATA_CASES


# -- whole command lines (ctx: run, bundle, data, configs, video) ---------------------------------
@dataclass(frozen=True)
class Command:
    """A command line that must be refused without a traceback and without touching what the user
    has: `make(tmp, ctx)` -> {"argv": [cli, *args], "watch": [paths], "cwd": path or None}; every
    watched folder must hold exactly the same files with the same bytes afterwards."""

    id: str
    what: str
    make: Callable[[Path, dict], dict]
    exit: int
    expect: str  # in the error line (click's own `Error:` for its usage errors)
    hidden: str = ""  # must appear nowhere in the output (a credential)
    needs: str = ""


def _folder(tmp: Path, name: str, files: dict[str, str]) -> Path:
    d = tmp / name
    d.mkdir(parents=True)
    for f, text in files.items():
        (d / f).write_text(text)
    return d


def _mine(tmp: Path) -> Path:
    return _folder(tmp, "mine", {"notes.txt": "my own notes", "thesis.tex": "two years of work"})


def _run_copy(tmp: Path, ctx: dict) -> Path:
    out = tmp / "run"
    shutil.copytree(ctx["run"], out)
    return out


def _source(tmp: Path, ctx: dict) -> Path:
    """SRC/<class>/* of the user's own videos (links to the smoke data's)."""
    src = tmp / "src"
    for c in ("left", "right"):
        (src / c).mkdir(parents=True)
        for i, v in enumerate(sorted((ctx["data"] / "train").rglob("*.mp4"))[:3]):
            (src / c / f"{i}.mp4").symlink_to(v)
    return src


def _cmd(*args, watch=(), cwd=None):
    """A `make` from argv items: strings, or functions (tmp, ctx) -> path; `watch` likewise."""
    def make(tmp: Path, ctx: dict) -> dict:
        made: dict = {}

        def value(a):
            if callable(a):
                key = getattr(a, "__name__", str(id(a)))
                if key not in made:
                    made[key] = a(tmp, ctx)
                return made[key]
            return a
        argv = [str(value(a)) for a in args]
        return {"argv": argv, "watch": [value(w) for w in watch], "cwd": value(cwd) if cwd else None}
    return make


def _ctx(key: str):
    f = lambda tmp, ctx: ctx[key]  # noqa: E731
    f.__name__ = f"ctx_{key}"
    return f


def _tmpfile(name: str, data: bytes):
    def make(tmp: Path, ctx: dict) -> Path:
        p = tmp / name
        p.write_bytes(data)
        return p
    make.__name__ = f"file_{name}"
    return make


def _video_in(folder: str):
    def make(tmp: Path, ctx: dict) -> Path:
        d = tmp / folder
        d.mkdir()
        return shutil.copy(ctx["video"], d / "v.mp4")
    make.__name__ = f"video_in_{folder}"
    return make


def _dangling_out(tmp, ctx):
    p = tmp / "run-link"
    p.symlink_to(tmp / "nowhere")
    return p


def _garbage_infer(tmp, ctx):
    root = shutil.copytree(ctx["data"], tmp / "data", symlinks=True)
    for v in (root / "infer").rglob("*.mp4"):
        v.unlink()
        v.write_bytes(b"not a video" * 10)
    return root


def _bundle_plus_notes(tmp, ctx):
    b = _bundle_copy(tmp, ctx)
    (b / "notes.txt").write_text("mine")
    return b


def _mine_f(tmp, ctx):
    return _mine(tmp)


_smoke = lambda tmp, ctx: ctx["configs"] / "smoke.yaml"  # noqa: E731
_new = lambda tmp, ctx: tmp / "new"  # noqa: E731
RUN, BUNDLE, DATA, VIDEO = _ctx("run"), _ctx("bundle"), _ctx("data"), _ctx("video")

COMMAND_CASES = [
    # data loss
    Command("export_force_cwd", "`picojepa-export RUN --out . --force` in a folder of the user's files",
            _cmd("export", RUN, "--out", ".", "--force", watch=[_mine_f], cwd=_mine_f), 3, "current directory"),
    Command("export_force_onto_run", "`--out RUN --force`: the bundle would replace the training run",
            _cmd("export", _run_copy, "--out", _run_copy, "--force", watch=[_run_copy]), 3, "holds or lies inside"),
    Command("export_force_user_folder", "`--force` onto a folder of the user's files (no manifest.json)",
            _cmd("export", RUN, "--out", _mine_f, "--force", watch=[_mine_f]), 3, "holds no manifest.json"),
    Command("export_force_bundle_plus_files", "`--force` onto a bundle the user added a file to",
            _cmd("export", RUN, "--out", _bundle_plus_notes, "--force", watch=[_bundle_plus_notes]), 3,
            "not part of a bundle (notes.txt)"),
    Command("train_onto_finished_run", "`picojepa-train all` onto a finished run without --resume",
            _cmd("train", "all", "--config", _smoke, "--data", DATA, "--out", _run_copy, "--no-progress",
                 watch=[_run_copy]), 3, "holds a training run already"),
    Command("train_into_user_folder", "`picojepa-train all --out` a folder of the user's files",
            _cmd("train", "all", "--config", _smoke, "--data", DATA, "--out", _mine_f, watch=[_mine_f]), 3,
            "not empty and not a training run"),
    Command("classify_onto_trained_run", "`picojepa-train classify` onto a run that has its classifiers",
            _cmd("train", "classify", "--config", _smoke, "--data", DATA, "--out", _run_copy, watch=[_run_copy]),
            3, "has trained classifiers already"),
    Command("index_into_source", "`picojepa-data index SRC --out SRC/data` (inside the source tree)",
            _cmd("data", "index", _source, "--out", lambda t, c: t / "src" / "data", watch=[_source]), 3,
            "holds or lies inside"),
    Command("index_onto_other_root", "`picojepa-data index --force` onto a data root it did not write",
            _cmd("data", "index", _source, "--out", lambda t, c: shutil.copytree(c["data"], t / "root", symlinks=True),
                 "--force"), 3, "was not written by `picojepa-data index`"),
    Command("bench_onto_training_run", "`picojepa-bench --out RUN` (its report.json is the training run's)",
            _cmd("bench", "--bundle", BUNDLE, "--run", RUN, "--out", _run_copy, VIDEO, watch=[_run_copy]), 3,
            "holds a report.json that is not a benchmark report"),
    Command("bench_network_into_user_folder", "`picojepa-bench --network --out` a folder of the user's files",
            _cmd("bench", "--network", "--bundle", BUNDLE, "--run", RUN, "--out", _mine_f, VIDEO, watch=[_mine_f]),
            3, "holds files that are not the benchmark's"),
    Command("ensemble_onto_plain_run", "`picojepa-train ensemble --out` a plain training run",
            _cmd("train", "ensemble", "--config", lambda t, c: c["configs"] / "hetero.yaml", "--data", DATA,
                 "--out", _run_copy, watch=[_run_copy]), 3, "not a heterogeneous ensemble"),
    Command("out_dangling_symlink", "`picojepa-train all --out` a dangling symbolic link",
            _cmd("train", "all", "--config", _smoke, "--data", DATA, "--out", _dangling_out), 3,
            "a dangling symbolic link"),
    Command("synth_into_user_folder", "`picojepa-data synth` into a folder of the user's files",
            _cmd("data", "synth", _mine_f, watch=[_mine_f]), 3, "not empty"),
    # wrong results without a word
    Command("resume_other_recipe", "`--resume` with another mask than the checkpoint's",
            _cmd("train", "pretrain", "--config", _smoke, "--data", DATA, "--out", _run_copy, "--resume",
                 "--set", "pretrain.mask=tube", watch=[_run_copy]), 3,
            "trained with another recipe, --resume would mix the two (pretrain.mask: 'future' -> 'tube')"),
    Command("resume_other_size", "`--resume --set model.embed_dim=64` (a size the checkpoint does not have)",
            _cmd("train", "pretrain", "--config", _smoke, "--data", DATA, "--out", _run_copy, "--resume",
                 "--set", "model.embed_dim=64", watch=[_run_copy]), 3, "model.embed_dim: 32 -> 64"),
    Command("classify_other_recipe", "`picojepa-train classify --force` under another model than the run's",
            _cmd("train", "classify", "--config", _smoke, "--data", DATA, "--out", _run_copy, "--force", "--set",
                 "model.depth=2", watch=[_run_copy]), 3, "its classifiers would not fit it (model.depth: 1 -> 2)"),
    Command("evaluate_other_recipe", "`picojepa-train evaluate` under another classifier recipe than the run's",
            _cmd("train", "evaluate", "--config", _smoke, "--data", DATA, "--out", _run_copy, "--set",
                 "classify.epochs=7", watch=[_run_copy]), 3, "classify.epochs: 3 -> 7"),
    Command("verify_video_unusable", "`--verify-videos` naming a file that is no video",
            _cmd("export", RUN, "--out", _new, "--verify-videos", _tmpfile("bad.mp4", b"not a video" * 9)), 3,
            "--verify-videos:"),
    Command("members_empty", "`--members ''`", _cmd("export", RUN, "--out", _new, "--members", ""), 2,
            "names no member"),
    Command("opset_too_old", "`--opset 13` (the encoder's attention needs 14)",
            _cmd("export", RUN, "--out", _new, "--opset", "13"), 2, "13 is not in the range"),
    Command("members_empty_name", "`--members runs/x:general=` (an empty name)",
            _cmd("export", "--out", _new, "--members", "runs/x:general="), 2, "no name follows it"),
    Command("streams_fifo", "a named pipe as the `--streams` file (reading it would wait forever)",
            _cmd("run", "--bundle", BUNDLE, "--streams", _fifo("cams.txt")), 3, "not a regular file"),
    Command("cameras_fifo", "a named pipe as the `--cameras` file",
            _cmd("run", "--bundle", BUNDLE, "--cameras", _fifo("cameras.yaml")), 3, "not a regular file"),
    Command("cameras_unknown_key", "a camera file with a key no camera has",
            _cmd("run", "--bundle", BUNDLE, "--cameras", _tmpfile(
                "cameras.yaml", b"cameras:\n  - {name: door, url: 'rtsp://10.0.0.7/sub', zoom: 2}\n")), 3,
            "camera 1 (door): zoom: unknown key"),
    Command("cameras_event_not_a_class", "a camera file whose event label is no class of the bundle",
            _cmd("run", "--bundle", BUNDLE, "--cameras", _tmpfile(
                "cameras.yaml", b"cameras:\n  - {name: door, url: 'udp://127.0.0.1:9', events: [fight]}\n")), 3,
            "events: 'fight' is no class of the bundle"),
    Command("region_outside_frame", "`--region 0.5,0.5,0.6,1` (past the frame's edge)",
            _cmd("run", "--bundle", BUNDLE, "--region", "0.5,0.5,0.6,1", VIDEO), 2,
            "--region: x, y, w, h must be fractions"),
    Command("http_no_host", "`--http 8080` (no host)",
            _cmd("run", "--bundle", BUNDLE, "--http", "8080", "udp://127.0.0.1:9"), 2, "give HOST:PORT"),
    Command("publish_unknown_scheme", "`--publish http://...` (neither NATS nor MQTT)",
            _cmd("run", "--bundle", BUNDLE, "--publish", "http://127.0.0.1:9", "udp://127.0.0.1:9"), 2,
            "give a nats:// or an mqtt:// URL"),
    Command("publish_mqtt_no_broker", "`--publish mqtt://user:secret@...` with no broker there",
            _cmd("run", "--bundle", BUNDLE, "--connect-timeout", "1", "--publish",
                 "mqtt://cam:s3cr3t-pw@127.0.0.1:9", "udp://127.0.0.1:9"), 3,
            "no MQTT broker answered within 1 s", hidden="s3cr3t-pw", needs="paho-mqtt"),
    Command("members_malformed", "`--members runs/x:bogus` (no such member)",
            _cmd("export", "--out", _new, "--members", "runs/x:bogus"), 2, "expected RUN_DIR:MEMBER"),
    Command("window_longer_than_video", "`--window 60` on a 2-s video",
            _cmd("run", "--bundle", BUNDLE, "--window", "60", VIDEO), 3, "shorter than the 60 s window"),
    Command("labels_unknown_folders", "`--labels-from-folders` on a folder that is no class",
            _cmd("run", "--bundle", BUNDLE, "--labels-from-folders", _video_in("holiday")), 2,
            "'holiday' is no class of"),
    Command("heldout_all_undecodable", "`picojepa-train evaluate` where no held-out video decodes",
            _cmd("train", "evaluate", "--config", _smoke, "--data", _garbage_infer, "--out", _run_copy), 3,
            "none of the held-out videos could be decoded"),
    # tracebacks and exit codes
    Command("window_huge", "`--window 1e308` (overflowed to infinity in frames)",
            _cmd("run", "--bundle", BUNDLE, "--window", "1e308", VIDEO), 3, "shorter than the 1e+308 s window"),
    Command("set_deep_yaml", "`--set` with 10,000 nested brackets",
            _cmd("train", "pretrain", "--config", _smoke, "--out", _new, "--set", "k=" + "[" * 10000), 2,
            "not valid YAML"),
    Command("nodes_only_commas", "`--nodes ,,,`", _cmd("run", "--bundle", BUNDLE, "--nodes", ",,,", VIDEO), 2,
            "no NATS server given"),
    Command("nodes_empty", "`--nodes ''` (not a silent in-process run)",
            _cmd("run", "--bundle", BUNDLE, "--nodes", "", VIDEO), 2, "no NATS server given"),
    Command("nodes_creds_missing", "`--nats-creds` naming no file",
            _cmd("run", "--bundle", BUNDLE, "--nodes", "nats://127.0.0.1:9", "--nats-creds", "/nonexistent.creds",
                 VIDEO), 2, "no such credentials file"),
    Command("synth_negative_seed", "`picojepa-data synth ROOT --seed -1`",
            _cmd("data", "synth", _new, "--seed", "-1"), 2, "-1 is not in the range"),
    Command("set_not_yaml", "`--set 'pretrain.epochs=[1'`",
            _cmd("train", "pretrain", "--config", _smoke, "--out", _new, "--set", "pretrain.epochs=[1"), 2,
            "not valid YAML"),
    Command("set_unknown_key", "`--set foo=1` (blamed on the option, not the recipe file)",
            _cmd("train", "pretrain", "--config", _smoke, "--out", _new, "--set", "foo=1"), 3,
            "--set foo: unknown key"),
    Command("resume_and_force", "`--resume --force` together",
            _cmd("train", "all", "--config", _smoke, "--out", _run_copy, "--resume", "--force", watch=[_run_copy]),
            2, "give one of them"),
    Command("window_nan", "`--window nan`", _cmd("run", "--bundle", BUNDLE, "--window", "nan", VIDEO), 2,
            "not a finite number"),
    Command("window_inf", "`--window inf`", _cmd("run", "--bundle", BUNDLE, "--window", "inf", VIDEO), 2,
            "not a finite number"),
    Command("stride_nan", "`--stride nan`", _cmd("run", "--bundle", BUNDLE, "--window", "1", "--stride", "nan", VIDEO),
            2, "not a finite number"),
    Command("tolerance_nan", "`picojepa-export --tolerance nan`",
            _cmd("export", RUN, "--out", _new, "--tolerance", "nan"), 2, "not a finite number"),
    Command("streams_not_utf8", "a `--streams` file that is not UTF-8",
            _cmd("run", "--bundle", BUNDLE, "--streams", _tmpfile("cams.txt", b"rtsp://c\xe9m/1 door\n")), 3,
            "not UTF-8 text"),
    Command("quorum_impossible", "`--quorum 9` with 4 voting members",
            _cmd("run", "--bundle", BUNDLE, "--nodes", "nats://127.0.0.1:9", "--quorum", "9", VIDEO), 2,
            "--quorum 9 is impossible"),
    # credentials
    Command("nats_password_hidden", "a NATS URL with a password, server unreachable",
            _cmd("run", "--bundle", BUNDLE, "--nodes", "nats://alice:s3cret@127.0.0.1:9", "--connect-timeout", "0.5",
                 VIDEO), 3, "nats://alice:***@127.0.0.1:9", hidden="s3cret", needs="network"),
    Command("nodes_wrong_scheme_password_hidden", "`--nodes http://u:hunter2@...` (not a NATS URL)",
            _cmd("run", "--bundle", BUNDLE, "--nodes", "http://u:hunter2@127.0.0.1:9", VIDEO), 2,
            "a NATS server URL starts with", hidden="hunter2"),
    Command("rtsp_password_with_at_hidden", "an RTSP URL whose password holds '@'",
            _cmd("run", "--bundle", BUNDLE, "rtsp://admin:hun@ter2@127.0.0.1:9/main", "--connect-timeout", "0.5",
                 "--reconnect-s", "0.5"), 3, "rtsp://admin:***@127.0.0.1:9/main", hidden="ter2", needs="live"),
    Command("config_url_password_hidden", "a URL with a password given as `--config` (a path: its // collapses)",
            _cmd("train", "pretrain", "--config", "http://u:hunter2@127.0.0.1:9/x.yaml", "--out", _new), 3,
            "http:/u:***@127.0.0.1:9/x.yaml", hidden="hunter2"),
    Command("streams_password_with_hash_hidden", "a `--streams` line whose password holds '#'",
            _cmd("run", "--bundle", BUNDLE, "--streams",
                 _tmpfile("cams.txt", b"rtsp://admin:hun#ter2@127.0.0.1:9/live door\n"), "--connect-timeout", "0.5",
                 "--reconnect-s", "0.5"), 3, "rtsp://admin:***@127.0.0.1:9/live", hidden="ter2", needs="live"),
    Command("rtsp_password_hidden", "an RTSP camera URL with a password, camera unreachable",
            _cmd("run", "--bundle", BUNDLE, "rtsp://admin:hunter2@127.0.0.1:9/main", "--connect-timeout", "0.5",
                 "--reconnect-s", "0.5"), 3, "rtsp://admin:***@127.0.0.1:9/main", hidden="hunter2", needs="live"),
]


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
    lines += ["", "## Command lines", "",
              "Each is refused with one line and the exit code shown; every folder the user had is checked "
              "to hold the same files, byte for byte, afterwards; a credential in a URL never appears "
              "in the output (shown masked).", "",
              f"{len(COMMAND_CASES)} cases.", "",
              "| # | case | command line | exit | message |", "|---|---|---|---|---|"]
    for i, c in enumerate(COMMAND_CASES, 1):
        tag = f" (needs {c.needs})" if c.needs else ""
        lines.append(f"| {i} | `{c.id}`{tag} | {c.what} | {c.exit} | `{c.expect}` |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(), end="")
