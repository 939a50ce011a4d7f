"""The rich table: one row per op, read top to bottom."""

from __future__ import annotations

import pytest
import torch
from rich.console import Console

import shapetrace


def render(renderable, width: int = 160) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_table_rows_show_line_code_op_module_and_shape(examples):
    pe = examples.load("patch_embed")
    model = pe.PatchEmbedding(img_size=128)
    x = torch.rand(8, 3, 128, 128)
    with shapetrace.trace(model) as t:
        model(x)
    text = render(t)
    rows = [line.split() for line in text.splitlines()]
    assert ["#", "line", "code", "op", "module", "output", "shape"] in rows
    flatten_row = next(r for r in rows if "flatten" in r)
    assert flatten_row[:2] == ["1", "35"] and "x.flatten(2).transpose(1," in " ".join(flatten_row)
    # dims named by PatchEmbedding's `B, C, H, W = x.shape`; 512 is the example's `D = 512` by value
    assert flatten_row[-4:] == ["PatchEmbedding", "(B,", "D?,", "H*W/1024)"]
    transpose_row = next(r for r in rows if "transpose" in r and r[0] == "2")
    assert transpose_row == [
        "2",
        "transpose",
        "PatchEmbedding",
        "(B,",
        "H*W/1024,",
        "D?)",
    ]  # same line: not repeated
    assert "# (B" not in text  # the code column drops the shape comment the output column replaces
    assert "7 ops, 3 module calls in patch_embed.py; float32 on cpu unless shown" in text


def test_dtype_and_device_are_shown_only_where_they_differ():
    x = torch.rand(4, 4)
    with shapetrace.trace() as t:
        y = x.half()
        z = x + 1
        w = torch.ones(2, device="meta")
        x.sum()
    del y, z, w
    text = render(t)
    rows = {line.split()[2]: line.split()[-3:] for line in text.splitlines() if line.strip()[:1].isdigit()}
    assert rows["y"] == ["(4,", "4)", "float16"]
    assert rows["z"] == ["+", "(4,", "4)"]
    assert rows["w"] == ["ones", "(2,)", "meta"]
    assert "float32 on cpu unless shown" in text


def test_failed_op_and_error_are_shown():
    a, b = torch.rand(2, 3), torch.rand(4, 5)
    with pytest.raises(RuntimeError) as untraced:  # torch's wording, which changes between releases
        a @ b
    with pytest.raises(RuntimeError), shapetrace.trace() as t:
        a.sum()
        a @ b
    text = render(t)
    assert "✗ raised" in text
    assert "✗ op 1 (@) at test_table.py:" in text and f"raised RuntimeError: {untraced.value}" in text


def test_narrow_console_keeps_shapes_and_cuts_code(examples):
    with shapetrace.trace(symbolic=False) as t:  # concrete sizes (symbolic ones: tests/symbolic)
        examples.load("tokenize_image").tokenize_image()
    text = render(t, width=60)
    assert all(len(line) <= 60 for line in text.splitlines())
    assert "(8, 512, 16)" in text and "(8, 16, 512)" in text
