"""How a value from a user's file appears in a message: its repr, or its text, cut short.

Every message that quotes what a user wrote (a recipe's value, a camera file's key) goes through
`shown` or `cut`, so no message carries a huge value: a 60-MB string, or a list that nested YAML
aliases make a billion items long, appears as its first characters and '...'. The repr is built
piecewise (reprlib) down to a few levels and items, never in full, so showing a value costs about
as much as what is shown.
"""
from __future__ import annotations

import builtins
import reprlib

LIMIT = 80  # characters of a value in a message: enough to recognise it, short enough for one line
ELLIPSIS = "..."


class _Repr(reprlib.Repr):
    """reprlib's bounded repr, with bytes and huge integers bounded too (its defaults repr them whole)."""

    def __init__(self, limit: int):
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxset = self.maxfrozenset = self.maxdeque = self.maxarray = 8
        self.maxdict = 4
        self.maxstring = self.maxlong = self.maxother = limit

    def repr_bytes(self, x: bytes, level: int) -> str:
        return builtins.repr(x[:self.maxstring]) + (ELLIPSIS if len(x) > self.maxstring else "")

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 3 * self.maxlong:  # more digits than are shown (and maybe than str() allows)
            return f"<an integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)


def cut(text: str, limit: int = LIMIT) -> str:
    """`text` as it is where at most `limit` characters long, else its start and '...'."""
    return text if len(text) <= limit else text[:max(limit - len(ELLIPSIS), 1)] + ELLIPSIS


def shown(value, limit: int = LIMIT) -> str:
    """repr(value) for a message, at most `limit` characters, computed without the whole repr."""
    return cut(_Repr(limit).repr(value), limit)
