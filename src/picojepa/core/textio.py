"""Reading the text files a user hands us (recipes, manifests, CSVs, class lists, stream lists):
the one place where an unreadable, undecodable or unparsable file becomes a one-line error.

Every reader takes the typed error the caller's stage raises (`ConfigError` for a recipe,
`BundleError` for a manifest, `DataLayoutError` for a CSV...), so the message names the file and
the reason and the CLI prints it as one line: `<file>: not UTF-8 text (byte 0xff at offset 12)`.
"""
from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import yaml

from .errors import PicoJepaError

MAX_TEXT_BYTES = 64 << 20  # no text file of ours is this large: a bigger one is not what we expect


def _fail(error: type[PicoJepaError], path: Path, reason: str):
    raise error(f"{path}: {reason}")


def read_text(path: str | Path, error: type[PicoJepaError] = PicoJepaError, what: str = "file") -> str:
    """The file's text (UTF-8, a leading BOM dropped); `error` names the file where it cannot
    be read, is a directory, is larger than MAX_TEXT_BYTES, or is not UTF-8 text."""
    path = Path(path)
    try:
        if path.is_dir():
            _fail(error, path, f"is a directory, not a {what}")
        if path.exists() and not stat.S_ISREG(path.stat().st_mode):
            _fail(error, path, f"not a regular file (a pipe or a device), not a {what}")
        with path.open("rb") as f:  # never more than the cap, whatever stat said
            data = f.read(MAX_TEXT_BYTES + 1)
        if len(data) > MAX_TEXT_BYTES:
            _fail(error, path, f"larger than {MAX_TEXT_BYTES} bytes: too large for a {what}")
    except OSError as exc:
        _fail(error, path, f"cannot read {what} ({exc.strerror or type(exc).__name__})")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        _fail(error, path, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): "
                           f"not a {what}")
    if "\x00" in text:
        _fail(error, path, f"holds NUL bytes: a binary file, not a {what}")
    return text


def read_json(path: str | Path, error: type[PicoJepaError] = PicoJepaError, what: str = "JSON file") -> Any:
    """The parsed JSON of a file; `error` names the file and the line where it is not JSON.
    NaN and Infinity, which Python's parser accepts and JSON forbids, are refused too."""
    text = read_text(path, error, what)

    def no_constant(name: str):
        raise ValueError(f"{name} is not a JSON value")

    try:
        return json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        _fail(error, Path(path), f"not valid JSON ({exc.msg} at line {exc.lineno})")
    except (ValueError, RecursionError) as exc:
        _fail(error, Path(path), f"not valid JSON ({' '.join(str(exc).split())[:120]})")


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml's safe loader, except that a mapping naming the same key twice is refused: PyYAML keeps
    the last one silently, so a typo'd copy of a key would quietly win over the first."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<:` may be overridden by design
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
                seen.add(key)
            except TypeError:  # an unhashable key: the base class says so
                pass
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, where: str, error: type[PicoJepaError] = PicoJepaError) -> Any:
    """YAML text -> value; `error` names `where` (a file, or an option such as `--set k`). A
    mapping that holds the same key twice is an error."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except (yaml.YAMLError, RecursionError) as exc:
        raise error(f"{where}: not valid YAML ({' '.join(str(exc).split())[:160]})") from None


def read_yaml(path: str | Path, error: type[PicoJepaError] = PicoJepaError, what: str = "YAML file") -> Any:
    """The parsed YAML of a file (None for an empty one); `error` names the file and the reason."""
    return parse_yaml(read_text(path, error, what), str(path), error)
