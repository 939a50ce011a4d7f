"""Shape and dtype failures planted in seed-style models: the diagnosis names the line, the
operands and the cause, and says what would fit."""

from __future__ import annotations

import planted
import pytest
import torch
from planted import line_of

PLANTED = planted.__file__


def caret_columns(line: str) -> list[int]:
    return [i for i, ch in enumerate(line) if ch == "^"]


def test_cat_names_the_dim_and_the_tensor_that_differ(run_failing):
    t, error, d = run_failing(planted.PatchEmbedNoTranspose(), torch.rand(2, 3, 32, 32))
    assert (d.kind, d.file, d.line, d.op) == ("cat-shape", PLANTED, line_of("cat"), "cat")
    assert d.op_index == t.error.op_index and t.ops[d.op_index].failed
    assert [o.role for o in d.operands] == ["self.cls_token.expand(B, -1, -1)", "x"]
    assert [o.meta.shape for o in d.operands] == [(2, 1, 64), (2, 64, 16)]
    assert "joins along dim 1" in d.message
    assert (
        "`x` (B, 64, H*W/64) has 16 in dim 2 where `self.cls_token.expand(B, -1, -1)` (B, 1, 64) has 64"
        in d.message
    )
    first, second, marks = d.details
    assert (
        first.endswith("(2,  1, 64)") and second.endswith("(2, 64, 16)") and marks.rstrip().endswith("dim 2")
    )
    assert caret_columns(marks) == [second.index("16"), second.index("16") + 1]  # under dim 2
    assert d.fix == "make dim 2 of every tensor 64 (only dim 1, the one joined, may differ)"
    assert d.operands[1].origin.text == f"`x.flatten(2)` at planted.py:{line_of('cat') - 1}"


def test_stack_names_the_tensor_with_another_shape(run_failing):
    _, _, d = run_failing(planted.TwoPoolings(), torch.rand(2, 3, 16, 16))
    assert (d.kind, d.line) == ("stack-shape", line_of("stack"))
    assert [o.role for o in d.operands] == ["fine", "coarse"]
    assert "`coarse` (2, 3, 4, 4) differs from `fine` (2, 3, 8, 8) in dim 2 (4 vs 8)" in d.message


def test_cat_with_keyword_arguments_maps_each_tensor_to_its_expression():
    from shapetrace import trace

    left, right = torch.rand(2, 3), torch.rand(4, 5)
    with pytest.raises(RuntimeError), trace() as t:
        torch.cat(tensors=[left, right], dim=1)
    d = t.diagnostics[0]
    assert [o.role for o in d.operands] == ["left", "right"]
    assert "`right` (4, 5) has 4 in dim 0 where `left` (2, 3) has 2" in d.message


def test_broadcast_right_aligns_the_shapes_and_marks_the_dim(run_failing):
    _, _, d = run_failing(planted.PatchEmbedWrongImageSize(), torch.rand(2, 3, 32, 32))
    assert (d.kind, d.line, d.op) == ("broadcast", line_of("broadcast"), "+")
    assert [o.role for o in d.operands] == ["x", "self.pos_embed"]
    assert "must be equal or 1, but in dim 1 `x` has 17 and `self.pos_embed` has 65" in d.message
    x_row, pos_row, marks = d.details
    assert x_row == "x              (2, 17, 64)" and pos_row == "self.pos_embed (1, 65, 64)"
    assert caret_columns(marks) == [x_row.index("17"), x_row.index("17") + 1]
    assert (
        d.operands[1].origin.kind == "parameter"
        and "`pos_embed`, a parameter of the model" in d.operands[1].origin.text
    )
    assert "`pos_embed` (1, 65, 64) was built with 65 in dim 1, the other operand has 17" in d.fix


def test_linear_names_the_module_its_in_features_and_what_would_fit(run_failing):
    t, _, d = run_failing(planted.FashionNet(flatten_with_reshape=False), torch.rand(2, 1, 32, 32))
    assert (d.kind, d.line, d.op, d.module) == ("matmul-shape", line_of("linear"), "linear", "fc1 (Linear)")
    assert [(o.role, o.meta.shape) for o in d.operands] == [
        ("t", (2, 300)),
        ("weight", (120, 192)),
        ("bias", (120,)),
    ]
    assert "`fc1` (Linear) has in_features=192" in d.message and "its input (2, 300) is 300" in d.message
    assert d.fix.startswith("`nn.Linear(in_features=300, out_features=120)` fits this input")
    weight = d.operands[1].origin
    assert weight.kind == "parameter" and weight.text == "`fc1.weight`, a parameter of fc1 (Linear)"
    assert t.modules[t.ops[d.op_index].module_index].path == "fc1"


def test_reshape_that_cannot_hold_the_elements(run_failing):
    _, _, d = run_failing(planted.FashionNet(), torch.rand(2, 1, 32, 32))
    assert (d.kind, d.line, d.op) == ("view-size", line_of("reshape"), "reshape")
    assert "`t` (2, 12, 5, 5) holds 600 elements (2 × 12 × 5 × 5)" in d.message
    assert "multiply to 192, which does not divide 600" in d.message
    assert "Per item of dim 0 (2), the input holds 300 elements (12 × 5 × 5), not 192." in d.message
    assert d.fix.startswith("`t.reshape(-1, 300)`")
    assert d.details == ("(2, 12, 5, 5) -> reshape(-1, 192)",)


def test_view_of_a_transposed_tensor_points_at_the_transpose(run_failing):
    _, _, d = run_failing(planted.ViewAfterTranspose(), torch.rand(2, 5, 4))
    assert (d.kind, d.line) == ("view-stride", line_of("view-stride"))
    assert "`x` (B, D, N) is not contiguous" in d.message
    assert f"`transpose` at planted.py:{line_of('view-stride') - 1} reordered it" in d.message
    assert d.fix == "`.reshape(2, 20)` copies when it must; or `.contiguous().view(2, 20)`"


def test_matmul_inner_dims_and_the_transpose_that_fits(run_failing):
    _, _, d = run_failing(planted.AttentionNoTranspose(), torch.rand(2, 10, 32))
    assert (d.kind, d.line, d.op) == ("matmul-shape", line_of("matmul"), "@")
    assert [o.role for o in d.operands] == ["q", "k"]
    assert (
        "the last dim of `q` (B, 4, N, 8) is 8 and the second-to-last dim of `k` (B, 4, N, 8) is 10"
        in d.message
    )
    shapes, marks = d.details
    assert shapes == "(2, 4, 10, 8) @ (2, 4, 10, 8)"
    assert caret_columns(marks) == [11, 23, 24]  # the 8 of q, the 10 of k
    assert d.fix == "`k.transpose(-2, -1)` is (2, 4, 8, 10) and fits: `q @ k.transpose(-2, -1)`"


def test_matmul_batch_dims_that_do_not_broadcast():
    from shapetrace import trace

    a, b = torch.rand(2, 3, 5), torch.rand(3, 5, 6)
    with pytest.raises(RuntimeError), trace() as t:
        a @ b
    d = t.diagnostics[0]
    assert d.kind == "broadcast" and "the inner dims fit (5)" in d.message
    assert "dim 0 of `a` is 2 and dim 0 of `b` is 3" in d.message


def test_conv_channel_mismatch_names_the_layer(run_failing):
    _, _, d = run_failing(planted.TwoConvs(), torch.rand(2, 3, 8, 8))
    assert (d.kind, d.line, d.module) == ("conv-channels", line_of("conv"), "conv2 (Conv2d)")
    assert (
        "`conv2` (Conv2d) expects 8 input channels (weight (16, 8, 3, 3)), but dim 1 of its input (2, 6, 8, 8) is 6."
        in d.message
    )
    assert "channels-last" not in d.message  # its last dim is 8 by coincidence: H = W = 8
    assert d.fix.startswith("`nn.Conv2d(6, 16, kernel_size=3, padding=1)` fits this input (at planted.py:")
    assert d.fix_checked and [e.text for e in d.edits] == ["6"]  # conv2's in_channels, where it is built


def test_conv_on_a_channels_last_image_says_so(run_failing):
    _, _, d = run_failing(planted.Stem(), torch.rand(2, 8, 8, 3))
    assert (d.kind, d.line) == ("conv-channels", line_of("channels-last"))
    assert "it looks channels-last; `.permute(0, 3, 1, 2)` puts channels in dim 1" in d.message


def test_layer_norm_built_for_another_width(run_failing):
    _, _, d = run_failing(planted.WidenThenNorm(), torch.rand(2, 5, 16))
    assert (d.kind, d.line, d.module) == ("norm-shape", line_of("layer-norm"), "norm (LayerNorm)")
    assert (
        "`norm` (LayerNorm) normalizes the last 1 dim of its input, built for (16,), but `x` (2, 5, 32) ends with (32,)"
        in d.message
    )
    assert d.fix.startswith("`nn.LayerNorm(32)` fits this input (at planted.py:") and d.fix_checked


def test_dtype_mismatch_finds_where_the_dtype_changed(run_failing):
    _, _, d = run_failing(planted.LogFeatures(), torch.rand(2, 16))
    assert (d.kind, d.line, d.module) == ("dtype-mismatch", line_of("dtype"), "fc (Linear)")
    assert [o.role for o in d.operands] == ["feats", "weight", "bias"]
    assert "`feats` is float64, `weight` is float32" in d.message
    assert f"`x.double()` at planted.py:{line_of('dtype') - 1} converted it to float64" in d.message
    assert d.fix.endswith("or convert it here: `feats.to(torch.float32)`")


def test_embedding_with_float_indices(run_failing):
    _, _, d = run_failing(planted.TokenEmbedding(), torch.rand(2, 7))
    assert (d.kind, d.line) == ("dtype-mismatch", line_of("embedding"))
    assert "`ids` must be an integer tensor (int64 or int32), but `ids` (2, 7) is float32" in d.message
    assert "`ids.long()`" in d.fix


def test_expand_and_in_place_broadcast():
    from shapetrace import trace

    cls_token = torch.zeros(1, 2, 8)
    with pytest.raises(RuntimeError), trace() as t:
        cls_token.expand(4, 3, -1)
    d = t.diagnostics[0]
    assert (
        d.kind == "broadcast" and "dim 1 of `cls_token` (1, 2, 8) is 2 and the target asks for 3" in d.message
    )

    x, bias = torch.rand(8, 1), torch.rand(8, 6)
    with pytest.raises(RuntimeError), trace() as t:
        x += bias
    d = t.diagnostics[0]
    assert (
        d.kind == "broadcast" and "the operands broadcast to (8, 6): an in-place op cannot grow" in d.message
    )
    assert d.fix == "write a new tensor instead: `x = x + ...`"


def test_an_error_of_another_kind_still_gets_its_place_and_operands():
    from shapetrace import trace

    a = torch.rand(3, 4)
    with pytest.raises(RuntimeError) as info, trace() as t:
        a.inverse()
    d = t.diagnostics[0]
    assert d.kind == "op-error" and d.op == "inverse" and d.operands[0].role == "a"
    assert str(info.value).splitlines()[0] in d.message


def test_symbolic_shape_text_is_used_when_known(run_failing):
    """Operand shapes print with ``TensorMeta.shape_text()``, which prefers ``expr``."""
    import dataclasses

    from shapetrace.render.diagnostics import DiagnosticsView

    _, _, d = run_failing(planted.AttentionNoTranspose(), torch.rand(2, 10, 32))
    symbolic = dataclasses.replace(d.operands[0].meta, expr="(B, h, N, d)")
    d = dataclasses.replace(d, operands=(dataclasses.replace(d.operands[0], meta=symbolic), *d.operands[1:]))
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(DiagnosticsView([d]))
    assert "(B, h, N, d)" in console.export_text() and "(B, h, N, d)" in d.note()


def test_a_class_index_out_of_range_names_the_largest_and_the_classes(run_failing):
    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(8, 7)

        def forward(self, x, labels):
            return torch.nn.functional.cross_entropy(self.head(x), labels)

    _, error, d = run_failing(Classifier(), torch.rand(4, 8), torch.tensor([1, 9, 3, 0]))
    assert type(error) is IndexError and d.kind == "loss-target"
    assert "7 classes, 0 to 6; but `labels` holds 9 (its largest target is 9)." in d.message
    assert d.fix.startswith("`torch.nn.Linear(8, 10)` outputs 10 classes (at test_diagnose_failures.py:")
    assert d.fix_checked and [e.text for e in d.edits] == ["10"]


def test_attention_keys_with_the_heads_in_the_wrong_dim(run_failing):
    class Attention(torch.nn.Module):
        def forward(self, q, k, v):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)  # (B, h, N, d)

    q = torch.rand(2, 4, 6, 8)
    _, _, d = run_failing(Attention(), q, torch.rand(2, 6, 4, 8), torch.rand(2, 4, 6, 8))
    assert d.kind == "attention-shape" and "`k` (2, 6, 4, 8) looks like (B, N, h, d)" in d.message
    assert d.fix == "`torch.nn.functional.scaled_dot_product_attention(q, k.transpose(1, 2), v)`" and d.fix_checked


def test_a_view_to_a_square_map_of_the_wrong_side(run_failing):
    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(8, 64 * 8 * 8)

        def forward(self, z):
            return self.fc(z).view(z.shape[0], 64, 7, 7)  # (B, 64, 8, 8) meant

    _, _, d = run_failing(Decoder(), torch.rand(4, 8))
    assert d.kind == "view-size" and "holds 16384 elements" in d.message
    assert d.fix.startswith("`self.fc(z).view(z.shape[0], 64, 8, 8)` holds all 16384 elements") and d.fix_checked
    assert [e.text for e in d.edits] == ["8", "8"]


def test_a_parenthesised_operand_gets_its_axes_without_a_second_pair_of_parentheses(run_failing):
    class Modulate(torch.nn.Module):
        def forward(self, h, scale):
            return h * (1 + scale)  # (B, N, D) * (B, D)

    _, _, d = run_failing(Modulate(), torch.rand(2, 5, 8), torch.rand(2, 8))
    assert d.fix == "`h * (1 + scale)[:, None, :]`" and d.fix_checked
    (edit,) = d.edits
    assert edit.text == "(1 + scale)[:, None, :]" and edit.end_col - edit.col == len("(1 + scale)")
