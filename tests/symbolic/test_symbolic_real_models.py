"""Real-world models from a public library, built from their config classes (no downloads)."""

from __future__ import annotations

import pytest
import torch

import shapetrace

transformers = pytest.importorskip("transformers")


def test_gpt2_expressions_over_batch_and_tokens():
    config = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=32, vocab_size=100, n_positions=32)
    model = transformers.GPT2LMHeadModel(config).eval()
    ids = torch.randint(0, 100, (2, 7))
    with torch.no_grad(), shapetrace.trace(model, dims={"input_ids": "B T"}) as t:
        out = model(input_ids=ids)
    assert out.logits.shape == (2, 7, 100)
    assert t.symbolic.state == "ran" and t.dims == {"B": 2, "T": 7}
    root = t.modules[0]
    assert [(m.path, m.expr) for m in root.inputs] == [("['input_ids']", "(B, T)")]
    assert (".logits", "(B, T, 100)") in [(m.path, m.expr) for m in root.outputs]
    exprs = {meta.expr for op in t.ops for meta in op.outputs}
    assert {"(B, T, 32)", "(B*T, 96)", "(B, 2, T, 16)"} <= exprs
    assert t.ops[-1].module == "lm_head" and t.ops[-1].outputs[0].expr == "(B, T, 100)"


def test_vit_reports_where_its_checks_fix_the_image_size():
    config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=64, image_size=32, patch_size=8)  # fmt: skip
    model = transformers.ViTModel(config).eval()
    with torch.no_grad(), shapetrace.trace(model, dims="B C H W") as t:
        model(torch.rand(2, 3, 32, 32))
    conv = next(op for op in t.ops if op.op == "conv2d")
    assert conv.outputs[0].expr == "(B, 32, H/8, W/8)"
    fixed = {s.dim: s for s in t.specializations}
    assert set(fixed) == {"C", "H", "W"}
    # found in Python code between ops, e.g. `if num_channels != self.num_channels:`
    assert fixed["C"].op_index is None and fixed["C"].file.endswith("modeling_vit.py")
    assert fixed["C"].reason.startswith("`if num_channels != self.num_channels") and "C == 3" in fixed["C"].reason
    assert t.symbolic.state == "ran"
