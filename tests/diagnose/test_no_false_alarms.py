"""No lint on models that are right: the seed examples, transformers models built from small
configs, and models of the benchmark zoo, traced as they train (grad on, dropout on)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from shapetrace import trace

EXAMPLES = ["tokenize_image", "patch_embed", "mlp", "broadcasting", "attention", "conv_rules", "fashion_cnn"]
BENCH = Path(__file__).resolve().parents[2] / "bench"


def lints_of(model, *args, **kwargs):
    model.train()
    with trace(model, symbolic=False) as t:  # lints read no symbolic shapes
        model(*args, **kwargs)
    assert t.error is None
    return [(d.kind, d.location, d.message) for d in t.diagnostics]


@pytest.mark.parametrize("name", EXAMPLES)
def test_seed_examples(examples, name, capsys):
    module = examples.load(name)
    with trace(symbolic=False) as t:
        module.main()
    assert t.error is None and len(t.ops) > 3
    assert t.diagnostics == []


def _transformers_models():
    transformers = pytest.importorskip("transformers")
    small = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}
    tokens = torch.randint(0, 100, (2, 9))
    return {
        "gpt2": (transformers.GPT2Model(transformers.GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=100,
                                                                 n_positions=16)), {"input_ids": tokens}),
        "vit": (transformers.ViTModel(transformers.ViTConfig(image_size=32, patch_size=8, **small)),
                {"pixel_values": torch.rand(2, 3, 32, 32)}),
        "bert": (transformers.BertModel(transformers.BertConfig(vocab_size=100, max_position_embeddings=16, **small)),
                 {"input_ids": tokens, "attention_mask": torch.ones(2, 9, dtype=torch.long)}),
        "llama": (transformers.LlamaModel(transformers.LlamaConfig(vocab_size=100, num_key_value_heads=2,
                                                                   max_position_embeddings=16, **small)),
                  {"input_ids": tokens}),
        "t5": (transformers.T5Model(transformers.T5Config(vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                                          num_heads=4)),
               {"input_ids": tokens, "decoder_input_ids": tokens[:, :5]}),
    }  # fmt: skip


@pytest.mark.parametrize("name", ["gpt2", "vit", "bert", "llama", "t5"])
def test_transformers_models(name):
    model, inputs = _transformers_models()[name]
    assert lints_of(model, **inputs) == []


# One model per family of the zoo (all 40 take a minute).
ZOO_SAMPLE = ["unet", "dit", "conv_vae", "small_gpt", "nanogpt", "mlp_mixer", "fpn", "small_vit", "lstm_classifier"]


@pytest.mark.parametrize("name", ZOO_SAMPLE)
def test_benchmark_zoo_models(name):
    sys.path.insert(0, str(BENCH))  # zoo.py imports its neighbour models.py
    try:
        from zoo import ZOO

        case = ZOO[name].build()
    finally:
        sys.path.pop(0)
    arguments = case.inputs if isinstance(case.inputs, dict) else {}
    positional = () if isinstance(case.inputs, dict) else case.inputs
    assert lints_of(case.model, *positional, **arguments) == []
