"""Plain-text tables for reports: one formatter, so every report lines up the same way."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence


def format_table(head: Sequence[object], rows: Iterable[Sequence[object]], *, right: Collection[int] = ()) -> list[str]:
    """The lines of a table: ``head``, a line of dashes under each column, then ``rows``.

    Columns are as wide as their widest cell (``str`` of it) and two spaces apart; a column whose
    index is in ``right`` is aligned right, the others left; trailing blanks are dropped.
    """
    body = [[str(c) for c in row] for row in rows]
    head = [str(c) for c in head]
    widths = [max(len(c) for c in col) for col in zip(head, *body)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(head), line(["-" * w for w in widths]), *map(line, body)]


__all__ = ["format_table"]
