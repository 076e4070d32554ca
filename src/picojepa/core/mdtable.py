"""Markdown tables, written one way for every report (runs, benchmarks, studies)."""
from collections.abc import Iterable, Sequence


def row(cells: Iterable) -> str:
    """One table line: `| a | b |`, each cell str()'d; an empty cell is `| |`."""
    return "|" + "|".join(f" {c} " if str(c) else " " for c in cells) + "|"


def table(header: Sequence, rows: Iterable[Iterable] = ()) -> list[str]:
    """A table's lines: the header, the rule under it and one line per row. A row may have fewer
    cells than the header (a file that failed: its name and why)."""
    return [row(header), "|---" * len(header) + "|", *(row(r) for r in rows)]
