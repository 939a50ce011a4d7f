"""Acceptance: the seed examples get the seeds' own shape comments from torch's symbolic shapes."""

from __future__ import annotations

import torch

import shapetrace


def test_tokenize_image_names_dims_from_the_rand_call(examples, exprs):
    with shapetrace.trace() as t:
        examples.load("tokenize_image").tokenize_image()
    assert exprs(t, "torch.rand(B, C, H, W") == ["(B, C, H, W)"]
    assert exprs(t, "image.flatten(2)") == ["(B, C, H*W)"]
    assert exprs(t, "h.transpose(1, 2)") == ["(B, H*W, C)"]
    assert exprs(t, "h @ image_toks") == ["(B, C, C)"]
    assert t.dims == {"B": 8, "C": 512, "H": 4, "W": 4}
    assert t.symbolic.state == "ran" and t.specializations == []
    # the concrete sizes are still there
    assert t.ops[2].outputs[0].shape == (8, 16, 512)


def test_patch_embedding_with_dims_and_a_named_constant(examples, exprs):
    model = examples.load("patch_embed").PatchEmbedding(img_size=128, in_ch=3, embed_dim=512, patch_size=32)
    with shapetrace.trace(model, dims="B C H W", D=512) as t:
        model(torch.rand(2, 3, 128, 128))
    # 128 is divisible by 32: printed as the seeds write it, H/32; exact in expr_exact
    assert exprs(t, "self.patch_embed(x)") == ["(B, D, H/32, W/32)"]
    assert exprs(t, "x.flatten(2).transpose(1, 2)") == ["(B, D, H*W/1024)", "(B, H*W/1024, D)"]
    assert exprs(t, "torch.cat(")[-1] == "(B, H*W/1024 + 1, D)"
    assert exprs(t, "x + self.pos_embed") == ["(B, H*W/1024 + 1, D)"]
    assert [m.expr_exact for op in t.ops if "x + self.pos_embed" in op.code for m in op.outputs] == [
        "(B, (H//32)*(W//32) + 1, D)"
    ]
    assert t.symbolic.divisible == {"H": 32, "W": 32}
    root = t.modules[0]
    assert [m.expr for m in root.inputs] == ["(B, C, H, W)"]
    assert [m.expr for m in root.outputs] == ["(B, H*W/1024 + 1, D)"]
    assert t.dims == {"B": 2, "C": 3, "H": 128, "W": 128, "D": 512}
    (fixed,) = t.specializations
    assert (fixed.dim, fixed.value, fixed.expr) == ("C", 3, "3")
    assert fixed.reason == "conv2d needs C == 3"
    assert fixed.file.endswith("patch_embed.py") and fixed.line == next(op.line for op in t.ops if op.op == "conv2d")
    conv = next(op for op in t.to_dict()["ops"] if op["op"] == "conv2d")
    assert conv["outputs"][0]["expr"] == "(B, D, H/32, W/32)" and conv["outputs"][0]["shape"] == [2, 512, 4, 4]
    assert conv["outputs"][0]["expr_exact"] == "(B, D, H//32, W//32)"
    # made inside the block with plain numbers: those are numbers, never B or C
    assert t.ops[0].op == "rand" and t.ops[0].outputs[0].expr == "(2, 3, 128, 128)"


def test_patch_embedding_script_marks_a_size_named_by_value_only(examples, exprs):
    # as `shapetrace examples/patch_embed.py`: the conv's 512 channels are not computed from any
    # dim; the script's `P, D = 77, 512` makes D the one constant of that value: a guess, D?
    with shapetrace.trace() as t:
        examples.load("patch_embed").patch_embedding()
    assert exprs(t, "self.patch_embed(x)") == ["(B, D?, H/32, W/32)"]
    assert exprs(t, "x + self.pos_embed") == ["(B, H*W/1024 + 1, D?)"]
    assert exprs(t, "txt_toks = torch.rand(B, P, D") == ["(B, P, D)"]


def test_mlp_guesses_the_users_d_and_reports_its_specialisation(examples, exprs):
    with shapetrace.trace() as t:
        examples.load("mlp").mlp()
    assert exprs(t, "x = torch.rand(B, P, D") == ["(B, P, D)"]
    # torch fixed D to 512: the last Linear's 512 outputs may be D (they are), marked as a guess
    assert exprs(t, "return self.net(x)") == ["(B, P, 2048)", "(B, P, 2048)", "(B, P, D?)"]
    assert [m.expr for m in t.modules[0].outputs] == ["(B, P, D?)"]
    (fixed,) = t.specializations
    assert (fixed.dim, fixed.value, fixed.expr, fixed.reason) == ("D", 512, "512", "linear needs D == 512")
    assert t.ops[fixed.op_index].op == "linear" and t.ops[fixed.op_index].module == "net.0"
    assert fixed.file.endswith("mlp.py") and fixed.line == t.ops[fixed.op_index].line


def test_conv_rules_upsampling_keeps_every_dim_symbolic(examples, exprs):
    with shapetrace.trace() as t:
        examples.load("conv_rules").conv_rules()
    stride2 = next(op for op in t.ops if op.op == "conv2d" and op.module_call is not None and "s = stride" not in op.code
                   and op.outputs[0].shape[2] == 64)  # fmt: skip
    assert stride2.outputs[0].expr == "(B, C?, H/2, W/2)"  # 128 is even: as the seeds write it
    assert stride2.outputs[0].expr_exact == "(B, C?, (H - 1)//2 + 1, (W - 1)//2 + 1)"
    # nn.Upsample(scale_factor=2) runs torch's decomposition (Python dispatcher): nearest
    # upsampling works for every size, so nothing is fixed
    upsample = next(op for op in t.ops if op.op == "interpolate")
    assert upsample.outputs[0].expr == "(B, C, 2*H, 2*W)"
    assert not [s for s in t.specializations if s.op_index == upsample.index]
    assert next(op for op in t.ops if op.op == "conv_transpose2d").outputs[0].expr == "(B, C?, 2*H, 2*W)"
    assert t.symbolic.state == "ran"


def test_a_number_that_is_not_a_live_dim_is_not_named_after_it(examples, exprs):
    # heads = 8 = B: the view's 8 is not B (B is a symbol in this call, so an 8 there is something else)
    with shapetrace.trace() as t:
        examples.load("attention").attention()
    assert exprs(t, "q = qkv[..., :D].view(B, N, h, d)") == ["(B, N, D?)", "(B, N, 8, 64)", "(B, 8, N, 64)"]
    assert exprs(t, "attn = attn.softmax(dim=-1)") == ["(B, 8, N, N)"]
    assert exprs(t, "out.transpose(1, 2).reshape(B, N, D)")[-1] == "(B, N, D?)"


def test_a_block_without_names_is_left_concrete(examples):
    with shapetrace.trace() as t:
        examples.load("broadcasting").broadcasting()
    assert t.symbolic.state == "skipped" and "no dim has a name" in t.symbolic.reason
    assert [op.outputs[0].shape_text() for op in t.ops][-1] == "(8, 6, 10)"
    assert all(meta.expr is None for op in t.ops for meta in op.outputs)
