"""Views written as HTML, SVG, Markdown and text, the notebook repr, and the fast layout."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from rich import box
from rich.console import Group
from rich.table import Table
from views_support import cells, html_rows, render

import shapetrace
from shapetrace.render.cells import line_text, plain
from shapetrace.render.export import save, to_html, to_markdown, to_svg, to_text
from shapetrace.render.filters import Filter
from shapetrace.render.table import TraceTable

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def gpt(gpt12):
    return gpt12[1]


@pytest.fixture(scope="module")
def mixed():
    """A short trace with a pipe in its code, dtype and device changes, and a failed op."""
    a, b = torch.rand(2, 3) > 0.5, torch.rand(2, 3) > 0.5
    x, w = torch.rand(2, 3), torch.rand(5, 5, device="meta")
    with pytest.raises(RuntimeError), shapetrace.trace(symbolic=False) as t:
        either = a | b
        y = x.half() * 2
        x @ w
    del either, y
    return t


@pytest.mark.parametrize("kind", ["table", "tree", "summary"])
def test_html_has_the_rows_the_console_shows(gpt, kind):
    view = gpt.view(kind)
    document = view.to_html()
    assert document.startswith("<!DOCTYPE html>") and document.rstrip().endswith("</html>")
    headers, rows = html_rows(document)
    assert headers == [c.header for c in view.columns]
    assert rows == cells(view) and len(rows) == len(view.rows)
    console = render(view, width=250)
    for row in rows:  # every row's cells appear, in order, on one console line
        assert any(all(c in line for c in row) for line in console.splitlines()), row
    if kind != "table":  # the tree and the summary start with the header summary
        assert "41,248 parameters" in document and "SmallGPT" in document


def test_html_escapes_code_and_highlights_the_failed_op(mixed):
    document = to_html(mixed.table())
    assert "either = a | b" in html.unescape(document)
    _, rows = html_rows(document)
    assert rows == cells(mixed.table())
    assert document.count("<tr style=\"background:") == 1
    assert "✗ raised" in document and "float16" in document
    shown = html.unescape(re.sub(r"<[^>]+>", "", document))
    assert "✗ matmul-shape" in shown and re.search(r"Fix( \(checked\))?:|Suggestion:", shown)  # the diagnosis panel follows, as in the console


def test_markdown_is_a_table_of_the_same_rows(mixed):
    view = mixed.table()
    text = to_markdown(view)
    lines = text.splitlines()
    start = lines.index("| # | line | code | op | module | output shape |")
    assert lines[start + 1] == "| ---: | --- | --- | --- | --- | --- |"
    body = lines[start + 2 : start + 2 + len(view.rows)]
    assert len(body) == len(view.rows) == len(mixed.ops)
    pipe_row = next(line for line in body if "either" in line)
    assert "a \\| b" in pipe_row and pipe_row.count(" | ") == 5  # the code's pipe escaped: still 6 cells
    assert "✗ raised" in body[-1]
    assert "unless shown" in text and "raised RuntimeError" in text


def test_markdown_of_the_tree_keeps_its_indentation(gpt):
    text = to_markdown(gpt.tree())
    assert "- model    SmallGPT · 41,248 parameters" in text.replace("\u00a0", " ")
    assert "| blocks.0-11 ×12  Block |" not in text and "├─ ▾ blocks.0-11 ×12  Block" in text
    assert "\u00a0\u00a0\u00a0├─ norm1  LayerNorm" not in text  # guides, not blanks, before a nested row
    assert "│  ├─ norm1  LayerNorm" in text


def test_svg_is_valid_and_shows_every_line(gpt):
    view = gpt.tree()
    document = to_svg(view)
    root = ET.fromstring(document)
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    plain_text = to_text(view)
    assert len(texts) == len([line for line in plain_text.splitlines() if line.strip()])
    assert any("blocks.0-11" in t and "×12" in t for t in texts)
    assert any("layer_norm" in t for t in texts)
    runs = list(root.iter("{http://www.w3.org/2000/svg}tspan"))
    for run in runs:  # every run placed at its cell and stretched to its cells: no drift in any font
        column = (float(run.get("x")) - 12) / 8.4
        assert abs(column - round(column)) < 1e-6
        assert abs(float(run.get("textLength")) - 8.4 * len(run.text)) < 1e-6
    assert "<style" not in document


def test_text_and_save_by_suffix(tmp_path, gpt):
    view = gpt.module_summary()
    for name, check in (("s.html", "<table "), ("s.svg", "<svg"), ("s.md", "| Layer (type) |"), ("s.txt", "Param #")):
        path = save(view, tmp_path / name)
        assert check in path.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="cannot tell the format"):
        save(view, tmp_path / "s.pdf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.html", "s.md", "s.svg", "s.txt"]


def test_notebook_repr(gpt, mixed):
    fragment = mixed._repr_html_()
    assert "<html" not in fragment and "<table" in fragment
    assert "<style" not in fragment and "class=" not in fragment.replace('class="shapetrace"', "")  # all inline
    assert all('style="' in td for td in re.findall(r"<t[dh](?:\s[^>]*)?>", fragment))  # each cell aligned itself
    assert html_rows(fragment)[1] == cells(mixed.table())
    assert "✗ matmul-shape" in html.unescape(re.sub(r"<[^>]+>", "", fragment))  # the diagnosis, as the CLI prints it
    big = gpt._repr_html_()  # 330 ops: still the table
    assert html_rows(big)[1] == cells(gpt.table())
    assert ["", "models.py:83", "├─ ▾ blocks.0-11 ×12  Block", "27 ops", "(2, 16, 16)"] in html_rows(
        gpt.tree()._repr_html_()
    )[1]


def test_fast_layout_looks_like_the_rich_table(gpt):
    view = gpt.table()
    reference = Table(header_style="bold", box=box.SIMPLE_HEAD)  # what rich itself prints for these rows
    for column in view.columns:
        reference.add_column(column.header, style=column.style, justify=column.justify, no_wrap=True)
    for row in view.rows:
        reference.add_row(*(line_text(c) for c in row.cells), style=row.style)
    rich_text = render(reference, width=250)
    fast_text = render(Group(*[line_text(line) for line, _ in view.layout(view.rows, 250)]), width=250)
    assert [line.rstrip() for line in fast_text.splitlines()] == [line.rstrip() for line in rich_text.splitlines()]
    narrow = render(gpt.tree(), width=90)
    assert all(len(line) <= 90 for line in narrow.splitlines()[8:-3])
    assert "blocks.0-11" in narrow


def test_filtered_table_keeps_matching_ops_and_the_failure(mixed):
    view = TraceTable(mixed, filter=Filter.of(op="half"))
    assert [row[3] for row in cells(view)] == ["half", "@"]
    assert "showing 2 of 4 ops: op half" in render(view)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
def test_html_opens_in_a_browser_with_the_same_rows(tmp_path, gpt):
    view = gpt.tree()
    page = view.save(tmp_path / "trace.html")
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)
    result = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--dump-dom", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    headers, rows = html_rows(result.stdout)  # the DOM the browser built from the file
    assert headers == [c.header for c in view.columns]
    assert rows == cells(view)
    shown = html.unescape(re.sub(r"<[^>]+>", "", result.stdout))
    assert all(plain(line) in shown for line in view.header + view.footer)
    assert "41,248 parameters" in shown and "1 repeated entry folded" in shown
    assert Path(page).read_text(encoding="utf-8").count("<tr") == len(rows) + 1
