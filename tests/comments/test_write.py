"""``--write``: inserts and updates only the comments it owns, keeps every other byte, aligns like
the seeds, writes atomically, and a second run changes nothing."""

from __future__ import annotations

import os
import re

import pytest
import torch
from comments_support import BUDGET, EXAMPLE_NAMES, EXAMPLES, line_of, replace_once, traced_script, with_exprs

from shapetrace.comments import WriteRefused, write_comments

SHAPE_COMMENT = re.compile(r" +# \([^)]*(\([^)]*\)[^)]*)*\)$", re.MULTILINE)


def strip_shape_comments(text: str) -> str:
    """``text`` without its trailing ``# (...)`` comments (and the spaces before them)."""
    return SHAPE_COMMENT.sub("", text)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_write_is_idempotent_on_every_example(cli, example_copy, name):
    path = example_copy(name)
    path.write_text(strip_shape_comments(path.read_text()))
    stripped = path.read_bytes()
    code, out, _ = cli("--symbolic-budget", BUDGET, "--write", path)
    assert code == 0
    assert out.strip().splitlines()[-1].startswith("shapetrace --write: ")
    first = path.read_bytes()
    assert first != stripped
    assert len(first.splitlines()) == len(stripped.splitlines())  # lines edited, none added
    code, out, _ = cli("--symbolic-budget", BUDGET, "--check", path)  # what --write wrote is fresh
    summary = out.strip().splitlines()[-1]
    assert code == 0 and re.fullmatch(r"shapetrace --check: (\d+) shape comments in 1 file: \1 fresh, 0 stale( \(.*\))?", summary), out
    code, out, _ = cli("--write", path)
    assert code == 0 and out.strip().splitlines()[-1] == "shapetrace --write: no changes"
    assert path.read_bytes() == first  # nothing stale left, nothing missing


def test_examples_as_they_are_need_no_change(cli, example_copy):
    for name in EXAMPLE_NAMES:
        path = example_copy(name)
        before = path.read_bytes()
        code, out, _ = cli("--write", path)
        assert code == 0 and out.strip().splitlines()[-1] == "shapetrace --write: no changes", (name, out)
        assert path.read_bytes() == before


MESSY = (
    "# -*- coding: latin-1 -*-\r\n"
    "import torch   \r\n"
    "\r\n"
    "\r\n"
    "def run():\r\n"
    "    # caf\xe9: a comment on its own line\r\n"
    "    x = torch.rand(2, 3)\t\r\n"
    "    y = x.t()  # the user's note, kept\r\n"
    "    z = y * 2                   # (9, 9), where 9 = a stale guess\r\n"
    '    s = """a string\r\n'
    '    # (1, 2) inside the string"""\r\n'
    "    w = (z +\r\n"
    "         1)\r\n"
    "    return w\r\n"
    "\r\n"
    "\r\n"
    "run()  \r\n"
)


def test_write_keeps_every_other_byte(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "messy.py"
    path.write_bytes(MESSY.encode("latin-1"))
    code, out, _ = cli("--write", path)
    assert code == 0
    assert out.splitlines() == [
        "messy.py:7: added # (2, 3)",
        "messy.py:9: updated # (9, 9) -> # (3, 2)",
        "messy.py:12: added # (3, 2)",
        "shapetrace --write: 3 lines changed in 1 file",
    ]
    expected = (
        MESSY.replace("    x = torch.rand(2, 3)\t\r\n", "    x = torch.rand(2, 3)        # (2, 3)\r\n")
        .replace("# (9, 9), where 9 = a stale guess", "# (3, 2), where 9 = a stale guess")
        .replace("    w = (z +\r\n", "    w = (z +                    # (3, 2)\r\n")
    )
    assert path.read_bytes() == expected.encode("latin-1")  # CRLF, latin-1, blank lines, other comments
    code, out, _ = cli("--write", path)
    assert out.splitlines()[-1] == "shapetrace --write: no changes"
    assert path.read_bytes() == expected.encode("latin-1")
    assert sorted(os.listdir(tmp_path)) == ["messy.py"]  # no temporary file left behind


def test_new_comments_join_an_aligned_block(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "block.py"
    path.write_text(
        "import torch\n\n\ndef run():\n"
        "    x = torch.rand(2, 3)  # (2, 3)\n"
        "    y = x.t()             # (3, 2)\n"
        "    short = y + 1\n"
        "    a_much_longer_line = torch.cat([x, x], dim=0)\n"
        "    return short, a_much_longer_line\n\n\nrun()\n"
    )
    cli("--write", path)
    lines = path.read_text().splitlines()
    body = [line for line in lines if "  # (" in line]
    assert body == [
        "    x = torch.rand(2, 3)                           # (2, 3)",
        "    y = x.t()                                      # (3, 2)",
        "    short = y + 1                                  # (3, 2)",
        "    a_much_longer_line = torch.cat([x, x], dim=0)  # (4, 3)",
    ]  # the block moved to two spaces after its longest line, as the seeds align


def test_a_block_keeps_its_own_column_when_new_lines_fit(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "block.py"
    path.write_text("import torch\n\nx = torch.rand(2, 3)     # (2, 3)\ny = x.t()\n")
    cli("--write", path)
    assert (
        path.read_text()
        == "import torch\n\nx = torch.rand(2, 3)     # (2, 3)\ny = x.t()                # (3, 2)\n"
    )


def test_only_changed_files_are_written_and_the_report_names_them(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "doubling.py").write_text("def double(x):\n    return x * 2  # (2, 3)\n")
    script = tmp_path / "main.py"
    script.write_text("import torch\nfrom doubling import double\n\ny = double(torch.rand(2, 3))\n")
    before = os.stat(tmp_path / "doubling.py")
    code, out, _ = cli("--write", script)
    assert code == 0
    assert out.splitlines() == ["main.py:4: added # (2, 3)", "shapetrace --write: 1 line changed in 1 file"]
    after = os.stat(tmp_path / "doubling.py")
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_nothing_is_written_when_the_script_raises(cli, tmp_path):
    path = tmp_path / "broken.py"
    source = "import torch\n\nx = torch.rand(2, 3)\ny = x @ torch.rand(4, 5)\n"
    path.write_text(source)
    code, _, err = cli("--write", path)
    assert code == 1 and "shapetrace: --write skipped: the script raised" in err
    assert path.read_text() == source


def test_write_refuses_a_failed_trace(tmp_path):
    from shapetrace import trace

    with pytest.raises(RuntimeError), trace() as t:
        torch.rand(2) @ torch.rand(3)
    with pytest.raises(WriteRefused, match="the traced code raised: nothing written"):
        write_comments(t)


def test_write_with_symbolic_shapes_restores_the_seed_comments(example_copy):
    path = example_copy("tokenize_image")
    path.write_text(strip_shape_comments(path.read_text()))
    exprs = {(8, 512, 4, 4): "(B, C, H, W)", (8, 512, 16): "(B, C, H*W)", (8, 16, 512): "(B, H*W, C)",
             (8, 512, 512): "(B, C, C)"}  # fmt: skip
    dims = {"B": 8, "C": 512, "H": 4, "W": 4}
    report = write_comments(with_exprs(traced_script(path), exprs, dims))
    assert [c.kind for e in report.written for c in e.changes] == ["added"] * 4
    assert path.read_text() == (EXAMPLES / "tokenize_image.py").read_text()
    assert not write_comments(with_exprs(traced_script(path), exprs, dims)).written


def test_a_stale_symbolic_comment_is_updated_in_place(example_copy):
    path = example_copy("tokenize_image")
    replace_once(path, "# (B, H*W, C)", "# (B, C, H*W), where the tokens come last")
    exprs = {(8, 512, 4, 4): "(B, C, H, W)", (8, 512, 16): "(B, C, H*W)", (8, 16, 512): "(B, H*W, C)",
             (8, 512, 512): "(B, C, C)"}  # fmt: skip
    report = write_comments(with_exprs(traced_script(path), exprs, {"B": 8, "C": 512, "H": 4, "W": 4}))
    line = line_of(path, "image_toks = h.transpose")
    assert [c.message("t.py") for e in report.written for c in e.changes] == [
        f"t.py:{line}: updated # (B, C, H*W) -> # (B, H*W, C)"
    ]
    assert path.read_text().splitlines()[line - 1] == (
        "    image_toks = h.transpose(1, 2)                 # (B, H*W, C), where the tokens come last"
    )


def test_bom_and_lines_that_cannot_take_a_comment(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bom.py"
    source = (
        "import torch\n"
        "x = torch.rand(2, 3) + \\\n"  # a comment after a backslash would be a syntax error
        "    torch.rand(2, 3)\n"
        "y = torch.cat([x,\n"
        "               x], dim=0)\n"
        "s = f'''{x.sum()}\n"
        "'''\n"
    )
    path.write_bytes(b"\xef\xbb\xbf" + source.encode())
    code, out, _ = cli("--write", path)
    assert code == 0
    text = path.read_bytes()
    assert text.startswith(b"\xef\xbb\xbf")  # the BOM stays
    lines = text[3:].decode().splitlines()
    assert lines[1] == "x = torch.rand(2, 3) + \\"  # left alone: the + is not commented
    assert lines[2] == "    torch.rand(2, 3)  # (2, 3)"  # the continuation's own op
    assert lines[3] == "y = torch.cat([x,     # (4, 3)"  # inside brackets: allowed
    assert lines[5:] == ["s = f'''{x.sum()}", "'''"]  # inside a string: never
