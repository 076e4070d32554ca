"""The shared contracts: file readers, output folders, credential masking, number options."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from picojepa.core import outdir
from picojepa.core.errors import PicoJepaError
from picojepa.core.options import Finite
from picojepa.core.redact import redact
from picojepa.core.textio import read_json, read_text, read_yaml

CORE = Path(__file__).resolve().parents[2] / "src" / "picojepa" / "core"


class MyError(PicoJepaError):
    pass


def test_core_imports_nothing_of_the_rooms_nor_torch():
    offenders, sources = [], sorted(CORE.glob("*.py"))
    assert len(sources) > 3, f"no core sources found under {CORE}"
    for py in sources:
        for node in ast.walk(ast.parse(py.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{py.name}: {n}" for n in names
                          if n.split(".")[0] in ("torch", "onnx", "onnxruntime")
                          or n.startswith(("picojepa.train", "picojepa.export", "picojepa.runtime",
                                           "picojepa.benchmarks"))]
    assert not offenders, offenders


@pytest.mark.parametrize("data, reason", [
    (b"\xff\xfe\x00bad", "not UTF-8 text (byte 0xff at offset 0)"),
    (b"name: x\n\xc3(", "not UTF-8 text (byte 0xc3 at offset 8)"),
    (b"a\x00b", "holds NUL bytes"),
])
def test_undecodable_text_is_one_typed_error_naming_the_file(tmp_path, data, reason):
    p = tmp_path / "recipe.yaml"
    p.write_bytes(data)
    with pytest.raises(MyError) as exc:
        read_text(p, MyError, "recipe")
    assert str(exc.value).startswith(f"{p}: ") and reason in str(exc.value)


def test_text_reader_refuses_a_directory_and_a_missing_file_and_drops_a_bom(tmp_path):
    with pytest.raises(MyError, match="is a directory"):
        read_text(tmp_path, MyError)
    with pytest.raises(MyError, match="cannot read"):
        read_text(tmp_path / "absent.csv", MyError)
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfvideo_name\n")
    assert read_text(tmp_path / "bom.csv") == "video_name\n"


def test_json_and_yaml_readers_name_the_file_and_refuse_nan(tmp_path):
    (tmp_path / "m.json").write_text('{"w": NaN}')
    with pytest.raises(MyError, match="m.json: not valid JSON .*NaN"):
        read_json(tmp_path / "m.json", MyError)
    (tmp_path / "m.json").write_text("{oops")
    with pytest.raises(MyError, match="line 1"):
        read_json(tmp_path / "m.json", MyError)
    (tmp_path / "r.yaml").write_text("k: [1\n")
    with pytest.raises(MyError, match="r.yaml: not valid YAML"):
        read_yaml(tmp_path / "r.yaml", MyError)


BUNDLE = outdir.Kind("bundle", outdir.only_entries(lambda n: n.endswith(".onnx") or n == "manifest.json",
                                                   "manifest.json", "bundle"))


def _bundle(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "manifest.json").write_text("{}")
    (path / "ensemble.onnx").write_bytes(b"old")
    return path


def test_force_replaces_only_a_folder_of_the_kind(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my own file")
    with pytest.raises(outdir.OutputDirError, match="already exists"):
        outdir.check_target(mine, BUNDLE, force=False)
    with pytest.raises(outdir.OutputDirError, match="holds no manifest.json"):
        outdir.check_target(mine, BUNDLE, force=True)
    (mine / "manifest.json").write_text("{}")
    with pytest.raises(outdir.OutputDirError, match=r"not part of a bundle \(notes.txt\)"):
        outdir.check_target(mine, BUNDLE, force=True)
    assert (mine / "notes.txt").read_text() == "my own file"
    outdir.check_target(_bundle(tmp_path / "b"), BUNDLE, force=True)  # a bundle: may go


def test_force_never_replaces_the_current_directory_or_a_protected_path(tmp_path, monkeypatch):
    b = _bundle(tmp_path / "b")
    monkeypatch.chdir(b)
    with pytest.raises(outdir.OutputDirError, match="current directory"):
        outdir.check_target(Path("."), BUNDLE, force=True)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "b" / "run"
    with pytest.raises(outdir.OutputDirError, match="holds or lies inside"):
        outdir.check_target(b, BUNDLE, force=True, protect=[run])
    with pytest.raises(outdir.OutputDirError, match="holds or lies inside"):
        outdir.check_target(run / "bundle", BUNDLE, force=False, protect=[run])
    assert (b / "ensemble.onnx").read_bytes() == b"old"


def test_draft_is_swapped_in_whole_or_not_at_all(tmp_path):
    out = _bundle(tmp_path / "b")
    with pytest.raises(RuntimeError):
        with outdir.draft(out) as d:
            (d / "ensemble.onnx").write_bytes(b"half")
            raise RuntimeError("killed half-way")
    assert (out / "ensemble.onnx").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"], "the draft is removed"
    with outdir.draft(out) as d:
        assert (d / outdir.INCOMPLETE).is_file()
        (d / "manifest.json").write_text("{}")
        (d / "ensemble.onnx").write_bytes(b"new")
        outdir.commit(d, out)
    assert sorted(p.name for p in out.iterdir()) == ["ensemble.onnx", "manifest.json"]
    assert (out / "ensemble.onnx").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_drafts_of_dead_processes_are_removed_by_the_next_writer(tmp_path):
    out = tmp_path / "b"
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    stale = tmp_path / f".b{outdir.PARTIAL}{pid}-abc"
    stale.mkdir()
    live = tmp_path / f".b{outdir.PARTIAL}{os.getpid()}-xyz"
    live.mkdir()
    assert outdir.remove_stale_drafts(out) == [stale]
    assert not stale.exists() and live.exists()


@pytest.mark.parametrize("text, shown", [
    ("nats://alice:s3cret@10.0.0.2:4222", "nats://alice:***@10.0.0.2:4222"),
    ("error: nats://TOKEN123@host:4222: no server", "error: nats://***@host:4222: no server"),
    ("rtsp://admin:hunter2@cam/main and rtsp://cam2/sub", "rtsp://admin:***@cam/main and rtsp://cam2/sub"),
    ("http://cam/stream?user=a&password=hunter2&x=1", "http://cam/stream?user=a&password=***&x=1"),
    ("/videos/a@b.mp4", "/videos/a@b.mp4"),
    ("rtsp://admin:pa/ss@cam:554/main failed", "rtsp://admin:***@cam:554/main failed"),  # a raw '/' in it
    ("rtsp://admin:a/b@c@cam/main", "rtsp://admin:***@cam/main"),
    ("rtsp://cam:554/main rtsp://u:p@cam2/x", "rtsp://cam:554/main rtsp://u:***@cam2/x"),
    ("rtsp://cam:554/ch1@main", "rtsp://cam:554/ch1@main"),  # a port and a path: stream names stay distinct
])
def test_redact_masks_every_credential_and_nothing_else(text, shown):
    assert redact(text) == shown


def test_redact_never_hangs_on_long_tokens():
    """A deadline, not a timing: the backtracking a '/'-password pattern once had took 23 s on 12 KB
    and grows with the cube of the length; these 24 KB would take minutes."""
    code = ("from picojepa.core.redact import redact\n"
            "cams = ','.join(f'rtsp://10.0.0.{i}:554/Streaming/Channels/101' for i in range(512))\n"
            "for t in ('http://h:1/a' * 2000, cams):\n"
            "    assert redact(t) == t\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-500:]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_finite_option_refuses_non_finite_numbers_as_usage_errors(value):
    @click.command()
    @click.option("--window", type=Finite(min=0.01))
    def cmd(window):
        click.echo(window)

    res = CliRunner().invoke(cmd, ["--window", value])
    assert res.exit_code == 2 and "not a finite number" in res.output
    assert CliRunner().invoke(cmd, ["--window", "2.5"]).output.strip() == "2.5"
