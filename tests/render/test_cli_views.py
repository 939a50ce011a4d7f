"""The command line's views: --tree, --depth, --module, --op, --changes, --summary, and the
--html, --svg and --markdown files."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET

import pytest
from views_support import BENCH_MODELS, html_rows

from shapetrace.cli.main import main

GPT_SCRIPT = textwrap.dedent(
    f"""\
    import sys
    sys.path.insert(0, {str(BENCH_MODELS.parent)!r})
    import torch
    from models import SmallGPT

    torch.manual_seed(0)
    model = SmallGPT(vocab=50, ctx=16, dim=16, depth={{depth}}, heads=2).eval()
    idx = torch.randint(0, 50, (2, 16))                       # (B, T)
    with torch.no_grad():
        logits = model(idx)                                   # (B, T, V)
    open({{marker!r}}, "w").close()
    """
)


@pytest.fixture
def gpt_script(tmp_path):
    def write(depth: int) -> tuple[str, str]:
        marker = tmp_path / "ran"
        path = tmp_path / f"gpt{depth}.py"
        path.write_text(GPT_SCRIPT.format(depth=depth, marker=str(marker)))
        return str(path), marker

    return write


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["--no-symbolic", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_long_trace_prints_the_folded_tree_with_its_header(capsys, gpt_script):
    script, _ = gpt_script(24)
    code, out, _ = run(capsys, script)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("model    SmallGPT · 80,608 parameters")
    assert "ran      655 ops, 245 module calls" in out
    assert any("▾ blocks.0-23 ×24  Block" in line for line in lines)
    assert len(lines) < 60  # 24 layers on one screen


def test_a_short_trace_keeps_the_flat_table(capsys, gpt_script):
    script, _ = gpt_script(2)
    code, out, _ = run(capsys, script)
    assert code == 0 and "model    SmallGPT" not in out
    assert "   #   line " in out and " module " in out and "blocks.1.attn.qkv" in out
    code, tree, _ = run(capsys, "--tree", script)
    assert "blocks.0-1 ×2  Block" in tree


def test_depth_module_op_and_changes(capsys, gpt_script):
    script, _ = gpt_script(4)
    _, shallow, _ = run(capsys, "--depth", "1", script)
    assert "▸ blocks.0-3 ×4  Block" in shallow and "qkv" not in shallow
    _, attn, _ = run(capsys, "--tree", "--module", "blocks.*.attn", "--op", "softmax", script)
    rows = [line for line in attn.splitlines() if "softmax" in line and "(2, 2, 16, 16)" in line]
    assert len(rows) == 1 and "(2, 2, 16, 16)" in rows[0]
    assert "1 op rows match: module blocks.*.attn, op softmax" in attn
    _, flat, _ = run(capsys, "--flat", "--op", "softmax", script)
    assert sum(" softmax " in line for line in flat.splitlines()) == 4
    assert "showing 4 of" in flat
    _, changes, _ = run(capsys, "--flat", "--changes", script)
    assert " layer_norm " not in changes and " view " in changes


def test_summary(capsys, gpt_script):
    script, _ = gpt_script(4)
    code, out, _ = run(capsys, "--summary", "--depth", "1", script)
    assert code == 0
    assert "Layer (type)" in out and "Param #" in out and "Trainable" in out
    block = next(line for line in out.splitlines() if "blocks.0-3 ×4 (Block)" in line)
    assert block.split()[-4:] == ["4", "×", "3,280", "True"]
    assert "Total params: 15,008" in out and "Non-trainable params: 0" in out


def test_exports_write_the_view_shown(capsys, tmp_path, gpt_script):
    script, _ = gpt_script(4)
    html_path, svg_path, md_path = tmp_path / "t.html", tmp_path / "t.svg", tmp_path / "t.md"
    code, out, _ = run(
        capsys, "--tree", "--html", str(html_path), "--svg", str(svg_path), "--markdown", str(md_path), script
    )
    assert code == 0 and f"report written to {html_path}" in out
    _, rows = html_rows(html_path.read_text(encoding="utf-8"))
    shown = out.splitlines()
    assert rows and all(any(all(c in line for c in row) for line in shown) for row in rows)
    ET.fromstring(svg_path.read_text(encoding="utf-8"))
    markdown = md_path.read_text(encoding="utf-8")
    assert "| # | line | module / code | op | output shape |" in markdown
    assert len([line for line in markdown.splitlines() if line.startswith("| ")]) == len(rows) + 2


def test_bad_view_options_stop_before_the_script_runs(capsys, tmp_path, gpt_script):
    script, marker = gpt_script(2)
    code, _, err = run(capsys, "--flat", "--depth", "2", script)
    assert code == 2 and "--depth applies to --tree, --summary and --graph" in err
    code, _, err = run(capsys, "--html", str(tmp_path / "missing" / "t.html"), script)
    assert code == 2 and "no such directory" in err
    assert not marker.exists()
    with pytest.raises(SystemExit):
        main(["--depth", "-1", script])
    assert "must be 0 or more" in capsys.readouterr().err
