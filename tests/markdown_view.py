"""Markdown as a reader sees it: rendered as CommonMark with GFM tables (markdown-it-py), read back as text, tags
and table cells. tests/test_hostile_ui_browser.py checks the same escaping in the real Prefect UI."""

from __future__ import annotations

from html.parser import HTMLParser

from markdown_it import MarkdownIt

RENDERER = MarkdownIt("commonmark").enable("table")
# Hostile input names: a remote image, raw HTML, an apostrophe (once shown as `it&#x27;s`), every table and
# inline construct, a backslash.
HOSTILE_NAMES = [
    "![x](http://evil/t.png)",
    "<img src=x>",
    "it's 7.png",
    "a|b \\ `c` *d* _e_ [l](u) # &amp; <u>f</u>",
]


class RenderedMarkdown(HTMLParser):
    """The rendered page: `text` (each element's text on lines of its own), `tags` (name and attributes), `tables`
    (each table's rows of cell texts, header row first)."""

    def __init__(self, markdown: str) -> None:
        super().__init__()
        self.html = RENDERER.render(markdown)
        self.chunks: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None
        self.feed(self.html)
        self.close()
        self.text = "".join(self.chunks)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.chunks.append("\n")
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        self.chunks.append("\n")
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)
        if self.cell is not None:
            self.cell.append(data)

    @property
    def rows(self) -> list[list[str]]:
        """Every table's rows, one table after the other."""
        return [row for table in self.tables for row in table]

    def tag_names(self) -> set[str]:
        return {tag for tag, _ in self.tags}
