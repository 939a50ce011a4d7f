"""``t.annotate()`` and ``--annotate``: which value is a line's output, and how several tensors
and several runs of a line are written."""

from __future__ import annotations

from comments_support import EXAMPLES, line_of, traced_script, with_exprs
from rich.console import Console

from shapetrace.comments.files import runs_by_line
from shapetrace.comments.grammar import parse_comment

MODEL = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.norm = nn.Sequential(nn.LayerNorm(16), nn.GELU())

    def forward(self, x):
        h = self.norm(self.fc(x))
        return h, h.mean(-1)


def run():
    x = torch.rand(2, 4, 48)
    q, k, v = x.chunk(3, -1)
    y = torch.cat([q.expand(2, 4, 16), k], dim=1)  # the user's own note
    img = torch.rand(1, 3, 4, 4)
    for size in (8, 16):
        z = F.interpolate(img, size=size)
    block = Block()
    a, m = block(q)
    b, _ = block(torch.rand(3, 16))
    s = x.sum()
    print(f"sum {s.item():.1f}")
    mean, spread = x.mean(-1), x.amax(-1, keepdim=True)
    return y, z, a, b, mean, spread
"""


def comments(t, path) -> dict[int, str]:
    """line number -> the shape comment ``t.annotate()`` gives it."""
    text = str(t.annotate()).splitlines()
    found = {}
    for number, line in enumerate(text, 1):
        if "  # " in line:
            found[number] = line[line.index("  # ") + 2 :].strip()
    return found


def test_each_line_gets_its_output(traced):
    t, path = traced(MODEL)
    shapes = comments(t, path)
    at = lambda needle: shapes.get(line_of(path, needle))  # noqa: E731
    assert at("x = torch.rand(2, 4, 48)") == "# (2, 4, 48)"
    assert at("q, k, v = x.chunk") == "# (2, 4, 16) x3"  # several tensors of one shape
    # the last op of the line (the expand feeds the cat); the user's own comment is kept after it
    assert at("y = torch.cat") == "# (2, 8, 16)  # the user's own note"
    assert at("z = F.interpolate") == "# (1, 3, 8, 8) | (1, 3, 16, 16)"  # a loop: one alternative per shape
    assert at("a, m = block(q)") == "# (2, 4, 16), (2, 4)"  # a module call: its outputs
    assert at("b, _ = block(torch.rand(3, 16))") == "# (3, 16), (3,)"
    # inside the module, one alternative per call with a different shape; the inner modules
    # (Linear, Sequential of LayerNorm and GELU) are the line's steps
    assert at("h = self.norm(self.fc(x))") == "# (2, 4, 16) | (3, 16)"
    assert at("return h, h.mean(-1)") == "# (2, 4, 16), (2, 4) | (3, 16), (3,)"
    assert at("s = x.sum()") == "# ()"
    assert at("mean, spread = ") == "# (2, 4), (2, 4, 1)"
    assert at('print(f"sum') is None  # no tensor left the line
    assert at("block = Block()") is None  # building a module runs no op of the user's


def test_comments_are_aligned_per_function_and_parse_back(traced):
    t, path = traced(MODEL)
    lines = str(t.annotate()).splitlines()
    run_lines = [line for line in lines[line_of(path, "def run") :] if "  # (" in line]
    columns = {line.index("# (") for line in run_lines}
    assert len(columns) == 1  # one column for the whole function ...
    longest = max(len(line[: line.index("# (")].rstrip()) for line in run_lines)
    assert columns.pop() == longest + 2  # ... two spaces after its longest commented line
    for line in lines:
        if "  # (" in line:
            assert parse_comment(line[line.index("# (") :]) is not None, line  # renderings are owned comments


def test_untouched_lines_and_rich_rendering(traced):
    t, path = traced(MODEL)
    annotation = t.annotate()
    text = str(annotation)
    source = path.read_text().splitlines()
    assert len(text.splitlines()) == len(source)
    assert text.splitlines()[:6] == source[:6]  # imports and blank lines as they are
    console = Console(record=True, width=200, color_system=None)
    console.print(annotation)
    rendered = console.export_text()
    assert "model.py" in rendered.splitlines()[0]  # a rule with the file's path
    assert "q, k, v = x.chunk(3, -1)" in rendered and "# (2, 4, 16) x3" in rendered


def test_a_failed_line_is_marked(traced):
    t, path = traced(
        """\
        import torch

        def run():
            x = torch.rand(2, 3)
            try:
                x @ torch.rand(4, 5)
            except RuntimeError:
                pass
        """
    )
    text = str(t.annotate()).splitlines()
    assert text[line_of(path, "x @ torch.rand") - 1].endswith("# raised")


def test_cli_annotate_prints_the_users_files_only(cli, tmp_path):
    (tmp_path / "twice_layer.py").write_text(
        "import torch.nn as nn\n\n\nclass Twice(nn.Module):\n    def forward(self, x):\n        return x * 2\n"
    )
    script = tmp_path / "main.py"
    script.write_text(
        "import torch\nfrom twice_layer import Twice\n\nx = torch.rand(2, 3)\ny = Twice()(x)\nz = torch.nn.Linear(3, 4)(y)\n"
    )
    code, out, _ = cli("--annotate", script)
    assert code == 0
    assert out.index("main.py") < out.index("twice_layer.py")  # the script first, then the files it ran
    assert "x = torch.rand(2, 3)          # (2, 3)\n" in out  # one column for the module level
    assert "y = Twice()(x)                # (2, 3)\n" in out
    assert "z = torch.nn.Linear(3, 4)(y)  # (2, 4)\n" in out
    assert "return x * 2  # (2, 3)" in out  # the imported user module is annotated too
    assert "site-packages" not in out and "torch/nn" not in out
    assert "ops," not in out  # the annotated source replaces the table


def test_symbolic_expressions_are_printed_as_the_seed_writes_them(example_copy):
    path = example_copy("tokenize_image")
    t = with_exprs(
        traced_script(path),
        {(8, 512, 4, 4): "(B, C, H, W)", (8, 512, 16): "(B, C, H*W)", (8, 16, 512): "(B, H*W, C)",
         (8, 512, 512): "(B, C, C)"},
        {"B": 8, "C": 512, "H": 4, "W": 4},
    )  # fmt: skip
    from shapetrace.comments import annotate

    assert str(annotate(t)) == (EXAMPLES / "tokenize_image.py").read_text()  # the seed's exact lines


HELPERS = """\
import torch
import torch.nn as nn


def double_then_flatten(t):
    t = t * 2
    return t.flatten(1)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def split_heads(self, t):
        B, N, D = t.shape
        return t.view(B, N, 2, D // 2).transpose(1, 2)

    def forward(self, x):
        qkv = self.qkv(x)
        q = self.split_heads(qkv[..., :8])
        k = self.split_heads(qkv[..., 8:16])
        return q @ k.transpose(-2, -1)


def run():
    x = torch.rand(3, 5, 8)
    y = double_then_flatten(x + 1) + 1
    return Attention()(x), y
"""


def test_a_line_that_calls_a_helper_describes_what_the_helper_returned(traced):
    t, path = traced(HELPERS)
    shapes = comments(t, path)
    at = lambda needle: shapes.get(line_of(path, needle))  # noqa: E731
    # the slice feeds split_heads, whose result is the line's value, not the slice's (3, 5, 8)
    assert at("q = self.split_heads(") == "# (3, 2, 5, 4)"
    assert at("k = self.split_heads(") == "# (3, 2, 5, 4)"
    # inside the helper, its own ops; the caller's later ops (q @ k) are not the helper's
    assert at("return t.view(B, N, 2, D // 2)") == "# (3, 2, 5, 4)"
    # own op, helper ops, own op again: one run, one tensor
    assert at("y = double_then_flatten(x + 1) + 1") == "# (3, 40)"
    assert at("return t.flatten(1)") == "# (3, 40)"
    assert at("return q @ k.transpose(-2, -1)") == "# (3, 2, 5, 5)"
    runs = runs_by_line(t)[(str(path), line_of(path, "q = self.split_heads("))]  # the same, as data
    assert [[tuple(m.shape) for m in run.outputs] for run in runs] == [[(3, 2, 5, 4)]]
