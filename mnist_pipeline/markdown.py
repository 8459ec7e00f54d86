"""Text from data inside the Prefect UI's artifacts (CommonMark with GFM tables): the one escaper every artifact uses.

It sits at the lowest layer so that every artifact's module (report, predict, increments) can import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# ASCII punctuation: what CommonMark lets a backslash escape.
MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


class Markdown(str):
    """Text the pipeline wrote as markdown (`**yes**`, a code span of a hex digest): `markdown_table` keeps it as is."""


def escape_markdown(value: object) -> str:
    """Text that renders as itself, on one line, in CommonMark/GFM (what the Prefect UI renders artifacts with).

    Every ASCII punctuation character is backslash-escaped, so no markup, table break or raw HTML can come from the
    text; whitespace runs become one space. Not for code spans, where nothing is unescaped."""
    return MARKDOWN_PUNCTUATION.sub(r"\\\1", " ".join(str(value).split()))


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]], align: str = "") -> list[str]:
    """A GFM table with every cell escaped but `Markdown` ones; `align` holds an `l` or `r` per column (left by
    default)."""
    rule = ["---:" if side == "r" else "---" for side in align.ljust(len(header), "l")]
    cells = [[escape_markdown(cell) for cell in header], rule]
    cells += [[cell if isinstance(cell, Markdown) else escape_markdown(cell) for cell in row] for row in rows]
    return [f"| {' | '.join(row)} |" for row in cells]
