"""Click parameter types every command shares, so a bad number is refused the same way everywhere."""
from __future__ import annotations

import math

import click


class Finite(click.FloatRange):
    """A float in a range that is also finite: `nan` and `inf` are refused as usage errors (exit 2)
    where click's FloatRange lets them through (nan compares false with any bound)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        v = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(v, param, ctx)
