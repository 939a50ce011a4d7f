"""Real-world models from a public library, built from their config classes (no downloads)."""

from __future__ import annotations

import pytest
import torch

import shapetrace

transformers = pytest.importorskip("transformers")


def traced(model, *args, **kwargs):
    model.eval()
    with torch.no_grad():
        plain = model(*args, **kwargs)
        with shapetrace.trace(model) as t:
            out = model(*args, **kwargs)
    return t, plain, out


def test_gpt2_from_config():
    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=100, n_positions=16)
    model = transformers.GPT2LMHeadModel(config)
    ids = torch.randint(0, 100, (2, 7))
    t, plain, out = traced(model, input_ids=ids)
    assert torch.equal(plain.logits, out.logits)
    paths = {m.path for m in t.modules}
    assert {"", "transformer", "transformer.h.0", "transformer.h.1.attn", "lm_head"} <= paths
    root = t.modules[0]
    assert root.type == "GPT2LMHeadModel"
    assert ("['input_ids']", (2, 7)) in [(m.path, m.shape) for m in root.inputs]
    assert (".logits", (2, 7, 100)) in [(m.path, m.shape) for m in root.outputs]
    lm_head = next(op for op in t.ops if op.module == "lm_head")
    assert lm_head.op == "linear" and lm_head.outputs[0].shape == (2, 7, 100)
    assert lm_head.file.endswith("modeling_gpt2.py") and "self.lm_head(" in lm_head.code
    assert sum(op.module == "transformer.h.1.attn" for op in t.ops) > 3
    assert t.error is None


def test_vit_from_config():
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, num_labels=5,
    )  # fmt: skip
    model = transformers.ViTForImageClassification(config)
    pixels = torch.rand(2, 3, 32, 32)
    t, plain, out = traced(model, pixel_values=pixels)
    assert torch.equal(plain.logits, out.logits)
    conv = next(op for op in t.ops if op.op == "conv2d")
    assert conv.module == "vit.embeddings.patch_embeddings.projection"
    assert conv.outputs[0].shape == (2, 32, 4, 4)
    cat = next(op for op in t.ops if op.op == "cat")
    assert cat.outputs[0].shape == (2, 17, 32)  # 16 patches + the class token
    assert t.ops[-1].outputs[0].shape == (2, 5)
    layers = [m for m in t.modules if m.type == "ViTLayer"]
    assert len(layers) == 2 and layers[1].path.endswith(".1")  # named as model.named_modules() names them
    assert {m.path for m in layers} <= {name for name, _ in model.named_modules()}
