"""A recipe, a camera file or a `--set` value that is huge once read (nested YAML aliases, a long
literal) is refused or reported in one short line, quickly: never the value printed in full."""
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from picojepa.core.errors import PicoJepaError
from picojepa.core.textio import read_yaml
from picojepa.runtime.live.cameras import CameraFileError, load_cameras
from picojepa.train.cli import main as train_main
from picojepa.train.config import ConfigError
from picojepa.train.recipe_file import load_recipe

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
HUGE = "x" * 5_000_000


def billion_laughs(levels: int = 9) -> str:
    """A few hundred bytes of YAML whose value, aliases expanded, holds 9**levels strings."""
    anchors = ['&a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    anchors += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "[" + ", ".join(anchors) + "]"


def test_an_alias_bomb_is_a_few_hundred_bytes_and_refused_by_the_yaml_reader_naming_the_file(tmp_path):
    p = tmp_path / "bomb.yaml"
    p.write_text("key: " + billion_laughs())
    assert p.stat().st_size < 1000
    with pytest.raises(PicoJepaError) as exc:
        read_yaml(p)
    assert str(exc.value).startswith(f"{p}: refused: its aliases expand to "), str(exc.value)[:300]


def _short(message: str, path) -> None:
    assert str(path) in message and len(message) < 300 + len(str(path)) and "\n" not in message, message[:500]


def _recipe(tmp_path, value: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(f"base: {SMOKE}\nseed: {value}\n")
    return p


def _cameras(tmp_path, value: str) -> Path:
    p = tmp_path / "cameras.yaml"
    p.write_text(f"cameras:\n  - name: door\n    url: rtsp://10.0.0.7/sub\n    window: {value}\n")
    return p


@pytest.mark.parametrize("load, write, error", [(load_recipe, _recipe, ConfigError),
                                                (load_cameras, _cameras, CameraFileError)])
def test_an_alias_bomb_is_one_short_line_fast(tmp_path, load, write, error):
    path = write(tmp_path, billion_laughs())
    start = time.monotonic()
    with pytest.raises(error) as exc:
        load(str(path))
    assert time.monotonic() - start < 2.0
    _short(str(exc.value), path)
    assert "refused: its aliases expand to" in str(exc.value)


@pytest.mark.parametrize("load, write, error", [(load_recipe, _recipe, ConfigError),
                                                (load_cameras, _cameras, CameraFileError)])
def test_a_huge_literal_value_is_cut_short_in_the_message(tmp_path, load, write, error):
    path = write(tmp_path, HUGE)
    with pytest.raises(error) as exc:
        load(str(path))
    _short(str(exc.value), path)
    assert "'xxxx" in str(exc.value) and "..." in str(exc.value)


def test_a_huge_camera_name_and_unknown_key_are_cut_short(tmp_path):
    for item in (f"{{name: {HUGE}, url: 'rtsp://h/s'}}", f"{{name: door, url: 'rtsp://h/s', {HUGE}: 1}}"):
        p = tmp_path / "cameras.yaml"
        p.write_text(f"cameras:\n  - {item}\n")
        with pytest.raises(CameraFileError) as exc:
            load_cameras(str(p))
        _short(str(exc.value), p)


def test_train_cli_refuses_an_alias_bomb_recipe_and_set_value_in_one_line(tmp_path):
    runner = CliRunner()
    path = _recipe(tmp_path, billion_laughs())
    res = runner.invoke(train_main, ["pretrain", "--config", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 3 and res.output.startswith(f"error: {path}: refused: its aliases") \
        and len(res.output) < 400, res.output[:500]
    res = runner.invoke(train_main, ["pretrain", "--config", str(SMOKE), "--out", str(tmp_path / "o"),
                                     "--set", "seed=" + billion_laughs()])
    assert res.exit_code == 2 and "refused: its aliases expand to" in res.output and len(res.output) < 1000, \
        res.output[:500]
