"""Reading the docs as data: fenced code blocks, snippet includes, and the CI jobs' commands."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$", re.M | re.S)
SNIPPET = re.compile(r'^[ \t]*-{1,}8<-{1,}[ \t]+"(?P<path>[^"]+?)(?::(?P<section>[-_0-9a-z]+))?"[ \t]*$', re.M)


@dataclass
class Block:
    page: Path
    line: int
    language: str
    info: str
    body: str

    @property
    def included(self) -> bool:
        """A block whose body is a snippet include shows source code; it is not run here."""
        return bool(SNIPPET.search(self.body))


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for m in FENCE.finditer(text):
        info = m.group("info").strip()
        language = info.split()[0] if info else ""
        found.append(Block(page, text.count("\n", 0, m.start()) + 1, language, info, m.group("body")))
    return found


def snippet_includes(page: Path) -> list[tuple[str, str | None]]:
    return [(m.group("path"), m.group("section")) for m in SNIPPET.finditer(page.read_text())]


def section(path: Path, name: str) -> str:
    """The text between ``--8<-- [start:name]`` and ``[end:name]`` in a source file, dedented."""
    import textwrap

    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.search(rf"--8<-- \[start:{re.escape(name)}\]", line))
    end = next(i for i, line in enumerate(lines) if re.search(rf"--8<-- \[end:{re.escape(name)}\]", line))
    return textwrap.dedent("\n".join(lines[start + 1 : end]))
