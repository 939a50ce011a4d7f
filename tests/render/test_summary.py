"""The header summary and the torchinfo-style module summary."""

from __future__ import annotations

import warnings

import pytest
import torch
from jaxtyping import Float
from torch import Tensor, nn
from views_support import cells, render, small_gpt, trace_gpt

import shapetrace
from shapetrace.capture.parameters import ModuleTree, parameter_counts
from shapetrace.render.cells import plain
from shapetrace.render.header import TraceHeader, header_lines


@pytest.fixture(scope="module")
def gpt(gpt12):
    return gpt12


def header(trace) -> dict[str, str]:
    return {line[0][0].strip(): plain(line[1:]) for line in header_lines(trace)}


def test_header_counts_model_parameters_ops_calls_dtypes_devices(gpt):
    model, t = gpt
    lines = header(t)
    assert lines["model"] == f"SmallGPT · {sum(p.numel() for p in model.parameters()):,} parameters"
    assert lines["ran"] == f"{len(t.ops):,} ops, {len(t.modules):,} module calls"
    assert lines["ran"] == "330 ops, 125 module calls"
    assert lines["dtypes"].startswith("float32 ×") and "bool ×24" in lines["dtypes"] and "int64 ×3" in lines["dtypes"]
    assert lines["devices"] == "cpu"
    assert lines["checks"] == "0 contract violations · diagnostics: none"
    assert lines["dims"] == "none named"
    assert "model    SmallGPT · 41,248 parameters" in render(TraceHeader(t))


def test_header_counts_frozen_parameters_devices_and_the_error():
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    model[0].requires_grad_(False)
    x, w = torch.rand(3, 4), torch.rand(5, 5, device="meta")
    with pytest.raises(RuntimeError), shapetrace.trace(model, symbolic=False) as t:
        w.sum()
        model(x)
        model(x) @ w
    lines = header(t)
    assert lines["model"] == "Sequential · 58 parameters (18 trainable)"
    assert lines["devices"].startswith("cpu ×") and "meta ×" in lines["devices"]
    assert lines["error"].startswith("op 5 (@) raised RuntimeError")
    assert "1 error" in lines["checks"]  # the failure, explained by a diagnostic


def test_header_counts_contract_violations():
    class Pair(nn.Module):
        def forward(self, x: Float[Tensor, "B N D"], y: Float[Tensor, "B N"]) -> Float[Tensor, "B N D"]:
            return x * y[..., None]

    model = Pair()
    x, y = torch.rand(2, 16, 4), torch.rand(2, 15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError), shapetrace.trace(model, symbolic=False) as t:
            model(x, y)
    lines = header(t)
    assert lines["checks"].startswith("1 contract violation ·")
    assert lines["model"] == "Pair · 0 parameters"


def test_traced_without_a_model_the_root_that_holds_parameters_is_the_model():
    model = small_gpt(depth=2)
    t = trace_gpt(model, with_model=False)
    assert t.summary.model_type == "SmallGPT"
    assert t.summary.parameters == sum(p.numel() for p in model.parameters())
    assert t.summary.modules["blocks.1.attn"].total == sum(p.numel() for p in model.blocks[1].attn.parameters())
    x = torch.rand(2)
    with shapetrace.trace(symbolic=False) as bare:
        nn.ReLU()(x)
    assert bare.summary.model_type is None and header(bare)["model"].startswith("ReLU · parameters unknown")


def test_parameter_counts_match_numel_per_module_shared_weights_once():
    model = small_gpt(depth=3)
    model.lm_head.weight = model.tok.weight  # tied: counted once, for the first holder
    model.blocks[1].requires_grad_(False)
    counts = parameter_counts(ModuleTree.of(model))
    assert counts[""].total == sum(p.numel() for p in model.parameters())
    assert counts[""].total_trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    for path, module in model.named_modules():
        if path != "lm_head":
            assert counts[path].total == sum(p.numel() for p in module.parameters()), path
            assert counts[path].own == sum(p.numel() for p in module.parameters(recurse=False)), path
        assert counts[path].type == type(module).__name__
    assert counts["lm_head"].total == 0 and counts["blocks.1"].total_trainable == 0


def test_module_summary_rows_like_torchinfo(gpt):
    model, t = gpt
    view = t.module_summary()
    rows = {row[0].lstrip("│├└─ "): row[1:] for row in cells(view)}
    assert rows["SmallGPT"] == ["(2, 16, 50)", "--", "--"]  # its parameters are in its submodules' rows
    assert rows["tok (Embedding)"] == ["(2, 16, 16)", "800", "True"]
    assert rows["blocks.0-11 ×12 (Block)"] == ["(2, 16, 16)", "--", "--"]
    qkv = model.blocks[0].attn.qkv
    assert rows["qkv (Linear)"] == ["(2, 16, 48)", f"{sum(p.numel() for p in qkv.parameters()):,}", "True"]
    assert rows["lm_head (Linear)"] == ["(2, 16, 50)", "800", "True"]
    assert len(view.rows) == 1 + 2 + 1 + 9 + 2  # root, tok, pos, the folded block and its 9 modules, norm, head
    text = render(view)
    total = sum(p.numel() for p in model.parameters())
    assert f"Total params: {total:,}" in text and f"Trainable params: {total:,}" in text
    assert "Non-trainable params: 0" in text


def test_module_summary_depth_counts_submodules_and_trainable_kinds(gpt):
    model, _ = gpt
    model = small_gpt(depth=2)
    model.blocks[0].attn.requires_grad_(False)
    model.tok.requires_grad_(False)
    t = trace_gpt(model)
    rows = {row[0].lstrip("│├└─ "): row[1:] for row in cells(t.module_summary(depth=1))}
    block = sum(p.numel() for p in model.blocks[0].parameters())
    assert rows["blocks.0 (Block)"] == ["(2, 16, 16)", f"{block:,}", "Partial"]
    assert rows["blocks.1 (Block)"] == ["(2, 16, 16)", f"{block:,}", "True"]
    assert rows["tok (Embedding)"][1:] == ["800", "False"]
    assert not any("attn" in name for name in rows)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert f"Non-trainable params: {frozen:,}" in render(t.module_summary(depth=1))


def test_module_summary_filters(gpt):
    _, t = gpt
    attn = [row[0].lstrip("│├└─ ") for row in cells(t.module_summary(module="blocks.*.attn"))]
    assert attn == ["SmallGPT", "blocks.0-11 ×12 (Block)", "attn (Attention)", "qkv (Linear)", "proj (Linear)"]
    changing = [row[0].lstrip("│├└─ ") for row in cells(t.module_summary(changes=True))]
    assert "qkv (Linear)" in changing and "0 (Linear)" in changing
    assert "norm1 (LayerNorm)" not in changing and "1 (GELU)" not in changing
    assert "mlp (Sequential)" in changing  # same shape in and out, shown as the context of its Linear


def test_module_summary_shows_symbolic_shapes(examples):
    model = examples.load("patch_embed").PatchEmbedding(img_size=128)
    x = torch.rand(8, 3, 128, 128)
    with shapetrace.trace(model, dims="B C H W") as t:
        model(x)
    rows = cells(t.module_summary())
    assert rows[0][1] == t.modules[0].outputs[0].shape_text()
    assert t.modules[0].outputs[0].expr is not None and rows[0][1].startswith("(B, ")
    assert header(t)["dims"] == ", ".join(f"{name}={size}" for name, size in t.dims.items())
    assert "B=8" in header(t)["dims"]
