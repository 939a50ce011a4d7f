"""The seed models with jaxtyping hints (examples/annotated/) pass their contracts, and the
bindings name their dims."""

from __future__ import annotations

import pytest
import torch
from contract_support import ANNOTATED, ANNOTATED_NAMES, load_annotated

import shapetrace
from shapetrace.cli.runner import run_script


def calls_of(t) -> list[tuple[str, dict]]:
    return [(call.function, dict(call.bindings)) for call in t.contract_calls]


def test_patch_embedding_binds_the_image_dims_and_the_embedding_width():
    pe = load_annotated("patch_embed")
    model = pe.PatchEmbedding(img_size=64, in_ch=3, embed_dim=16, patch_size=32)
    with shapetrace.trace(model, on_violation="raise") as t:
        y = model(torch.rand(2, 3, 64, 64))
    assert y.shape == (2, 5, 16) and t.contracts == []
    assert calls_of(t) == [("PatchEmbedding.forward", {"B": 2, "C": 3, "H": 64, "W": 64, "D": 16})]
    assert t.contract_calls[0].where == "PatchEmbedding" and t.contract_calls[0].module_index == 0


def test_mlp_and_fashion_cnn_pass():
    mlp = load_annotated("mlp").MLP(dim=8, hidden_dim=16)
    cnn = load_annotated("fashion_cnn").Network()
    with shapetrace.trace(mlp, on_violation="raise") as t:
        mlp(torch.rand(2, 7, 8))
    assert calls_of(t) == [("MLP.forward", {"B": 2, "P": 7, "D": 8})]
    with shapetrace.trace(cnn, on_violation="raise") as t:
        assert cnn(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert calls_of(t) == [("Network.forward", {"B": 3})]


def test_fashion_cnn_contract_names_the_fixed_image_size():
    cnn = load_annotated("fashion_cnn").Network()
    with shapetrace.trace(cnn, on_violation="record") as t, pytest.raises(RuntimeError):
        cnn(torch.rand(3, 1, 32, 32))  # the flatten then breaks, as in the seed
    (violation,) = t.contracts
    assert (violation.arg, violation.reason) == ("t", "dim 2 is 32, expected 28")
    assert violation.actual.shape == (3, 1, 32, 32)


def test_attention_with_string_annotations_and_a_contract_helper():
    attention = load_annotated("attention")
    model = attention.MultiHeadSelfAttention(dim=16, heads=4)
    with shapetrace.trace(model, on_violation="raise") as t:
        model(torch.rand(2, 5, 16))
    assert t.contracts == [] and t.contract_warnings == []
    split = {"B": 2, "N": 5, "D": 16}  # its own scope: D here is the slice width, bound anew
    assert calls_of(t) == [("MultiHeadSelfAttention.split_heads", split)] * 3 + [
        ("MultiHeadSelfAttention.forward", {"B": 2, "N": 5, "D": 16})
    ]
    assert {call.where for call in t.contract_calls} == {"MultiHeadSelfAttention"}


def test_conv_rules_checks_every_block_in_its_own_scope():
    model = load_annotated("conv_rules").ConvRules(3)
    with shapetrace.trace(model, on_violation="raise") as t:
        outputs = model(torch.rand(2, 3, 16, 16))
    assert [tuple(y.shape[2:]) for y in outputs] == [(16, 16), (8, 8), (4, 4), (32, 32), (32, 32)]
    functions = [call.function for call in t.contract_calls]
    assert functions == [
        "SameConv.forward",
        "DownConv.forward",
        "DownConv.forward",
        "UpsampleConv.forward",
        "TransposeUpConv.forward",
        "ConvRules.forward",
    ]
    assert [call.where for call in t.contract_calls][:3] == ["same", "down2", "down4"]


def test_contract_functions_of_tokenize_image_and_broadcasting():
    tokenize = load_annotated("tokenize_image")
    broadcasting = load_annotated("broadcasting")
    with shapetrace.trace(on_violation="raise") as t:
        tokens = tokenize.image_tokens(torch.rand(2, 8, 4, 4))
        tokenize.channel_gram(tokens)
        broadcasting.combine(torch.rand(8, 1, 10), torch.rand(1, 6, 10), torch.rand(8, 6, 1))
    assert calls_of(t) == [
        ("image_tokens", {"B": 2, "C": 8, "H": 4, "W": 4}),
        ("channel_gram", {"B": 2, "T": 16, "C": 8}),
        ("combine", {"B": 8, "C": 10, "N": 6}),
    ]


@pytest.mark.parametrize("name", ANNOTATED_NAMES)
def test_each_annotated_example_runs_clean_under_the_cli(name):
    run = run_script(ANNOTATED / f"{name}.py")
    assert run.exception is None and run.exit_code == 0
    assert run.trace.contracts == [] and run.trace.contract_warnings == []
    assert run.trace.contract_calls  # checked, including the top-level module's first call
