"""``--check``: stale comments are listed and fail, the examples pass, and nothing is called
stale that the trace cannot contradict."""

from __future__ import annotations

import pytest
from comments_support import (
    EXAMPLE_NAMES,
    EXAMPLES,
    concrete,
    line_of,
    one_of,
    replace_once,
    traced_script,
    with_exprs,
)

from shapetrace.comments import Status, check_comments


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_passes(cli, name):
    code, out, _ = cli("--check", EXAMPLES / f"{name}.py")
    assert code == 0, out
    assert ": comment says" not in out.replace("unchecked: comment says", "").replace(
        "note: comment says", ""
    )
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("shapetrace --check:") and ", 0 stale" in summary


def test_a_planted_stale_comment_is_listed_and_exits_1(cli, example_copy):
    path = example_copy("tokenize_image")
    replace_once(path, "image_toks = h.transpose(1, 2)                 # (B, H*W, C)",
                 "image_toks = h.transpose(1, 2)                 # (B, C, H*W)")  # fmt: skip
    line = line_of(path, "image_toks = h.transpose(1, 2)")
    code, out, _ = cli("--check", path)
    assert code == 1
    stale = f"tokenize_image.py:{line}: comment says (B, C, H*W), ran "
    assert one_of(out, stale + "(8, 16, 512)", stale + "(B, H*W, C)")  # without / with symbolic shapes
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith("shapetrace --check: 4 shape comments in 1 file: 3 fresh, 1 stale")
    )
    # without the symbolic pass: the names get their values from `B, C, H, W = 8, 512, 4, 4`
    code, out, _ = cli("--no-symbolic", "--check", path)
    assert code == 1
    assert out.strip().splitlines()[-2:] == [
        stale + "(8, 16, 512)",
        "shapetrace --check: 4 shape comments in 1 file: 3 fresh, 1 stale "
        "(no symbolic shapes: compared at the traced sizes)",
    ]


def test_concrete_fallback_compares_at_the_sizes_bound_in_the_source(example_copy):
    path = example_copy("tokenize_image")
    replace_once(path, "# (B, H*W, C)", "# (B, C, H*W)")
    report = check_comments(concrete(traced_script(path)))
    line = line_of(path, "image_toks = h.transpose(1, 2)")
    # B, C, H, W = 8, 512, 4, 4 in the traced function gives the names their values
    assert [c.message() for c in report.stale] == [
        f"tokenize_image.py:{line}: comment says (B, C, H*W), ran (8, 16, 512)"
    ]
    assert not report.symbolic
    assert report.lines()[-1] == (
        "shapetrace --check: 4 shape comments in 1 file: 3 fresh, 1 stale "
        "(no symbolic shapes: compared at the traced sizes)"
    )


def test_a_stale_module_call_line_and_a_stale_line_inside_forward(cli, example_copy):
    path = example_copy("patch_embed")
    replace_once(path, "# (B, D, H//32, W//32)", "# (B, D, H//16, W//16)")
    replace_once(path, "patch_emb = model(image)                       # (B, (H//32)*(W//32) + 1, D)",
                 "patch_emb = model(image)                       # (B, (H//32)*(W//32), D)")  # fmt: skip
    code, out, _ = cli("--check", path)
    assert code == 1
    conv, call = line_of(path, "x = self.patch_embed(x)"), line_of(path, "patch_emb = model(image)")
    assert f"patch_embed.py:{conv}: comment says (B, D, H//16, W//16), ran " in out
    assert f"patch_embed.py:{call}: comment says (B, (H//32)*(W//32), D), ran " in out
    report = check_comments(concrete(traced_script(path)))
    assert [c.message() for c in report.stale] == [
        f"patch_embed.py:{conv}: comment says (B, D, H//16, W//16), ran (8, 512, 4, 4)",
        f"patch_embed.py:{call}: comment says (B, (H//32)*(W//32), D), ran (8, 17, 512)",
    ]


def test_unknown_names_are_unchecked_never_stale(cli, example_copy):
    path = example_copy("attention")
    code, out, _ = cli("--check", path)
    line = line_of(path, "q = qkv[..., :D]")
    # h and d come from self.heads and self.head_dim: no value, so not checked ...
    unchecked = [text for text in out.splitlines() if text.startswith(f"attention.py:{line}: unchecked: ")]
    assert len(unchecked) == 1 and unchecked[0].endswith(": no value for d, h")
    assert [c.message() for c in check_comments(concrete(traced_script(path))).checks if c.line == line] == [
        f"attention.py:{line}: unchecked: comment says (B, h, N, d), ran (8, 8, 65, 64): no value for d, h"
    ]
    assert code == 0
    # ... but a dim that does evaluate still contradicts: N is 65, the second dim is 8
    replace_once(path, "v = qkv[..., 2 * D :].view(B, N, h, d).transpose(1, 2)    # (B, h, N, d)",
                 "v = qkv[..., 2 * D :].view(B, N, h, d).transpose(1, 2)    # (B, N, h, d)")  # fmt: skip
    code, out, _ = cli("--check", path)
    assert code == 1
    assert f"attention.py:{line_of(path, 'v = qkv')}: comment says (B, N, h, d), ran " in out


def test_rank_mismatch_is_always_stale(cli, example_copy):
    path = example_copy("attention")
    replace_once(path, "attn = attn.softmax(dim=-1)                               # (B, h, N, N)",
                 "attn = attn.softmax(dim=-1)                               # (B, h, q)")  # fmt: skip
    code, out, _ = cli("--check", path)
    assert code == 1
    assert f"attention.py:{line_of(path, 'attn.softmax')}: comment says (B, h, q), ran " in out


def test_a_name_the_function_binds_otherwise_is_not_taken_from_elsewhere(cli, example_copy):
    # in __init__, P = (img_size // patch_size) ** 2 (16); patch_embedding() has P = 77: never use it
    path = example_copy("patch_embed")
    code, out, _ = cli("--check", path)
    line = line_of(path, "self.pos_embed = nn.Parameter")
    assert f"patch_embed.py:{line}: unchecked: comment says (1, P + 1, D), ran " in out
    assert out.split(f"patch_embed.py:{line}: unchecked: ")[1].split("\n")[0].endswith(": no value for P")
    assert code == 0


SCRIPT = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class Pool(nn.Module):
    def forward(self, x):
        B, C, H, W = x.shape
        return F.avg_pool2d(x, 2)  # (B, C, H//2, W//2)


def run():
    pool = Pool()
    img = torch.rand(1, 3, 4, 4)
    for size in (8, 16):
        z = F.interpolate(img, size=size)  # COMMENT
        pool(z)
    wide = pool(torch.rand(2, 3, 8, 12))   # (2, 3, 4, 6)


run()
"""


@pytest.mark.parametrize(
    ("comment", "status"),
    [
        ("(1, 3, 8, 8) | (1, 3, 16, 16)", Status.FRESH),
        ("(1, 3, 16, 16) | (1, 3, 8, 8)", Status.FRESH),
        ("(1, 3, 8, 8)", Status.STALE),  # the second run matches no alternative
        ("(1, 3, 8, 8) | (1, 3, 16, 16) | (1, 3, 32, 32)", Status.UNCHECKED),  # no run made the third
        ("(1, 3, 8, 8) | ...", Status.FRESH),  # a cut list: the runs it lists are checked
        ("(1, 3, 8, 8), (1, 3)", Status.STALE),  # two tensors, one ran
    ],
)
def test_lines_that_ran_several_times(tmp_path, comment, status):
    path = tmp_path / "loop.py"
    path.write_text(SCRIPT.replace("# COMMENT", f"# {comment}"))
    report = check_comments(traced_script(path))
    by_line = {check.line: check for check in report.checks}
    assert by_line[line_of(path, "z = F.interpolate")].status is status
    # Pool's forward ran on (1, 3, 8, 8), (1, 3, 16, 16) and (2, 3, 8, 12): H and W are read from
    # `B, C, H, W = x.shape` at each call, so one comment holds for all three
    assert by_line[line_of(path, "return F.avg_pool2d")].status is Status.FRESH
    assert by_line[line_of(path, "wide = pool(")].status is Status.FRESH


def test_a_forward_argument_size_read_at_each_call_catches_swapped_dims(tmp_path):
    path = tmp_path / "loop.py"
    path.write_text(SCRIPT.replace("# (B, C, H//2, W//2)", "# (B, C, W//2, H//2)"))
    report = check_comments(traced_script(path))
    check = next(c for c in report.checks if c.line == line_of(path, "return F.avg_pool2d"))
    assert check.status is Status.STALE  # right for the square inputs, wrong for (2, 3, 8, 12)
    assert check.ran == "(1, 3, 4, 4) | (1, 3, 8, 8) | (2, 3, 4, 6)"


def test_a_script_that_raises_keeps_its_traceback_and_trace(cli, tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import torch\n\nx = torch.rand(2, 3)  # (2, 4)\ny = x @ torch.rand(4, 5)\n")
    code, out, err = cli("--check", path)
    assert code == 1
    assert err.splitlines()[0] == "Traceback (most recent call last):"
    assert "RuntimeError" in err and "shapetrace: --check skipped: the script raised" in err
    assert "✗ raised" in out  # the trace table


# --- with symbolic shapes (as the symbolic pass fills TensorMeta.expr and Trace.dims) ------------

TOKENIZE = {
    (8, 512, 4, 4): "(B, C, H, W)", (8, 512, 16): "(B, C, H*W)", (8, 16, 512): "(B, H*W, C)",
    (8, 512, 512): "(B, C, C)",
}  # fmt: skip


def test_symbolic_stale_message(example_copy):
    path = example_copy("tokenize_image")
    replace_once(path, "h = image.flatten(2)                           # (B, C, H*W)",
                 "h = image.flatten(2)                           # (B, H*W, C)")  # fmt: skip
    report = check_comments(with_exprs(traced_script(path), TOKENIZE, {"B": 8, "C": 512, "H": 4, "W": 4}))
    assert [c.message() for c in report.stale] == [
        f"tokenize_image.py:{line_of(path, 'h = image.flatten(2)')}: comment says (B, H*W, C), ran (B, C, H*W)"
    ]
    assert report.symbolic and report.exit_code == 1
    assert [c.status for c in report.checks].count(Status.FRESH) == 3


def test_symbolic_equality_is_by_expression_not_by_text(example_copy):
    path = example_copy("tokenize_image")
    replace_once(path, "# (B, C, H*W)", "# (B, C, W*H)")
    replace_once(path, "# (B, H*W, C)", "# (B, 16, C)")  # right here, but not for every H and W
    report = check_comments(with_exprs(traced_script(path), TOKENIZE, {"B": 8, "C": 512, "H": 4, "W": 4}))
    by_line = {c.line: c for c in report.checks}
    assert by_line[line_of(path, "h = image.flatten(2)")].status is Status.FRESH
    note = by_line[line_of(path, "image_toks = h.transpose")]
    assert note.status is Status.AT_SIZES
    assert note.message() == (
        f"tokenize_image.py:{note.line}: note: comment says (B, 16, C), ran (B, H*W, C): "
        "equal at the traced sizes (B=8, C=512), not as expressions"
    )
    assert report.exit_code == 0


def test_a_dim_torch_specialised_is_fresh(example_copy):
    # the MLP: a guard of the first linear fixed D to 512, so torch gives (B, P, 512) for (B, P, D)
    path = example_copy("mlp")
    exprs = {(8, 77, 512): "(B, P, 512)", (8, 77, 2048): "(B, P, 2048)"}
    dims = {"B": 8, "P": 77, "D": 512}
    report = check_comments(with_exprs(traced_script(path), exprs, dims, specialized={"D": 512}))
    assert {c.status for c in report.checks} == {Status.FRESH}
    # had torch not fixed D, a comment D where a number ran holds at these sizes only
    report = check_comments(with_exprs(traced_script(path), exprs, dims))
    assert {c.status for c in report.checks} == {Status.AT_SIZES}


def test_conv_rule_equal_at_these_sizes_is_a_note_not_stale(example_copy, cli):
    path = example_copy("conv_rules")
    exprs = {
        (8, 3, 128, 128): "(B, C, H, W)",
        (8, 3, 64, 64): "(B, C, (H - 1)//2 + 1, (W - 1)//2 + 1)",
        (8, 3, 32, 32): "(B, C, (H - 1)//4 + 1, (W - 1)//4 + 1)",
        (8, 3, 256, 256): "(B, C, 2*H, 2*W)",
    }
    report = check_comments(with_exprs(traced_script(path), exprs, {"B": 8, "C": 3, "H": 128, "W": 128}))
    by_line = {c.line: c for c in report.checks}
    down2 = by_line[line_of(path, "x2 = down2(x)")]
    assert down2.status is Status.AT_SIZES
    assert down2.ran == "(B, C, (H - 1)//2 + 1, (W - 1)//2 + 1)"
    assert by_line[line_of(path, "u = up(x)")].status is Status.FRESH  # H*2 == 2*H
    # inside UpsampleConv.forward, H is x.shape[2], whose expression is H: fresh as an expression
    assert by_line[line_of(path, "x = self.up(x)")].status is Status.FRESH
    assert report.exit_code == 0 and not report.stale


def test_a_forward_called_on_a_smaller_tensor_reads_its_own_sizes(cli, example_copy):
    # SameConv's `B, C, H, W = x.shape` is 64 x 64 here while conv_rules() binds H = W = 128
    path = example_copy("conv_rules")
    replace_once(path, "    y = same(x)                            # (B, C, H, W)",
                 "    y = same(x[..., ::2, ::2])             # (B, C, H//2, W//2)")  # fmt: skip
    code, out, _ = cli("--check", path)
    assert code == 0, out
    report = check_comments(concrete(traced_script(path)))
    by_line = {c.line: c for c in report.checks}
    assert by_line[line_of(path, "return self.conv(x)  # (B, C, H, W)")].status is Status.FRESH
    assert by_line[line_of(path, "y = same(x[..., ::2, ::2])")].status is Status.FRESH
