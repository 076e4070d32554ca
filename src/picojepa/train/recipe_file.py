"""Recipes read from YAML: a recipe names a `base:` file (relative to itself) and overrides only
what differs; the loader builds the typed dataclasses of `config.py` (`core/typed.py`), rejecting
unknown keys, wrong types and impossible combinations with `file: key: reason`.
"""
from __future__ import annotations

from pathlib import Path

from picojepa.core.shown import cut, shown
from picojepa.core.textio import read_yaml
from picojepa.core.typed import build

from .config import ConfigError, Recipe


def _build(cls, data: dict, prefix: str = ""):
    return build(cls, data, ConfigError, prefix)


def merge(base: dict, over: dict) -> dict:
    """`over` laid onto `base`, mappings merged key by key (what `base:` and overrides do)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    if path.resolve() in seen:
        raise ConfigError(f"{path}: base: circular reference")
    data = read_yaml(path, ConfigError, "recipe")
    if data is None:
        raise ConfigError(f"{path}: empty recipe; a recipe names its `base:` and what it changes "
                          "(see configs/demo.yaml)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at top level")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or len(base) > 4096:  # 4096: the longest path Linux opens
        raise ConfigError(f"{path}: base: expected a file name, got {shown(base)}")
    return merge(_read_yaml(path.parent / base, seen + (path.resolve(),)), data)


def nest(flat: dict) -> dict:
    """Dotted keys -> the nested mapping a recipe override takes: {"model.depth": 2} ->
    {"model": {"depth": 2}} (what `--set` and an ensemble member's `set:` write)."""
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = str(key).split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{cut(str(key))}: {cut(p)} is set to a value and also has keys below it")
        node[leaf] = value
    return tree


def load_recipe(path: str | Path, overrides: dict | None = None, overrides_from: str = "--set") -> Recipe:
    """Load a recipe YAML (following `base:`), apply `overrides`, and validate everything. An
    error the file alone already has is the file's (`file: key: reason`); one that only the
    overrides bring is theirs (`--set key: reason`)."""
    path = Path(path)
    data = _read_yaml(path)
    data.setdefault("name", path.stem)
    try:
        recipe = _build(Recipe, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not overrides:
        return recipe
    try:
        return _build(Recipe, merge(data, overrides))
    except ConfigError as exc:
        raise ConfigError(f"{overrides_from} {exc}") from None


def recipe_from_dict(data: dict) -> Recipe:
    """Rebuild a recipe stored inside a checkpoint or bundle."""
    return _build(Recipe, data)


def with_defaults(saved: dict) -> dict:
    """A stored recipe with the keys added since it was written at their defaults (which give the
    behaviour it was trained with), so that comparing it with today's recipe shows only what
    really differs; as stored where it no longer builds."""
    try:
        return recipe_from_dict(saved).to_dict()
    except (ConfigError, TypeError, ValueError, KeyError):
        return saved
