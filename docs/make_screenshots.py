"""Make the screenshots in docs/screenshots/ from the current code, so they stay current:

    python docs/make_screenshots.py

- terminal.png: the CLI on the Fashion-MNIST CNN fed 32 x 32 images, at 120 columns (the table,
  the failure, the diagnosis), drawn from its real colour output;
- notebook.png: a notebook executed in a kernel (nbclient) with the extension, in JupyterLab's
  style sheet (nbconvert's lab template);
- graph-gpt.png, graph-unet.png: the dataflow pictures of a 24-layer GPT and of a U-Net that
  fails at a skip connection;
- report.png: the interactive report of the GPT, a folded block opened and a row followed to
  its source.

Needs Chromium, Graphviz's dot, and nbclient, nbformat, nbconvert and ipykernel.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "render")]

import nbclient  # noqa: E402
import nbconvert  # noqa: E402
import nbformat  # noqa: E402
import torch  # noqa: E402
from browser import Browser  # noqa: E402  (tests/render/browser.py: Chromium over the DevTools pipe)
from rich.console import Console  # noqa: E402
from rich.text import Text  # noqa: E402
from views_support import BENCH_MODELS, EXAMPLES, UNet, small_gpt  # noqa: E402

import shapetrace  # noqa: E402

FASHION = f"""\
import sys
sys.path.insert(0, {str(EXAMPLES)!r})
import torch
from fashion_cnn import Network

model = Network()
images = torch.rand(8, 1, 32, 32)                        # (B, C, H, W): 32 x 32, not 28 x 28
logits = model(images)                                   # (B, 10)
"""

NOTEBOOK = [
    f"""\
import sys
sys.path[:0] = [{str(ROOT / "src")!r}, {str(BENCH_MODELS.parent)!r}]
import torch, shapetrace
from models import SmallGPT
%load_ext shapetrace""",
    """\
model = SmallGPT(vocab=50, ctx=16, dim=16, depth=2, heads=2).eval()
idx = torch.randint(0, 50, (2, 16))
with torch.no_grad(), shapetrace.trace(model) as t:
    logits = model(idx)
t.module_summary()""",
    """\
%%shapetrace -o bad
x = torch.rand(2, 16, 48)
q, k, v = x.chunk(3, dim=-1)
att = (q @ k.transpose(1, 2)).softmax(-1)
out = att @ v.transpose(1, 2)[:, :8]""",
]


def terminal(folder: Path) -> None:
    script = folder / "fashion_32.py"
    script.write_text(FASHION)
    env = {**os.environ, "COLUMNS": "120", "FORCE_COLOR": "1", "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "shapetrace", str(script)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    console = Console(record=True, width=120, force_terminal=True, file=io.StringIO())
    console.print(Text.from_ansi(result.stdout))
    page = folder / "terminal.html"
    svg = console.export_svg(title="shapetrace fashion_32.py")
    page.write_text(f'<!DOCTYPE html><body style="margin:0;background:#fff">{svg}</body>', encoding="utf-8")
    with Browser(width=1500, height=400) as browser:
        browser.open(page)
        width, height = browser.evaluate(
            "(() => { const r = document.querySelector('svg').getBoundingClientRect(); return [Math.ceil(r.width), Math.ceil(r.height)]; })()"
        )
        browser.resize(width, height)
        browser.screenshot(OUT / "terminal.png", full_page=False)


def notebook(folder: Path) -> None:
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK]
    nbclient.NotebookClient(book, kernel_name="python3", allow_errors=True, timeout=600).execute()
    for output in book.cells[2].outputs:  # the traceback is the kernel's: keep its first lines
        if output.get("output_type") == "error":
            output["traceback"] = output["traceback"][:1] + output["traceback"][-1:]
    page, _ = nbconvert.HTMLExporter(template_name="lab", theme="light").from_notebook_node(book)
    path = folder / "notebook.html"
    path.write_text(page, encoding="utf-8")
    with Browser(width=1100, height=900) as browser:
        browser.open(path)
        browser.evaluate("document.querySelectorAll('.jp-Cell')[0].style.display = 'none'")
        browser.screenshot(OUT / "notebook.png")


def graphs() -> None:
    model = small_gpt(depth=24)
    with torch.no_grad(), shapetrace.trace(model) as t:
        model(torch.randint(0, 50, (2, 16)))
    t.graph().save(OUT / "graph-gpt.png")
    torch.manual_seed(0)
    unet = UNet()
    try:
        with shapetrace.trace(unet, dims="B C H W") as failed:
            unet(torch.rand(2, 3, 60, 60))
    except RuntimeError:
        pass
    failed.graph(depth=1).save(OUT / "graph-unet.png")


def report(folder: Path) -> None:
    model = small_gpt(depth=24)
    with torch.no_grad(), shapetrace.trace(model) as t:
        model(torch.randint(0, 50, (2, 16)))
    path = t.report().save(folder / "report.html")
    softmax = next(op for op in t.ops if op.op == "softmax")
    with Browser(width=1500, height=950) as browser:
        browser.open(path)
        browser.click("tr.folded")
        browser.type("#filter", "softmax")
        row = browser.evaluate(
            f"[...document.querySelectorAll('#rows tbody tr')].findIndex(tr => tr.children[0].textContent === '{softmax.index}')"
        )
        browser.click(f'tr[data-i="{row}"]')
        browser.click("#filter")
        browser.press("Backspace", len("softmax"))
        browser.evaluate("window.scrollTo(0, 0)")
        browser.screenshot(OUT / "report.png", full_page=False)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shapetrace-screenshots-") as temporary:
        folder = Path(temporary)
        terminal(folder)
        notebook(folder)
        graphs()
        report(folder)
    for path in sorted(OUT.glob("*.png")):
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
