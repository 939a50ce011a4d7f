"""Notebooks: a notebook executed in a real kernel (nbclient), exported with JupyterLab's style
sheets (nbconvert's lab template, light and dark) and read in headless Chromium: the trace's
view with its diagnosis, each output styled on its own, left-aligned, readable in both themes,
cells named ``In [n]``; the IPython extension's ``%%shapetrace`` and ``%shapetrace``."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest
from browser import CHROMIUM, Browser
from views_support import BENCH_MODELS

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
nbconvert = pytest.importorskip("nbconvert")
pytest.importorskip("ipykernel")

SOURCE = Path(__file__).resolve().parents[2] / "src"

CELLS = [
    f"""\
import sys
sys.path[:0] = [{str(SOURCE)!r}, {str(BENCH_MODELS.parent)!r}]
import torch, shapetrace
from models import SmallGPT
%load_ext shapetrace""",
    """\
torch.manual_seed(0)
model = SmallGPT(vocab=50, ctx=16, dim=16, depth=2, heads=2).eval()
idx = torch.randint(0, 50, (2, 16))
with torch.no_grad(), shapetrace.trace(model, symbolic=False) as t:
    logits = model(idx)
t""",
    """\
%%shapetrace -o bad --no-symbolic
x = torch.rand(2, 3)
y = x.t() @ x
z = x @ torch.rand(4, 5)""",
    "bad",
    "t.tree()",
    "%shapetrace --op sum --no-symbolic total = x.sum() + y.sum()",
    "t.graph()",
]


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """The notebook above, executed."""
    folder = tmp_path_factory.mktemp("notebook")
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    client = nbclient.NotebookClient(
        book, kernel_name="python3", allow_errors=True, timeout=600, resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    nbformat.write(book, folder / "views.ipynb")
    return book


def outputs(cell) -> list[str]:
    """A cell's HTML outputs."""
    return [o["data"]["text/html"] for o in cell.outputs if "text/html" in o.get("data", {})]


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def test_a_trace_shows_as_in_the_terminal(notebook):
    (table,) = outputs(notebook.cells[1])
    shown = text_of(table)
    assert "output shape" in shown and "(2, 16, 48)" in shown and "blocks.1.attn.qkv" in shown
    assert "<style" not in table  # nothing another output could redefine
    assert "ipykernel" not in shown and "In [2]:6" not in shown  # the model's lines are in models.py


def test_a_traced_cell_shows_its_trace_its_diagnosis_and_raises(notebook):
    cell = notebook.cells[2]
    (shown,) = outputs(cell)
    errors = [o for o in cell.outputs if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "RuntimeError"  # the cell still fails, after the trace
    text = text_of(shown)
    assert "5 ops, 0 module calls in In [3]" in text  # the cell by its number, not a temporary file
    assert "✗ op 4 (@) at In [3]:4 raised RuntimeError" in text  # and the cell's own line numbers
    assert re.search(r"│ In \[3\]:4  `@`", text)
    assert "y = x.t() @ x" in text and "(3, 3)" in text
    assert "✗ raised" in text and "✗ matmul-shape" in text and re.search(r"Fix( \(checked\))?:|Suggestion:", text)
    assert "/tmp/" not in text and ".py:" not in text
    (again,) = outputs(notebook.cells[3])  # `bad`: the Trace kept with -o, displayed
    assert "✗ matmul-shape" in text_of(again)


def test_the_tree_and_a_traced_statement(notebook):
    (tree,) = outputs(notebook.cells[4])
    assert "▾ blocks.0-1 ×2  Block" in text_of(tree) and "model    SmallGPT" in text_of(tree)
    (statement,) = outputs(notebook.cells[5])
    text = text_of(statement)
    assert "total = x.sum() + y.sum()" in text and "showing 2 of 3 ops: op sum" in text
    assert "In [6]" in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz (apt-get install graphviz)")
def test_the_picture_shows_inline(notebook):
    (picture,) = outputs(notebook.cells[6])
    assert picture.startswith('<div style="max-width:100%;overflow:auto"><svg')  # no XML prolog in the page
    assert ">blocks.0&#45;1<" in picture and ">×2<" in picture and ">attn<" in picture
    assert "(2, 16, 48)" not in picture  # attn is one node at the depth that fits: qkv is inside
    assert "image/svg+xml" in notebook.cells[6].outputs[0]["data"]


CHECK_PAGE = """(() => {
  const luminance = rgb => {
    const [r, g, b] = rgb.map(c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const parse = color => (color.match(/[\\d.]+/g) || []).map(Number);
  const background = element => {
    for (let e = element; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const contrast = (a, b) => { const [x, y] = [luminance(a) + 0.05, luminance(b) + 0.05]; return Math.max(x, y) / Math.min(x, y); };
  const boxes = [...document.querySelectorAll(".shapetrace")];
  const cells = boxes.flatMap(box => [...box.querySelectorAll("td, th")]);
  const misaligned = cells.filter(td => getComputedStyle(td).textAlign !== (td.style.textAlign || "left")).length;
  const codeAligns = [...new Set(boxes.flatMap(box => [...box.querySelectorAll("tbody tr")].map(tr => getComputedStyle(tr.children[2]).textAlign)))];
  const texts = boxes.flatMap(box => [...box.querySelectorAll("span, td, pre")]).filter(e => e.textContent.trim());
  let worst = 99, worstText = "";
  for (const e of texts) {
    const ratio = contrast(parse(getComputedStyle(e).color).slice(0, 3), background(e));
    if (ratio < worst) { worst = ratio; worstText = e.textContent.slice(0, 40); }
  }
  const restyled = boxes.flatMap(box => [...box.querySelectorAll("span[style*='color']")]).filter(span => {
    const probe = document.createElement("span"); probe.style.color = span.style.color; document.body.appendChild(probe);
    const wanted = getComputedStyle(probe).color; probe.remove();
    return getComputedStyle(span).color !== wanted;
  }).length;
  return {boxes: boxes.length, cells: cells.length, misaligned, codeAligns, worst, worstText, restyled,
          page: getComputedStyle(document.body).backgroundColor};
})()"""


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_in_jupyterlab_styles_left_aligned_readable_and_each_output_its_own(notebook, theme, tmp_path):
    exporter = nbconvert.HTMLExporter(template_name="lab", theme=theme)
    page, _ = exporter.from_notebook_node(notebook)
    assert "text-align: right" in page  # JupyterLab's style sheet, which right-aligns table cells, is there
    path = tmp_path / f"notebook-{theme}.html"
    path.write_text(page, encoding="utf-8")
    with Browser(width=1400, height=1000) as browser:
        browser.open(path)
        result = browser.evaluate(CHECK_PAGE)
    assert result["boxes"] == 5 and result["cells"] > 300  # the picture is an SVG, not a .shapetrace box
    assert result["misaligned"] == 0 and result["codeAligns"] == ["left"]
    assert result["restyled"] == 0  # every colour is the one its own output set
    dark = sum(int(c) for c in re.findall(r"\d+", result["page"])[:3]) < 200
    assert dark == (theme == "dark")
    assert result["worst"] >= 3, (result["worst"], result["worstText"])  # every text readable on its background
