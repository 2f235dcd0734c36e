"""Tables as Markdown, and a table cut into pieces that each repeat its header row.

A price list read as "Xinjiang 20 Tibet 25 Beijing 8" cannot be searched or quoted; as
`| Region | Fee |` rows under their header, a chunk holding "Xinjiang" also holds the fee and
the column it is in, whichever piece of a long table it falls in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["markdown_table", "split_markdown_table"]


def _cell(value: object) -> str:
    text = "" if value is None else " ".join(str(value).split())
    return text.replace("|", "\\|")


def markdown_table(rows: Sequence[Sequence[object]]) -> str:
    """Rows (the first one the header) as a Markdown table; empty rows and columns dropped.

    Args:
        rows: Cell values row by row; None and empty cells become empty cells.

    Returns:
        The table, or "" when no cell has text.
    """
    grid = [[_cell(c) for c in row] for row in rows]
    grid = [row for row in grid if any(row)]
    if not grid:
        return ""
    width = max(len(row) for row in grid)
    grid = [row + [""] * (width - len(row)) for row in grid]
    keep = [j for j in range(width) if any(row[j] for row in grid)]
    grid = [[row[j] for j in keep] for row in grid]
    lines = ["| " + " | ".join(row) + " |" for row in grid]
    lines.insert(1, "|" + "|".join(" --- " for _ in keep) + "|")
    return "\n".join(lines)


def split_markdown_table(
    table: str, chunk_size: int, count_tokens: Callable[[str], int]
) -> list[str]:
    """A Markdown table cut between rows into pieces of at most `chunk_size` tokens, each
    starting with the header row and its separator (a single row longer than that is kept
    whole: a row is the smallest unit that still reads as a table row).
    """
    lines = table.split("\n")
    if len(lines) <= 2 or count_tokens(table) <= chunk_size:
        return [table]
    head = lines[:2]
    head_tokens = count_tokens("\n".join(head))
    pieces: list[str] = []
    cur: list[str] = []
    used = head_tokens
    for row in lines[2:]:
        n = count_tokens(row)
        if cur and used + n > chunk_size:
            pieces.append("\n".join([*head, *cur]))
            cur, used = [], head_tokens
        cur.append(row)
        used += n
    if cur:
        pieces.append("\n".join([*head, *cur]))
    return pieces
