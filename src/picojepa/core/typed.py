"""Typed files: a mapping read from YAML built into frozen dataclasses, each value checked
against its annotation. Recipes and ensemble recipes are read this way: unknown keys, keys that
are no names, wrong types and the dataclasses' own checks (`__post_init__` raising ValueError)
all become one error, `key: reason`, in the caller's error type, which puts the file in front. A
check that names one of its keys (`ValueError("epochs: must be >= 1")`) is reported under that
key's full name (`pretrain.epochs: must be >= 1`).

Annotations understood: a dataclass (a nested mapping), `Literal[...]`, `tuple[A, B]` (a list of
exactly those), `tuple[A, ...]` (a list of any length), `dict` (a mapping, kept as given), `A |
B` (the first that fits; null only where `None` is one of them), bool, int, float (finite), str.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Literal

from .shown import cut, shown


def _join(prefix: str, key) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def convert(tp, value, key: str, error: type[Exception]):
    """`value` checked against the annotation `tp` and converted (lists -> tuples); `error`
    raised with `key: reason` where it does not fit."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise error(f"{key}: expected a mapping, got {type(value).__name__}")
        return build(tp, value, error, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        for i, a in enumerate(rest):  # the first that fits; the last one's reason if none does
            try:
                return convert(a, value, key, error)
            except error:
                if i == len(rest) - 1:
                    raise
    if origin is Literal:
        if value not in args:
            raise error(f"{key}: must be one of {list(args)}, got {shown(value)}")
        return value
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            if not isinstance(value, (list, tuple)):
                raise error(f"{key}: expected a list, got {shown(value)}")
            return tuple(convert(args[0], v, f"{key}[{i}]", error) for i, v in enumerate(value))
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise error(f"{key}: expected a list of {len(args)} values, got {shown(value)}")
        return tuple(convert(a, v, f"{key}[{i}]", error) for i, (a, v) in enumerate(zip(args, value)))
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise error(f"{key}: expected a mapping, got {shown(value)}")
        return dict(value)
    if tp in _PLAIN:
        what, fits = _PLAIN[tp]
        if not fits(value):
            raise error(f"{key}: expected {what}, got {shown(value)}")
        return float(value) if tp is float else value
    raise error(f"{key}: unsupported type {tp}")


_PLAIN = {  # a plain type -> (what the message asks for, whether a value is one)
    bool: ("true/false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a finite number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)),
    str: ("a string", lambda v: isinstance(v, str)),
}


def build(cls, data: dict, error: type[Exception], prefix: str = ""):
    """The dataclass `cls` from the mapping `data` (see `convert`); `prefix` names where the
    mapping sits in its file (e.g. 'pretrain', 'members[2]')."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    odd = [k for k in data if not isinstance(k, str)]
    if odd:
        raise error(f"{_join(prefix, shown(odd[0]))}: keys must be names, got a {type(odd[0]).__name__}")
    unknown = sorted(set(data) - names)
    if unknown:
        raise error(f"{_join(prefix, cut(unknown[0]))}: unknown key (known: {', '.join(sorted(names))})")
    kwargs = {k: convert(hints[k], v, _join(prefix, k), error) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except error:
        raise
    except (ValueError, TypeError) as exc:  # the dataclass's own checks
        said = str(exc)
        if said.split(":", 1)[0] in names:  # 'key: reason' about one of its keys: named in full
            raise error(_join(prefix, said)) from None
        raise error(f"{prefix or cls.__name__}: {said}") from None
