"""The README and docs/ show commands and links that work: a doc that drifts from the code misleads every reader.

Checked: each `mnist-pipeline ...` line of a fenced code block parses with the real CLI parser, each `make X`
(in code blocks and inline code) names a Makefile target, and each relative link points to an existing file and,
for Markdown files, to an existing heading.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_OPERATORS = {"|", "||", "&", "&&", ";", ">", ">>", "<", "2>"}
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`([^`]+)`")


def read_lines(doc: Path) -> tuple[list[str], list[str]]:
    """The lines inside fenced code blocks (backslash continuations joined), and the prose lines outside them."""
    code, prose, inside, pending = [], [], False, ""
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
        elif not inside:
            prose.append(line)
        elif line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
        else:
            code.append((pending + line).strip())
            pending = ""
    return code, prose


def split_command(line: str) -> list[str]:
    """A shell line's words up to its first operator (`>`, `|`, `&&`...), without quotes or a trailing comment."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = []
    for word in lexer:
        if word in SHELL_OPERATORS:
            break
        words.append(word)
    return words


def collect_cli_examples() -> list[tuple[str, str]]:
    examples = []
    for doc in DOCS:
        for line in read_lines(doc)[0]:
            if line.split(" ", 1)[0].removeprefix(".venv/bin/") == "mnist-pipeline":
                examples.append((doc.relative_to(ROOT).as_posix(), line))
    return examples


def collect_make_commands() -> list[tuple[str, str]]:
    commands = []
    for doc in DOCS:
        code, prose = read_lines(doc)
        for line in code + [span for text in prose for span in INLINE_CODE.findall(text)]:
            if line.startswith("make "):
                commands.append((doc.relative_to(ROOT).as_posix(), line))
    return commands


def collect_links() -> list[tuple[str, str]]:
    links = []
    for doc in DOCS:
        for target in (target for line in read_lines(doc)[1] for target in LINK.findall(line)):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#"):
                links.append((doc.relative_to(ROOT).as_posix(), target))
    return links


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, flags=re.MULTILINE))


def heading_anchors(doc: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    anchors: set[str] = set()
    inside = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
        if inside or not line.startswith("#"):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


CLI_EXAMPLES = collect_cli_examples()
MAKE_COMMANDS = collect_make_commands()
LINKS = collect_links()


def test_docs_show_commands_and_links() -> None:
    """The collectors find what the docs show, so an empty parametrisation cannot pass by finding nothing."""
    assert len(CLI_EXAMPLES) >= 10
    assert {"run", "test", "test-fast"} <= {split_command(line)[1] for _, line in MAKE_COMMANDS}
    assert any(target.endswith("report.png") for _, target in LINKS)


@pytest.mark.parametrize(("doc", "line"), CLI_EXAMPLES, ids=[f"{doc}: {line}" for doc, line in CLI_EXAMPLES])
def test_cli_example_parses(doc: str, line: str) -> None:
    args = split_command(line)[1:]
    try:
        build_parser().parse_args(args)
    except SystemExit as exc:
        if exc.code != 0:
            pytest.fail(f"{doc}: `{line}` does not parse with cli.main.build_parser()", pytrace=False)


@pytest.mark.parametrize(("doc", "line"), MAKE_COMMANDS, ids=[f"{doc}: {line}" for doc, line in MAKE_COMMANDS])
def test_make_target_exists(doc: str, line: str) -> None:
    goals = [word for word in split_command(line)[1:] if not word.startswith("-") and "=" not in word]
    missing = [goal for goal in goals if goal not in makefile_targets()]
    assert goals and not missing, f"{doc}: `{line}`: expected Makefile targets, found none named {missing or goals}"


@pytest.mark.parametrize(("doc", "target"), LINKS, ids=[f"{doc} -> {target}" for doc, target in LINKS])
def test_relative_link_resolves(doc: str, target: str) -> None:
    path, _, anchor = target.partition("#")
    file = (ROOT / doc).parent / path
    assert file.exists(), f"{doc}: link {target}: expected {file.relative_to(ROOT.parent)} to exist"
    assert file.resolve().is_relative_to(ROOT), f"{doc}: link {target}: points outside the repository"
    if anchor and file.suffix == ".md":
        assert anchor in heading_anchors(file), f"{doc}: link {target}: expected a heading #{anchor} in {path}"
