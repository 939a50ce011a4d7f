"""The shape-comment grammar: what is an owned comment, and what it means in sympy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sympy

from shapetrace.comments.grammar import NotAShape, parse_comment, parse_shape, symbol

B, C, D, H, W, N, P = (symbol(name) for name in "BCDHWNP")


def test_the_seed_comments_parse_to_their_expressions():
    assert parse_shape("(B, C, H*W)") == (B, C, H * W)
    assert parse_shape("(B, H*W, C)") == (B, H * W, C)
    assert parse_shape("(B, (H//32)*(W//32) + 1, D)") == (B, sympy.floor(H / 32) * sympy.floor(W / 32) + 1, D)
    assert parse_shape("(1, P + 1, D)") == (1, P + 1, D)
    assert parse_shape("(B, 12, ((H - 4)//2 - 4)//2, 5)")[2].subs(H, 28) == 4
    assert parse_shape("(8, 6, 10)") == (8, 6, 10)


def test_slash_is_floor_division_as_the_seeds_use_it():
    ps = symbol("ps")
    assert parse_shape("(B, D, H/ps, W/ps)")[2] == sympy.floor(H / ps)
    assert parse_shape("(B, H/32)")[1].subs(H, 100) == 3


def test_one_dim_needs_its_comma_and_empty_is_a_scalar():
    assert parse_shape("(B,)") == (B,)
    assert parse_shape("()") == ()
    for not_a_shape in (
        "(B)",
        "(optional)",
        "(B, *, D)",
        "(B, ..., D)",
        "(B, 1.5)",
        "(B, f(x))",
        "(B, H//0)",
    ):
        with pytest.raises(NotAShape):
            parse_shape(not_a_shape)
    assert parse_shape("(B, max(H, W))")[1] == sympy.Max(H, W)


def test_owned_comment_with_seed_prose():
    comment = parse_comment("# (B, D, H/ps, W/ps), where ps = patch_size")
    assert comment.shape_text == "(B, D, H/ps, W/ps)"
    assert comment.rest == ", where ps = patch_size"
    assert parse_comment("# (1, 1, D), where D = embed_dim").rest == ", where D = embed_dim"
    assert parse_comment("# (B, N, D) -- the tokens").rest == " -- the tokens"
    assert parse_comment("#(B, N, D)").shape_text == "(B, N, D)"


def test_prose_that_is_not_owned():
    # an equation, a transformation, a parenthesised word, a shape inside a sentence
    for comment in (
        "# (B, P+1, D) + (1, P+1, D) = (B, P+1, D)",
        "# (B, C, H, W) -> (B, N, D)",
        "# (x, y) coordinates",
        "# (optional) cache",
        "# see (B, N, D)",
        "# TODO: fix",
        "# (B, N, D) x (D, E)",
    ):
        assert parse_comment(comment) is None, comment


def test_several_tensors_and_several_runs():
    three = parse_comment("# (B, N, D) x3")
    assert three.alternatives == (((B, N, D),) * 3,)
    pair = parse_comment("# (B, N, D), (B, N)")
    assert pair.alternatives == (((B, N, D), (B, N)),)
    runs = parse_comment("# (B, 8, 8) | (B, 16, 16)")
    assert runs.alternatives == (((B, 8, 8),), ((B, 16, 16),))
    assert not runs.more_runs
    cut = parse_comment("# (1,) | (2,) | (3,) | (4,) | ...")
    assert cut.more_runs and len(cut.alternatives) == 4
    many = parse_comment("# (B, N), (B,), ...")
    assert many.more_tensors == (True,)


def test_a_comment_asking_for_an_astronomic_number_is_prose_and_never_evaluated():
    # each of these would hang, exhaust memory or crash if handed to sympy or expanded
    for comment in (
        "# (B, 2**2**2**2**2)",  # 2**65536: ValueError from int conversion before the bound
        "# (B, N**N)",  # a name as exponent: unbounded at the sizes --check substitutes
        "# (B, (H**64)**64)",  # H**4096: far past any size
        "# (B, " + "9" * 2000 + ")",  # an integer of 2000 digits
        "# (2, " + "1+" * 100_000 + "1)",  # deeper than Python's parser recurses
        "# (2, 3) x99999999",  # a hundred million tensors
    ):
        assert parse_comment(comment) is None, comment[:40]
    with pytest.raises(NotAShape):
        parse_shape("(B, 2**2**2**2**2)")


def test_powers_and_counts_within_the_bound_still_parse():
    assert parse_shape("(B, H**2, 2**10, (H*W)**2)") == (B, H**2, 1024, (H * W) ** 2)
    assert parse_shape("(B, " + "9" * 19 + ")")[1] == 10**19 - 1
    assert len(parse_comment("# (B, N) x1000").alternatives[0]) == 1000


def test_shape_comment_modes_finish_on_a_comment_asking_for_9_to_the_9_to_the_9(tmp_path):
    script = tmp_path / "script.py"
    source = "import torch\n\nx = torch.rand(2, 3)  # (2, 9**9**9)\ny = x.t()\n"
    script.write_text(source)
    run_modes = (
        "import sys\nfrom shapetrace.cli.main import main\n"
        "print([main([mode, sys.argv[1]]) for mode in ('--check', '--annotate', '--write')])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", run_modes, str(script)], capture_output=True, text=True, timeout=120,
        cwd=tmp_path, env={**os.environ, "COLUMNS": "160"},
    )  # fmt: skip  (a hang is a timeout here, not a stuck suite)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[0, 0, 0]"
    assert "x = torch.rand(2, 3)  # (2, 3)  # (2, 9**9**9)" in done.stdout  # --annotate: the user's note kept
    assert script.read_text() == source.replace("y = x.t()\n", "y = x.t()  # (3, 2)\n")
