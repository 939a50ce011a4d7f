"""``assert_shape_comments``: a script's ``# (B, C, H*W)`` comments kept honest by a test."""

from __future__ import annotations

import re
import shutil

import pytest
import torch
from plugin_support import write_tests

from shapetrace.testing import ShapeMismatch, assert_shape_comments


@pytest.mark.parametrize("name", ["tokenize_image", "patch_embed"])
def test_the_seed_examples_comments_are_true(examples, name, capsys):
    assert_shape_comments(examples.path(name))


@pytest.fixture
def stale_script(examples, tmp_path):
    """tokenize_image.py with the flatten line's comment made wrong."""
    script = tmp_path / "tokenize.py"
    shutil.copy(examples.path("tokenize_image"), script)
    text = script.read_text()
    old = "h = image.flatten(2)                           # (B, C, H*W)"
    assert text.count(old) == 1
    script.write_text(text.replace(old, "h = image.flatten(2)                           # (B, H*W, C)"))
    return script


def test_a_stale_comment_fails_with_what_it_says_and_what_ran(stale_script, capsys, monkeypatch):
    monkeypatch.chdir(stale_script.parent)
    with pytest.raises(ShapeMismatch) as failure:
        assert_shape_comments("tokenize.py")
    assert str(failure.value) == (
        "tokenize.py: 1 stale shape comment:\n"
        "  tokenize.py:18: comment says (B, H*W, C), ran (B, C, H*W)\n"
        "shapetrace --check: 4 shape comments in 1 file: 3 fresh, 1 stale"
    )


def test_a_script_that_cannot_run_to_the_end_is_a_failure(tmp_path, capsys):
    raises = tmp_path / "raises.py"
    raises.write_text("import torch\nx = torch.rand(2, 3)  # (2, 3)\ny = x @ x  # (2, 2)\n")
    with pytest.raises(RuntimeError) as untraced:  # torch's wording, which changes between releases
        torch.rand(2, 3) @ torch.rand(2, 3)
    with pytest.raises(ShapeMismatch, match=r"raises.py raised, so its shape comments were not checked:\n"
                                            rf"(.|\n)*RuntimeError: {re.escape(str(untraced.value))}"):  # fmt: skip
        assert_shape_comments(raises)
    exits = tmp_path / "exits.py"
    exits.write_text("import sys, torch\nx = torch.rand(2, 3)  # (2, 3)\nsys.exit(3)\n")
    with pytest.raises(ShapeMismatch, match=r"exits.py exited with code 3; its shape comments were not checked"):
        assert_shape_comments(exits)
    with pytest.raises(ShapeMismatch, match=r"missing.py: no such file"):
        assert_shape_comments(tmp_path / "missing.py")


def test_a_script_with_no_comment_to_check_is_a_failure(tmp_path):
    script = tmp_path / "bare.py"
    script.write_text("import torch\nx = torch.rand(2, 3)\n")
    with pytest.raises(ShapeMismatch, match=r"no shape comment of .*bare.py could be checked against what ran"):
        assert_shape_comments(script)


def test_strict_also_fails_comments_that_could_not_be_checked(tmp_path):
    script = tmp_path / "unknown.py"
    script.write_text("import torch\nx = torch.rand(2, 3)  # (2, 3)\ny = x.sum(0)  # (K,)\n")
    assert_shape_comments(script)
    with pytest.raises(ShapeMismatch, match=r"1 shape comment stale or not checked:\n.*unknown.py:3: unchecked"):
        assert_shape_comments(script, strict=True)


def test_in_a_test_suite(pytester, examples):
    shutil.copy(examples.path("tokenize_image"), pytester.path / "tokenize_image.py")
    write_tests(pytester, """
        from shapetrace.testing import assert_shape_comments

        def test_shape_comments():
            assert_shape_comments("tokenize_image.py")
    """)
    pytester.runpytest().assert_outcomes(passed=1)
    script = pytester.path / "tokenize_image.py"
    script.write_text(script.read_text().replace("# (B, H*W, C)", "# (B, C, H*W)"))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "E *shapetrace.testing.ShapeMismatch: tokenize_image.py: 1 stale shape comment:",
        "E *  tokenize_image.py:19: comment says (B, C, H*W), ran (B, H*W, C)",
    ])  # fmt: skip
