"""``--write``: inserts and updates only the comments it owns, keeps every other byte, aligns like
the seeds, writes atomically, and a second run changes nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

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


SMALL = "import torch\n\nx = torch.rand(2, 3)\ny = x.t()\n"
SMALL_WRITTEN = "import torch\n\nx = torch.rand(2, 3)  # (2, 3)\ny = x.t()             # (3, 2)\n"


def test_a_read_only_file_is_never_written(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "locked.py"
    path.write_text(SMALL)
    path.chmod(0o444)
    before = os.stat(path)
    code, out, _ = cli("--write", path)
    assert code == 1
    assert "locked.py: not written: it is read-only (mode 0444): left as it was" in out.splitlines()
    after = os.stat(path)
    assert path.read_text() == SMALL
    assert (after.st_ino, after.st_mode, after.st_mtime_ns) == (before.st_ino, before.st_mode, before.st_mtime_ns)
    assert sorted(os.listdir(tmp_path)) == ["locked.py"]


def test_a_file_with_several_hard_links_stays_one_file(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.py"
    path.write_text(SMALL)
    os.link(path, tmp_path / "alias.py")
    inode = os.stat(path).st_ino
    code, out, _ = cli("--write", path)
    assert code == 0 and out.splitlines()[-1] == "shapetrace --write: 2 lines changed in 1 file"
    assert path.read_text() == SMALL_WRITTEN == (tmp_path / "alias.py").read_text()
    assert (os.stat(path).st_ino, os.stat(path).st_nlink) == (inode, 2)
    assert sorted(os.listdir(tmp_path)) == ["alias.py", "model.py"]


def test_a_symlinked_file_is_written_through_its_link(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real.py").write_text(SMALL)
    (tmp_path / "link.py").symlink_to(tmp_path / "real.py")
    assert cli("--write", tmp_path / "link.py")[0] == 0
    assert (tmp_path / "link.py").is_symlink() and (tmp_path / "real.py").read_text() == SMALL_WRITTEN


def _planned_then(monkeypatch, change):
    """Make ``write_comments`` call ``change(edit)`` between planning a file and writing it."""
    import shapetrace.comments.write as write_module

    plan = write_module.plan_file

    def plan_and_change(traced):
        edit = plan(traced)
        change(edit)
        return edit

    monkeypatch.setattr(write_module, "plan_file", plan_and_change)


def test_a_file_changed_between_read_and_write_is_not_overwritten(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.py"
    path.write_text(SMALL)
    t = traced_script(path)
    edited_meanwhile = SMALL + "z = 1  # the user's edit while shapetrace ran\n"
    _planned_then(monkeypatch, lambda edit: path.write_text(edited_meanwhile))
    report = write_comments(t)
    assert report.failed == ["model.py: not written: the file changed while shapetrace ran"]
    assert not report.written and path.read_text() == edited_meanwhile


def test_an_edit_that_would_change_the_code_is_not_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.py"
    path.write_text(SMALL)
    t = traced_script(path)

    def break_the_code(edit):
        edit.text = edit.text.replace("torch.rand(2, 3)", "torch.rand(2, 4)")

    _planned_then(monkeypatch, break_the_code)
    report = write_comments(t)
    assert report.failed == [
        "model.py: not written: the edit would change the code (a shapetrace bug): file left as it was"
    ]
    assert path.read_text() == SMALL


def test_a_write_that_fails_midway_leaves_the_file_and_no_temporary_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import shapetrace.comments.write as write_module

    path = tmp_path / "model.py"
    path.write_text(SMALL)
    t = traced_script(path)
    written = []

    def disk_full(fd):
        written.append(os.fstat(fd).st_size)  # the new text went to another file than model.py
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(write_module.os, "fsync", disk_full)
    report = write_comments(t)
    assert report.failed == ["model.py: not written: [Errno 28] No space left on device"]
    assert written == [len(SMALL_WRITTEN)] and path.read_text() == SMALL
    assert sorted(os.listdir(tmp_path)) == ["model.py"]


def test_a_failed_write_through_a_hard_link_puts_the_old_text_back(tmp_path, monkeypatch):
    import shapetrace.comments.write as write_module

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.py"
    path.write_text(SMALL)
    os.link(path, tmp_path / "alias.py")
    t = traced_script(path)

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(write_module.os, "fsync", disk_full)
    assert write_comments(t).failed == ["model.py: not written: [Errno 28] No space left on device"]
    assert path.read_text() == SMALL == (tmp_path / "alias.py").read_text()
    assert os.stat(path).st_nlink == 2


def test_ctrl_c_during_a_write_lets_it_finish_then_interrupts(tmp_path, monkeypatch):
    import shapetrace.comments.write as write_module

    path = tmp_path / "model.py"
    path.write_text(SMALL)
    t = traced_script(path)
    fsync = os.fsync

    def interrupted(fd):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C halfway through the write
        fsync(fd)

    monkeypatch.setattr(write_module.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_comments(t)
    assert path.read_text() == SMALL_WRITTEN
    assert sorted(os.listdir(tmp_path)) == ["model.py"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


KILLED_WRITE = """
import os, signal, sys
import shapetrace.comments.write as write_module
from shapetrace.cli.main import main

def killed(fd):
    os.kill(os.getpid(), signal.SIGTERM)  # SIGTERM halfway through the write, as `kill` sends it
    os.fsync(fd)

write_module.os = type("Os", (), {**vars(os), "fsync": staticmethod(killed)})
sys.exit(main(["--write", sys.argv[1]]))
"""


def test_a_write_killed_midway_leaves_the_file_whole_and_no_temporary_file(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(SMALL)
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WRITE, str(path)], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert path.read_text() == SMALL_WRITTEN  # the write finished before the signal took effect
    assert sorted(os.listdir(tmp_path)) == ["model.py"]
