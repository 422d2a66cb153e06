"""Aligned text tables: names left, numbers right, two spaces apart, and fitted to a width.

A table wider than the width is cut into blocks of columns printed one under the other, each
starting with the key columns that name a row; a block's last column, if it holds words, wraps.
"""

from __future__ import annotations

import textwrap
from collections.abc import Container, Sequence
from dataclasses import dataclass, field

GAP = 2
NARROWEST = 16  # a wrapped column is never squeezed below this


@dataclass(frozen=True)
class Column:
    name: str
    words: bool = False  # names and verdicts, left-aligned; figures right-aligned


@dataclass
class Table:
    """A header of columns and rows of cells: each column says how it aligns, in the one place it is named."""

    columns: tuple[Column, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def words(self) -> set[int]:
        return {i for i, column in enumerate(self.columns) if column.words}

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def lines(self, width: int | None = None, keys: int = 2) -> list[str]:
        return aligned([self.header, *self.rows], self.words, width, keys)

    def markdown(self) -> list[str]:
        lines = ["| " + " | ".join(self.header) + " |"]
        lines.append("|" + "|".join("---" if column.words else "---:" for column in self.columns) + "|")
        return lines + ["| " + " | ".join(row) + " |" for row in self.rows] + [""]


def aligned(
    rows: Sequence[Sequence[str]],
    words: Container[int],
    width: int | None = None,
    keys: int = 1,
    indent: str = "  ",
) -> list[str]:
    """The rows (a header first) as lines; columns in ``words`` left-aligned. With a ``width``, a
    wider table is cut into blocks that fit it, the first ``keys`` columns starting each; a block's
    last column, if in ``words``, wraps to the room left (never below NARROWEST)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    columns = list(range(len(widths)))

    def span(block: list[int]) -> int:
        return len(indent) + sum(widths[i] for i in block) + GAP * (len(block) - 1)

    if width is None or span(columns) <= width:
        return _lines(rows, columns, widths, words, indent)
    blocks = [columns[:keys]]
    for column in columns[keys:]:
        if len(blocks[-1]) > keys and span([*blocks[-1], column]) > width:
            blocks.append(columns[:keys])
        blocks[-1].append(column)
    lines = []
    for block in blocks:
        last = block[-1]
        room = max(width - span(block[:-1]) - GAP, NARROWEST)
        if widths[last] <= room or last not in words:
            lines += _lines(rows, block, widths, words, indent)
            continue
        wrapped = []
        for row in rows:
            first, *more = textwrap.wrap(row[last], room) or [""]
            wrapped.append([*row[:last], first])
            wrapped += [[""] * last + [piece] for piece in more]  # the row's other cells once
        lines += _lines(wrapped, block, [*widths[:last], room], words, indent)
    return lines


def _lines(
    rows: Sequence[Sequence[str]], block: list[int], widths: list[int], words: Container[int], indent: str
) -> list[str]:
    lines = []
    for row in rows:
        cells = [row[i].ljust(widths[i]) if i in words else row[i].rjust(widths[i]) for i in block]
        lines.append((indent + (" " * GAP).join(cells)).rstrip())
    return lines
