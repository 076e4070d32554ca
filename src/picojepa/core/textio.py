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

from .console import one_line
from .errors import PicoJepaError
from .shown import shown

MAX_TEXT_BYTES = 64 << 20  # no text file of ours is this large: a bigger one is not what we expect
# values that YAML aliases may add to a document, each use of an anchor counting everything under
# it: no recipe or camera file needs more, and nested aliases (a "billion laughs" of a few hundred
# bytes) would otherwise make a value of billions of items that any message quoting it prints
MAX_ALIAS_VALUES = 10_000


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
        _fail(error, Path(path), f"not valid JSON ({one_line(exc, 120)})")


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
                        None, None, f"duplicate key {shown(key)} at line {key_node.start_mark.line + 1}")
                seen.add(key)
            except TypeError:  # an unhashable key: the base class says so
                pass
        return super().construct_mapping(node, deep)

    def compose_document(self):
        """The document's nodes, refused where its aliases expand to too many values (see
        MAX_ALIAS_VALUES) or an alias sits inside its own anchor (an endless value)."""
        node = super().compose_document()
        added = _alias_values(node)
        if added > MAX_ALIAS_VALUES:
            raise _AliasBomb(f"its aliases expand to {added} more values (at most {MAX_ALIAS_VALUES}): "
                             "nested aliases, a 'billion laughs'?")
        return node


class _AliasBomb(yaml.YAMLError):
    """A document whose aliases expand beyond MAX_ALIAS_VALUES, or into themselves."""


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return node.value if isinstance(node, yaml.SequenceNode) else []


def _alias_values(root) -> int:
    """How many values the aliases under `root` add: its size with every alias copied out, less
    its size as written (each node counted once). Iterative, each node sized once."""
    sizes: dict[int, int] = {}  # id(node) -> its size, aliases expanded
    on_path: set[int] = set()  # the nodes being sized: the current node and its ancestors
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            on_path.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in _children(node))
        elif id(node) in on_path:
            raise _AliasBomb(f"an alias inside its own anchor (line {node.start_mark.line + 1}): an endless value")
        elif id(node) not in sizes:
            on_path.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node))
    return sizes[id(root)] - len(sizes)


def parse_yaml(text: str, where: str, error: type[PicoJepaError] = PicoJepaError) -> Any:
    """YAML text -> value; `error` names `where` (a file, or an option such as `--set k`). A
    mapping that holds the same key twice is an error."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except _AliasBomb as exc:
        raise error(f"{where}: refused: {exc}") from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:  # ValueError: an integer of > 4300 digits
        raise error(f"{where}: not valid YAML ({one_line(exc, 160)})") from None


def read_yaml(path: str | Path, error: type[PicoJepaError] = PicoJepaError, what: str = "YAML file") -> Any:
    """The parsed YAML of a file (None for an empty one); `error` names the file and the reason."""
    return parse_yaml(read_text(path, error, what), str(path), error)
