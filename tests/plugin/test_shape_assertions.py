"""The ``shapes`` fixture and ``trace_call``: one line to trace a call, one line per shape assertion,
and failures that read without the trace."""

from __future__ import annotations

import re
import shutil

import pytest
import torch
from jaxtyping import Float
from torch import Tensor, nn

from shapetrace.contracts import ContractError
from shapetrace.testing import ShapeMismatch, TracedCall, trace_call


@pytest.fixture
def patch_embed(examples):
    return examples.load("patch_embed").PatchEmbedding(img_size=64, embed_dim=32).eval()


@pytest.fixture
def image():
    return torch.rand(2, 3, 64, 64)


class QKV(nn.Module):
    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x: torch.Tensor):
        q, k, v = self.qkv(x).chunk(3, dim=-1)                      # (B, N, D) x3
        return q, k, {"scores": q @ k.transpose(1, 2), "v": v}


class Annotated(nn.Module):
    def forward(self, x: Float[Tensor, "B N D"], y: Float[Tensor, "B N D"]) -> Float[Tensor, "B N D"]:
        return x + y


def test_one_line_traces_and_one_line_asserts_each_shape(shapes, patch_embed, image):
    t = shapes(patch_embed, image, dims="B C H W", sizes={"D": 32})
    assert isinstance(t, TracedCall)
    assert torch.equal(t.output, patch_embed(image))
    assert t.dims == {"B": 2, "C": 3, "H": 64, "W": 64, "D": 32}
    t.assert_output("(B, (H//32)*(W//32) + 1, D)")
    t.assert_output("B N D")
    t.assert_op("cat", "(B, P + 1, D)")
    t.assert_op("conv2d", "(B, D, H//32, W//32)")
    t.assert_op("torch.cat", "B (H//32)*(W//32)+1 D")  # qualified name, dims spec
    t.assert_module("patch_embed", "(B, D, H//32, W//32)")
    t.assert_line("x.flatten(2)", "(B, (H//32)*(W//32), D)")
    t.assert_line(35, "(B, (H//32)*(W//32), D)", file="patch_embed.py")


def test_a_mismatch_says_expected_and_actual_symbolically_with_the_line(shapes, patch_embed, image):
    t = shapes(patch_embed, image, dims="B C H W", sizes={"D": 32})
    with pytest.raises(ShapeMismatch) as failure:
        t.assert_op("cat", "(B, H*W//1024 + 1, D)")
    assert str(failure.value) == (
        "shape of op 'cat' does not match\n"
        "  expected (B, H*W//1024 + 1, D)\n"
        "  actual   (B, (H//32)*(W//32) + 1, D)  = (2, 5, 32) here\n"
        "  dim 1: expected H*W//1024 + 1 (= 5), got (H//32)*(W//32) + 1 (= 5); "
        "equal at this run's sizes, but not the same expression\n"
        "  at examples/patch_embed.py:36 in PatchEmbedding\n"
        "      x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)\n"
        "dims: B=2, C=3, H=64, W=64, D=32"
    )
    with pytest.raises(ShapeMismatch, match=r"dim 2: expected C \(= 3\), got D \(= 32\)"):
        t.assert_output("B N C")


def test_without_dims_shapes_are_compared_as_numbers(shapes, patch_embed, image):
    t = shapes(patch_embed, image)
    t.assert_output((2, 5, 32))
    t.assert_output("B N D")
    # no dims given: PatchEmbedding's `B, C, H, W = x.shape` names them
    with pytest.raises(ShapeMismatch, match=r"dim 1: expected 6, got \(H//32\)\*\(W//32\) \+ 1 \(= 5\)"):
        t.assert_output("(2, 6, 32)")


def test_every_call_of_an_op_must_match_unless_one_is_picked(shapes):
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    t = shapes(model, torch.rand(2, 8), dims="B F")
    t.assert_op("linear", "B _")
    t.assert_op("linear", "(B, 16)", nth=0)
    t.assert_op("linear", "(B, 4)", nth=-1)
    t.assert_op("linear", "(B, 4)", module="2")
    with pytest.raises(ShapeMismatch) as failure:
        t.assert_op("linear", "(B, 16)")
    message = str(failure.value)
    assert message.startswith("shape of op 'linear' does not match (1 of 2)\nop 'linear' (op 2):\n")
    assert "  dim 1: expected 16, got 4\n" in message
    with pytest.raises(ShapeMismatch, match="no op 'conv2d' ran .*; ops that ran: linear, relu"):
        t.assert_op("conv2d", "B C")
    with pytest.raises(ShapeMismatch, match=r"nth=5, but op 'linear' ran 2 times"):
        t.assert_op("linear", "B C", nth=5)


def test_outputs_inside_tuples_and_dicts(shapes):
    t = shapes(QKV(), torch.rand(2, 5, 8), dims="B N D")
    assert [m.path for m in t.output_metas()] == ["[0]", "[1]", "[2]['scores']", "[2]['v']"]
    t.assert_output("B N D", "B N D", "B N N", "B N D")
    t.assert_output("(B, N, N)", at="[2]['scores']")
    t.assert_op("chunk", "(B, N, D)")  # one expectation for each of the op's three outputs
    t.assert_line("chunk(3", "(B, N, D)")
    with pytest.raises(ShapeMismatch, match=r"\[2\]\['scores'\] dim 2: expected D \(= 8\), got N \(= 5\)"):
        t.assert_output("B N D")
    with pytest.raises(ShapeMismatch, match=r"no tensor at '\.logits'; its tensor paths: '\[0\]', '\[1\]'"):
        t.assert_output("B N D", at=".logits")


def test_a_function_is_traced_like_a_module():
    t = trace_call(lambda a, b: (a @ b).relu(), torch.rand(2, 3, 4), torch.rand(4, 5))
    t.assert_output("(2, 3, 5)")
    t.assert_op("@", "B N M")
    assert t.label.endswith("<lambda>")


def test_the_block_form_traces_several_calls(shapes, patch_embed, image):
    with shapes.trace(patch_embed, dims="B C H W", sizes={"D": 32}) as t:
        t.output = patch_embed(image)
        patch_embed(image[:1])
    t.assert_output("B N D")
    t.assert_module("", "(B, (H//32)*(W//32) + 1, D)", call=1)
    assert len(t.trace.modules) == 6


def test_an_exception_in_the_model_reaches_the_test_unchanged(shapes, patch_embed):
    with pytest.raises(RuntimeError, match=re.escape("expected input[2, 4, 64, 64] to have 3 channels")):
        shapes(patch_embed, torch.rand(2, 4, 64, 64))


def test_contract_violations_fail_the_test_by_default(shapes):
    x = torch.rand(2, 5, 8)
    shapes(Annotated(), x, x).assert_output("B N D")
    with pytest.raises(ContractError, match="y does not match its annotation"):
        shapes(Annotated(), x, torch.rand(2, 5, 1))
    recorded = shapes(Annotated(), x, torch.rand(2, 5, 1), on_violation="record")
    assert [v.arg for v in recorded.trace.contracts] == ["y"]


def test_lines_are_found_by_text_or_number(shapes, patch_embed, image):
    t = shapes(patch_embed, image)
    with pytest.raises(ShapeMismatch, match=r"no traced line is 'x.unflatten'; traced lines:\n"):
        t.assert_line("x.unflatten", "B")
    with pytest.raises(ShapeMismatch, match=r"'x = ' matches several traced lines; pass file= or more text"):
        t.assert_line("x = ", "B")


class Heads(nn.Module):
    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 2 * dim)

    def split_heads(self, t):
        B, N, D = t.shape
        return t.view(B, N, 2, D // 2).transpose(1, 2)  # (B, 2, N, D/2)

    def forward(self, x):
        qkv = self.qkv(x)                                # (B, N, 2*D)
        q = self.split_heads(qkv[..., :8])               # (B, 2, N, D/2)
        heads = q.flatten(2)                             # (B, 2, N*D/2)
        return heads


def test_a_line_is_what_its_shape_comment_describes_as_check_reads_it(shapes):
    """Through the helper a line calls, and a forward's only return as the module's output."""
    t = shapes(Heads(), torch.rand(3, 5, 8))
    t.assert_line("q = self.split_heads(", (3, 2, 5, 4))  # what split_heads returned, not the slice
    t.assert_line("return heads", (3, 2, 20))
    # nothing names the input's dims: generated names, d0 and d1
    with pytest.raises(ShapeMismatch, match=r"expected \(3, 5, 8\)\n  actual   \(d0, 2, d1, 4\)  = \(3, 2, 5, 4\) here\n"):
        t.assert_line("q = self.split_heads(", (3, 5, 8))


def test_a_models_comments_are_asserted_against_the_call(shapes, examples, tmp_path, image):
    shapes(examples.load("patch_embed").PatchEmbedding(img_size=64), image, dims="B C H W", sizes={"D": 512}).assert_comments()
    stale = tmp_path / "stale_patch_embed.py"
    shutil.copy(examples.path("patch_embed"), stale)
    text = stale.read_text().replace("x = x.flatten(2).transpose(1, 2)                             # (B, (H//32)*(W//32), D)",
                                     "x = x.flatten(2).transpose(1, 2)                             # (B, D, (H//32)*(W//32))")  # fmt: skip
    stale.write_text(text)
    module = _load(stale)
    t = shapes(module.PatchEmbedding(img_size=64), image, dims="B C H W", sizes={"D": 512})
    with pytest.raises(ShapeMismatch) as failure:
        t.assert_comments()
    assert "stale_patch_embed.py:35: comment says (B, D, (H//32)*(W//32)), ran (B, H*W/1024, D)" in str(
        failure.value
    )


def _load(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
