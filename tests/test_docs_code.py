"""The docs cannot drift: their Python runs, their includes point at real source regions, and
the CI jobs they show run the real CLI."""

from __future__ import annotations

import json
import pathlib
import shlex
import tempfile

import pytest

from tests.docs_tools import DOCS, PAGES, ROOT, SNIPPET, blocks, section, snippet_includes

# Languages shown but not run: shell sessions, CI files, program output.
SHOWN_ONLY = {"console", "yaml", "text"}


def test_the_docs_exist():
    names = {p.name for p in PAGES}
    assert {"index.md", "paper.md", "porting.md", "ci.md", "pitfalls.md", "api.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_block_is_run_or_included_or_marked(page):
    """A block is Python that runs, a snippet include, or says in its language that it is not Python."""
    for block in blocks(page):
        where = f"{page.name}:{block.line}"
        assert block.language, f"{where}: a code block without a language; say python (run) or console/text/yaml"
        assert block.language == "python" or block.language in SHOWN_ONLY, f"{where}: unknown language {block.language!r}"
        if block.included:
            assert "title=" in block.info, f"{where}: included source needs a title naming its file"


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if any(b.language == "python" and not b.included for b in blocks(p))],
                         ids=lambda p: p.name)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    """Each page's Python blocks run in order in one namespace, as a reader would paste them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # a page's mkdtemp() stays in tmp_path
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for block in blocks(page):
        if block.language != "python" or block.included:
            continue
        code = compile(block.body, f"{page.relative_to(ROOT)}:{block.line}", "exec")
        exec(code, namespace)  # noqa: S102  (our own docs)
    # what a page writes stays in tmp_path (a weight file is 240 MB; left in /tmp they filled CI's disk)
    for name, value in namespace.items():
        if isinstance(value, pathlib.Path) and value.is_absolute() and value.exists():
            where = value.resolve()
            assert where.is_relative_to(tmp_path.resolve()) or where.is_relative_to(ROOT), f"{page.name}: {name} = {value}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_includes_name_a_real_section(page):
    """Every included region exists and is non-empty (the strict build fails on a missing one too)."""
    for path, name in snippet_includes(page):
        if path.startswith("docs/assets/generated/"):
            continue  # written by docs/scripts; checked by test_docs_site
        source = ROOT / path
        assert source.is_file(), f"{page.name} includes {path}, which does not exist"
        if name:
            assert section(source, name).strip(), f"{page.name} includes an empty section {path}:{name}"


def test_source_markers_are_paired():
    """A start marker without its end (or twice) would include the wrong code."""
    import re

    for package in ("alexnet_spec", "alexnet_torch", "alexnet_keras", "parity"):
        for path in (ROOT / package).glob("*.py"):
            text = path.read_text()
            starts = re.findall(r"--8<-- \[start:([-_0-9a-z]+)\]", text)
            ends = re.findall(r"--8<-- \[end:([-_0-9a-z]+)\]", text)
            assert sorted(starts) == sorted(ends) and len(set(starts)) == len(starts), path


def _ci_commands() -> list[str]:
    import yaml

    commands = []
    github = yaml.safe_load((DOCS / "ci" / "github-actions.yml").read_text())
    for job in github["jobs"].values():
        commands += [step["run"] for step in job["steps"] if "run" in step]
    gitlab = yaml.safe_load((DOCS / "ci" / "gitlab-ci.yml").read_text())
    commands += gitlab["parity"]["script"]
    return commands


@pytest.mark.slow
def test_ci_jobs_run_the_real_cli(tmp_path, monkeypatch, capsys):
    """Every ``alexnet-parity`` line of both jobs, run with the real CLI against real checkpoints."""
    import alexnet_keras
    import alexnet_torch
    from parity import randomize_torch, torch_to_keras
    from alexnet_cli.parity import main

    commands = _ci_commands()
    assert any("pytest" in c for c in commands) and any("pip install" in c for c in commands)
    parity_lines = sorted({c for c in commands if c.startswith("alexnet-parity ")})
    assert len(parity_lines) >= 2, parity_lines

    monkeypatch.chdir(tmp_path)
    module = randomize_torch(alexnet_torch.build("paper"), seed=0)
    alexnet_torch.save_weights(module, tmp_path / "checkpoints" / "alexnet.pt")
    alexnet_keras.save_weights(torch_to_keras(module), tmp_path / "checkpoints" / "alexnet.keras")

    for line in parity_lines:
        argv = shlex.split(line)[1:]
        target = None
        if ">" in argv:
            target = argv[argv.index(">") + 1]
            argv = argv[: argv.index(">")]
        capsys.readouterr()
        code = main(argv)
        out = capsys.readouterr().out
        assert code == 0, f"{line!r} exited {code}:\n{out}"
        if target:
            assert json.loads(out)["ok"] is True


# The code a side-by-side column shows without scrolling at 1366 px (test_docs_site measures it in
# Chromium, in the slow tier): 83 characters fit, 88 did not. Comments and docstrings wrap there.
COLUMN_CHARACTERS = 84


def _side_by_side_includes(page):
    """The (path, section) includes inside a page's ``<div class="side-by-side">`` columns."""
    depth, found = 0, []
    for line in page.read_text().splitlines():
        if depth == 0 and 'class="side-by-side"' in line:
            depth = 1
            continue
        if depth:
            depth += line.count("<div") - line.count("</div>")
            match = SNIPPET.match(line)
            if match and match.group("section"):
                found.append((match.group("path"), match.group("section")))
    return found


def _code_too_wide(code: str, width: int) -> list[str]:
    """Lines of ``code`` whose code (not a comment or a docstring, which wrap) passes ``width``."""
    import io
    import tokenize

    prose: set[int] = set()  # lines inside a docstring
    comment_at: dict[int, int] = {}  # line -> column where its comment starts
    previous = tokenize.NEWLINE
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.COMMENT:
            comment_at[token.start[0]] = token.start[1]
        elif token.type == tokenize.STRING and previous in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT):
            prose |= set(range(token.start[0], token.end[0] + 1))
        if token.type not in (tokenize.COMMENT, tokenize.NL):
            previous = token.type
    wide = []
    for number, line in enumerate(code.splitlines(), 1):
        shown = line[: comment_at.get(number, len(line))].rstrip()
        if number not in prose and len(shown) > width:
            wide.append(f"{len(shown)} characters: {line.strip()}")
    return wide


@pytest.mark.parametrize("page", [p for p in PAGES if _side_by_side_includes(p)], ids=lambda p: p.name)
def test_side_by_side_code_fits_its_column(page):
    """The fast tier's early warning for test_docs_site's 1366 px check: no code line in a
    side-by-side column is longer than a column shows."""
    for path, name in _side_by_side_includes(page):
        if path.startswith("docs/assets/generated/"):
            continue
        wide = _code_too_wide(section(ROOT / path, name), COLUMN_CHARACTERS)
        assert not wide, f"{page.name} shows {path}:{name}; wrap these lines:\n" + "\n".join(wide)
