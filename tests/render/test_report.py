"""The interactive report, driven in headless Chromium as a person would: open a folded block,
filter, follow a row to its source, follow a node of the picture to its row; and what the page
holds: one self-contained file, the diagnosis, contract violations, lints."""

from __future__ import annotations

import html
import re
import shutil

import pytest
import torch
from browser import CHROMIUM, Browser
from jaxtyping import Float
from views_support import UNet, html_rows, small_gpt

import shapetrace
from shapetrace.cli.main import main

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
HAS_DOT = shutil.which("dot") is not None

VISIBLE_ROWS = """[...document.querySelectorAll('#rows tbody tr')].filter(tr => tr.style.display !== 'none')
  .map(tr => [...tr.children].map(td => td.textContent))"""


@pytest.fixture(scope="module")
def gpt_report(tmp_path_factory):
    model = small_gpt(depth=12)
    with torch.no_grad(), shapetrace.trace(model) as t:
        model(torch.randint(0, 50, (2, 16)))
    return t, t.report().save(tmp_path_factory.mktemp("report") / "gpt.html")


@pytest.fixture(scope="module")
def unet_report(tmp_path_factory):
    torch.manual_seed(0)
    model = UNet()
    with pytest.raises(RuntimeError), shapetrace.trace(model, dims="B C H W") as t:
        model(torch.rand(2, 3, 60, 60))
    return t, t.report().save(tmp_path_factory.mktemp("report") / "unet.html")


def test_one_self_contained_file(gpt_report):
    _, path = gpt_report
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<script>" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)""", page)  # nothing fetched
    assert "<link" not in page and "@import" not in page and "<iframe" not in page


def test_open_a_folded_block_filter_and_follow_a_row(gpt_report):
    t, path = gpt_report
    with Browser(width=1500, height=1000) as browser:
        browser.open(path)
        rows = browser.evaluate(VISIBLE_ROWS)
        labels = [row[2] for row in rows]
        assert "└─ ▸ blocks.0-11 ×12  Block" not in labels and "├─ ▸ blocks.0-11 ×12  Block" in labels
        assert not any("norm1" in label for label in labels)  # the folded block starts closed
        total = browser.evaluate("document.querySelectorAll('#rows tbody tr').length")
        assert browser.evaluate("document.getElementById('count').textContent") == f"{len(rows)} of {total} rows shown"

        browser.click("tr.folded")  # open it
        opened = [row[2] for row in browser.evaluate(VISIBLE_ROWS)]
        assert "├─ ▾ blocks.0-11 ×12  Block" in opened
        assert any(label.endswith("norm1  LayerNorm") for label in opened) and len(opened) > len(labels) + 20

        browser.click("tr.folded")  # and close it again
        assert [row[2] for row in browser.evaluate(VISIBLE_ROWS)] == labels

        browser.type("#filter", "softmax")
        shown = browser.evaluate(VISIBLE_ROWS)
        assert [row[3] for row in shown if row[0]] == ["softmax"]  # the one op row, with its enclosing calls
        assert [re.sub(r"^[│├└─▾▸ ]+", "", row[2]).split("  ")[0] for row in shown] == [
            "SmallGPT", "blocks.0-11 ×12", "attn", "att = att.softmax(dim=-1)"
        ]
        assert browser.evaluate("document.getElementById('count').textContent") == "1 row matches"

        browser.press("Backspace", len("softmax"))
        browser.type("#filter", "(2, 2, 16, 16)")  # by shape text
        by_shape = browser.evaluate(VISIBLE_ROWS)
        assert {row[3] for row in by_shape if row[0]} == {"@", "*", "masked_fill", "softmax"}

        browser.press("Backspace", len("(2, 2, 16, 16)"))
        browser.type("#filter", "softmax")
        softmax = next(op for op in t.ops if op.op == "softmax")
        browser.click(f'tr[data-i="{row_of(browser, softmax.index)}"]')  # follow the row to its source
        source = browser.evaluate("document.getElementById('source').innerText")
        assert source.startswith(f"models.py:{softmax.line}")
        here = browser.evaluate("document.querySelector('#source .here').textContent")
        assert here.split() == [str(softmax.line), "att", "=", "att.softmax(dim=-1)", "#", "(B,", "h,", "N,", "N)"]
        assert "att = att.masked_fill(mask == 0" in source and "out = (att @ v)" in source  # lines around it
        assert "in\t(2, 2, 16, 16)  float32  cpu" in source and "module\tblocks.0.attn" in source

        browser.click("#filter")
        browser.press("Backspace", len("softmax"))  # the whole tree again, the chosen row still in sight
        assert browser.evaluate("document.querySelector('#rows tr.selected').style.display") == ""
        assert len(browser.evaluate(VISIBLE_ROWS)) > len(labels) + 20


def row_of(browser: Browser, op_index: int) -> int:
    """The report row of an op (its ``#`` cell)."""
    return browser.evaluate(
        f"[...document.querySelectorAll('#rows tbody tr')].findIndex(tr => tr.children[0].textContent === '{op_index}')"
    )


@pytest.mark.skipif(not HAS_DOT, reason="needs Graphviz (apt-get install graphviz)")
def test_a_node_of_the_picture_leads_to_its_row(gpt_report):
    t, path = gpt_report
    attn = next(call for call in t.modules if call.path == "blocks.0.attn")
    with Browser(width=1500, height=1000) as browser:
        browser.open(path)
        assert browser.evaluate("!!document.querySelector('#picture svg')")
        browser.click(f"#node-call{attn.index}")
        selected = browser.evaluate("document.querySelector('#rows tr.selected').children[2].textContent")
        assert selected.endswith("attn  Attention")  # inside the folded block, opened to show it
        assert browser.evaluate("document.querySelector('#rows tr.selected').style.display") == ""
        assert browser.evaluate(f"document.getElementById('node-call{attn.index}').classList.contains('selected')")
        source = browser.evaluate("document.getElementById('source').innerText")
        assert "x = x + self.attn(self.norm1(x))" in source and "Attention" in source


def test_a_failed_run_shows_its_diagnosis_and_the_failed_row(unet_report):
    t, path = unet_report
    with Browser(width=1500, height=1000) as browser:
        browser.open(path)
        diagnosis = browser.evaluate("document.getElementById('diagnosis').innerText")
        assert "✗ cat-shape" in diagnosis and re.search(r"Fix( \(checked\))?:|Suggestion:", diagnosis)
        failed = browser.evaluate("[...document.querySelectorAll('#rows tr.failed')].map(tr => tr.children[3].textContent)")
        assert "cat" in failed
        browser.click(f'tr[data-i="{row_of(browser, t.failing_op().index)}"]')
        source = browser.evaluate("document.getElementById('source').innerText")
        assert "return self.conv(torch.cat([skip, x], dim=1))" in source and "out\t✗ raised" in source
        footer = browser.evaluate("document.getElementById('footer').innerText")
        assert "raised RuntimeError" in footer
        if HAS_DOT:
            assert browser.evaluate("document.getElementById('node-diagnosis') !== null")


class Head(torch.nn.Module):
    """Returns three columns where its annotation says two, and syncs with the host."""

    def forward(self, x: Float[torch.Tensor, "B D"]) -> Float[torch.Tensor, "B 2"]:
        scale = x.abs().max().item()                            # a host sync inside a forward
        return x[:, :3] / scale                                 # (B, 3)


def test_contract_violations_and_lints_are_in_the_page(tmp_path):
    head = Head()
    with shapetrace.trace(head, on_violation="record") as t:
        head(torch.rand(4, 8))
    assert len(t.contracts) == 1 and [d.kind for d in t.diagnostics] == ["host-sync"]
    page = t.report().save(tmp_path / "c.html").read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "1 contract violation" in text and "✗1 Head.forward return" in text  # header, footer
    assert "✗ contract" in text  # the op that broke it, marked in the tree
    assert "⚠ 1 device lint" in text and "host-sync" in text and "scale = x.abs().max().item()" in text


def test_the_command_line_writes_it(tmp_path, capsys):
    script = tmp_path / "net.py"
    script.write_text(
        "import torch\nfrom torch import nn\n"
        "model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))\n"
        "y = model(torch.rand(3, 4))                               # (B, 2)\n"
    )
    target = tmp_path / "report.html"
    assert main(["--tree", "--html", str(target), str(script)]) == 0
    out = capsys.readouterr().out
    assert f"report written to {target}" in out
    _, rows = html_rows(target.read_text(encoding="utf-8"))
    assert any(row[3] == "relu" for row in rows) and all(any(c in out for c in row if c) for row in rows)
