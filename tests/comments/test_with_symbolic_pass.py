"""End to end with torch's symbolic shapes: the seed comments come back as the seeds wrote them.

These need the symbolic pass (shapetrace.symbolic.engine); the rules themselves are tested
without it in the other files (``with_exprs`` gives a trace the expressions the pass would)."""

from __future__ import annotations

import pytest
from comments_support import EXAMPLE_NAMES, EXAMPLES, line_of, replace_once, traced_script

import shapetrace.symbolic.engine  # noqa: F401  (the pass these tests need: an ImportError fails, never skips)
from shapetrace.comments import Status, check_comments


def test_annotate_prints_the_seed_comments(cli):
    code, out, _ = cli("--annotate", EXAMPLES / "tokenize_image.py")
    assert code == 0
    for line in (
        "    image = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)",
        "    h = image.flatten(2)                           # (B, C, H*W)",
        "    image_toks = h.transpose(1, 2)                 # (B, H*W, C)",
        "    channel_gram = h @ image_toks                  # (B, C, C)",
    ):
        assert line in out.splitlines()


def test_patch_embedding_lines_in_symbols(cli):
    code, out, _ = cli("--annotate", EXAMPLES / "patch_embed.py")
    lines = {
        line.split("  # ")[0].strip(): line.split("  # ")[1] for line in out.splitlines() if "  # (" in line
    }
    # 128 is divisible by 32: written as the seeds write it
    assert "H/32, W/32)" in lines["x = self.patch_embed(x)"]
    assert lines["x = x.flatten(2).transpose(1, 2)"].startswith("(B, H*W/1024, ")
    assert lines["x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)"].startswith("(B, H*W/1024 + 1, ")
    assert lines["x = x + self.pos_embed"].startswith("(B, H*W/1024 + 1, ")


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_examples_check_with_symbolic_shapes(name):
    report = check_comments(traced_script(EXAMPLES / f"{name}.py"))
    assert report.symbolic or name == "broadcasting"  # broadcasting names no dim: nothing is symbolic
    assert not report.stale, [c.message() for c in report.stale]


def test_seed_examples_are_fresh_as_expressions():
    for name in ("tokenize_image", "mlp"):  # the MLP keeps (B, P, D): D is fixed to 512 by torch
        report = check_comments(traced_script(EXAMPLES / f"{name}.py"))
        assert {c.status for c in report.checks} == {Status.FRESH}, name


def test_planted_stale_comment_with_symbolic_shapes(cli, example_copy):
    path = example_copy("tokenize_image")
    replace_once(path, "# (B, C, H*W)", "# (B, H*W, C)")
    code, out, _ = cli("--check", path)
    assert code == 1
    line = line_of(path, "h = image.flatten(2)")
    assert f"tokenize_image.py:{line}: comment says (B, H*W, C), ran (B, C, H*W)" in out.splitlines()


def test_write_restores_the_seed_comments(cli, example_copy):
    path = example_copy("tokenize_image")
    original = path.read_text()
    for comment in ("  # (B, C, H, W)", "  # (B, C, H*W)", "  # (B, H*W, C)", "  # (B, C, C)"):
        replace_once(path, comment, "")
    cli("--write", path)
    assert path.read_text() == original
    code, out, _ = cli("--write", path)
    assert out.splitlines()[-1] == "shapetrace --write: no changes"
