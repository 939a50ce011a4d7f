"""The module tree: repeated blocks folded, depth, filters by module and op, changes only."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from views_support import bench_models, cells, render, small_gpt

import shapetrace
from shapetrace.render.filters import changes_something
from shapetrace.render.tree import TraceTree

GLYPHS = "│├└─▾▸ "


@pytest.fixture(scope="module")
def gpt(gpt12):
    return gpt12


def labels(view) -> list[str]:
    """The tree column of each row, without the tree's guides and glyphs."""
    return [row[2].lstrip(GLYPHS) for row in cells(view)]


def op_rows(view) -> list[int]:
    """Indices of the ops the view shows (a row with a number in ``#``)."""
    return [int(row[0]) for row in cells(view) if row[0]]


def test_twelve_identical_blocks_fold_into_one_entry(gpt):
    model, t = gpt
    view = t.tree()
    names = labels(view)
    assert names.count("blocks.0-11 ×12  Block") == 1
    assert not any(name.startswith("blocks.1") for name in names)
    # the folded entry shows one block's contents: one qkv, one softmax, one proj
    assert sum(name.startswith("qkv") for name in names) == 1
    ops = [t.ops[i] for i in op_rows(view)]
    assert [op.op for op in ops].count("softmax") == 1
    assert all(op.module is None or not op.module.startswith("blocks.") or op.module.startswith("blocks.0")
               for op in ops)  # fmt: skip
    # every op is in the trace once; the view is short enough for one screen
    assert len(t.ops) == 2 + 3 + 12 * 27 + 2 - 1 and len(view.rows) < 45
    text = render(view)
    assert "1 repeated entry folded (11 identical repeats not shown)" in text
    assert "blocks.0-11 ×12  Block" in text


def test_vit_blocks_fold_too():
    torch.manual_seed(0)
    model = bench_models().SmallViT(img=32, patch=16, dim=16, depth=12, heads=2).eval()
    with torch.no_grad(), shapetrace.trace(model, symbolic=False) as t:
        model(torch.rand(2, 3, 32, 32))
    names = labels(t.tree())
    assert "blocks.0-11 ×12  Block" in names
    assert sum(name.startswith("attn") for name in names) == 1


def test_hugging_face_gpt2_layers_fold_under_their_parent():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(
        n_layer=12, n_embd=16, n_head=2, vocab_size=50, n_positions=16, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    idx = torch.randint(0, 50, (2, 8))
    with torch.no_grad(), shapetrace.trace(model, symbolic=False) as t:
        model(idx)
    layers = [row for row in cells(t.tree(depth=2)) if "GPT2Block" in row[2]]
    assert [row[2] for row in layers] == ["│  ├─ ▸ h.0-11 ×12  GPT2Block"]
    block_ops = t.modules[next(m.index for m in t.modules if m.path == "transformer.h.0")]
    assert layers[0][3] == f"{block_ops.end_op - block_ops.first_op} ops" and layers[0][4] == "(2, 8, 16)"
    assert labels(t.tree(depth=1))[:2] == ["GPT2LMHeadModel", "transformer  GPT2Model"]


def test_expand_shows_the_blocks_asked_for_and_keeps_the_rest_folded(gpt):
    _, t = gpt
    names = labels(t.tree(expand="blocks.3"))
    assert [n for n in names if n.startswith("blocks.")] == [
        "blocks.0-2 ×3  Block", "blocks.3  Block", "blocks.4-11 ×8  Block",
    ]  # fmt: skip
    everything = labels(t.tree(expand="*"))
    assert [n for n in everything if n.startswith("blocks.")] == [f"blocks.{i}  Block" for i in range(12)]
    assert op_rows(t.tree(expand="*")) == list(range(len(t.ops)))  # unfolded: every op once, in order


def test_blocks_that_differ_do_not_fold():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 8), nn.Linear(8, 8))
    x = torch.rand(2, 4)
    with torch.no_grad(), shapetrace.trace(model, symbolic=False) as t:
        model(x)
    assert labels(t.tree()) == ["Sequential", "0-2 ×3  Linear", "3  Linear", "4  Linear"]


def test_repeated_runs_fold_as_calls_and_as_a_repeated_group():
    model = small_gpt(depth=2)
    idx = torch.randint(0, 50, (2, 16))
    with torch.no_grad(), shapetrace.trace(symbolic=False) as t:
        for _ in range(3):
            model(idx)
    assert labels(t.tree())[0] == "SmallGPT#1-3 ×3"
    with torch.no_grad(), shapetrace.trace(symbolic=False) as t:
        for _ in range(4):
            tokens = torch.randint(0, 50, (2, 16))
            model(tokens)
    rows = cells(t.tree())
    assert rows[0][2] == "▾ ×4 repeated" and rows[0][3] == f"{len(t.ops) // 4} ops"
    assert rows[1][3] == "randint" and rows[2][2].endswith("SmallGPT")
    assert sum("randint" in row[3] for row in rows) == 1


def test_identical_ops_in_a_loop_fold():
    x = torch.rand(3)
    with shapetrace.trace(symbolic=False) as t:
        for _ in range(5):
            x = x + 1
    rows = cells(t.tree())
    assert len(rows) == 1 and rows[0][3] == "+ ×5"


def test_depth_summarizes_deeper_calls_on_one_row(gpt):
    _, t = gpt
    rows = cells(t.tree(depth=1))
    names = [row[2] for row in rows]
    assert names[0] == "▾ SmallGPT"
    assert "├─ ▸ blocks.0-11 ×12  Block" in names  # collapsed: its 27 ops on its own row
    block = next(row for row in rows if "blocks.0-11" in row[2])
    assert block[3] == "27 ops" and block[4] == "(2, 16, 16)"
    assert not any("qkv" in n or "norm1" in n for n in names)
    assert {t.ops[i].module for i in op_rows(t.tree(depth=1))} <= {"", "tok", "pos", "norm", "lm_head"}
    root_only = cells(t.tree(depth=0))
    assert len(root_only) == 1 and root_only[0][2] == "▸ SmallGPT" and root_only[0][3] == f"{len(t.ops)} ops"


def test_module_pattern_keeps_ops_in_matching_modules_and_their_context(gpt):
    _, t = gpt
    view = t.tree(module="blocks.*.attn")
    shown = [t.ops[i] for i in op_rows(view)]
    assert shown and all(op.module.startswith("blocks.0.attn") for op in shown)
    names = labels(view)
    assert names[:3] == ["SmallGPT", "blocks.0-11 ×12  Block", "attn  Attention"]
    assert "norm1  LayerNorm" not in names
    # a pattern matching one instance takes that block out of the fold
    only = labels(t.tree(module="blocks.3.attn"))
    assert "blocks.3  Block" in only and not any("×" in n for n in only)
    assert all(t.ops[i].module.startswith("blocks.3.attn") for i in op_rows(t.tree(module="blocks.3.attn")))
    by_class = t.tree(module="LayerNorm")
    assert {t.ops[i].op for i in op_rows(by_class)} == {"layer_norm"}


def test_op_pattern(gpt):
    _, t = gpt
    assert [t.ops[i].op for i in op_rows(t.tree(op="softmax"))] == ["softmax"]
    assert {t.ops[i].op for i in op_rows(t.tree(op="matmul"))} == {"@"}  # x @ y is Tensor.__matmul__
    assert {t.ops[i].op for i in op_rows(t.tree(op=["view", "reshape"]))} == {"view", "reshape"}
    text = render(t.tree(op="softmax"))
    assert "1 op rows match: op softmax" in text


def test_changes_only_shows_ops_that_change_shape_dtype_or_device(gpt):
    _, t = gpt
    view = t.tree(changes=True)
    shown = [t.ops[i] for i in op_rows(view)]
    assert shown and all(changes_something(op) for op in shown)
    names = {op.op for op in shown}
    assert {"view", "transpose", "chunk", "==", "arange", "embedding", "linear"} <= names
    assert not names & {"layer_norm", "gelu", "softmax", "masked_fill", "+"}


def test_changes_catch_dtype_and_device_moves():
    x = torch.rand(2, 3)
    with shapetrace.trace(symbolic=False) as t:
        y = x + 1
        z = y.half()
        w = z.to("meta")
        w.sum(dim=0)
    assert [t.ops[i].op for i in op_rows(t.tree(changes=True))] == ["half", "to", "sum"]
    assert [t.ops[i].op for i in op_rows(t.table(), )] == ["+", "half", "to", "sum"]


def test_failed_op_is_shown_and_never_folded():
    layer = nn.Linear(4, 4)
    inputs = [torch.rand(2, 4), torch.rand(2, 4), torch.rand(2, 5)]
    with pytest.raises(RuntimeError), shapetrace.trace(symbolic=False) as t:
        for x in inputs:
            layer(x)
    rows = cells(TraceTree(t))
    assert [row[2] for row in rows] == ["Linear#1-2 ×2", "Linear"]
    assert rows[-1][4].startswith("✗ raised")
    text = render(t.tree(changes=True))
    assert "✗ raised" in text and "raised RuntimeError" in text
