"""Every terminal width: the shape column is never cut, the code column gives way first, then the
module, then the line; into a pipe the terminal's width is kept, with no terminal 160 columns."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path

import pytest
import torch
from rich.console import Console
from rich.segment import Segment
from views_support import BENCH_MODELS, load_example, render, small_gpt

import shapetrace
from shapetrace.render.cells import plain
from shapetrace.render.console import NO_TERMINAL_WIDTH
from shapetrace.render.grid import fitted

WIDTHS = sorted({*range(60, 221, 10), 118, 119, 120, 121, 122})
SHAPE_HEADERS = ("output shape", "Output Shape")
SOURCE = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def patch_embed():
    """The seed PatchEmbedding traced with dims: long symbolic shapes, ``(B, H*W/1024 + 1, D)``."""
    model = load_example("patch_embed").PatchEmbedding(img_size=128)
    with shapetrace.trace(model, dims="B C H W", D=512) as t:
        model(torch.rand(8, 3, 128, 128))
    return t


@pytest.fixture(scope="module")
def failing():
    """A trace whose last op failed, with several outputs on one row (``chunk``)."""
    x, w = torch.rand(2, 16, 48), torch.rand(7, 5)
    with pytest.raises(RuntimeError), shapetrace.trace(symbolic=False) as t:
        q, k, v = x.chunk(3, dim=-1)
        (q @ k.transpose(1, 2)).softmax(-1) @ w
    return t


class Windows(torch.nn.Module):
    """Swin's windows of a padded image: shapes whose pieces are wider than a narrow column,
    ``(B*((H + (4 - H % 4) % 4)//4)*((W + (4 - W % 4) % 4)//4), 16, C)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        x = torch.nn.functional.pad(x, (0, 0, 0, (4 - W % 4) % 4, 0, (4 - H % 4) % 4))
        Hp, Wp = x.shape[1], x.shape[2]
        return x.view(B, Hp // 4, 4, Wp // 4, 4, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, 16, C)


@pytest.fixture(scope="module")
def windows():
    model = Windows()
    with shapetrace.trace(model, dims="B H W C") as t:
        model(torch.rand(2, 18, 13, 8))
    return t


def shape_cells(text: str) -> tuple[str, list[str]]:
    """The shape header and each row's shape cell as printed, continuation lines joined."""
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if any(h in line for h in SHAPE_HEADERS))
    header = lines[head]
    start = max(header.find(h) for h in SHAPE_HEADERS)
    assert lines[head + 1].strip().startswith("─")
    cells: list[str] = []
    for line in lines[head + 2 :]:
        if not line.strip():
            break
        shape = re.split(r"\s{2,}", line[start:].strip())[0]  # a shape has no two blanks in a row
        if line[:start].strip() or not cells:
            cells.append(shape)
        else:
            cells[-1] += " " + shape
    return re.split(r"\s{2,}", header[start:].strip())[0], cells


def squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("kind", ["table", "tree", "summary"])
def test_every_width_keeps_every_shape_whole(kind, patch_embed, failing, gpt12, windows):
    for t in (patch_embed, failing, gpt12[1], windows):
        view = t.view(kind)
        shape_column = next(i for i, c in enumerate(view.columns) if c.header in SHAPE_HEADERS)
        expected = [squeezed(plain(row.cells[shape_column])) for row in view.rows]
        for width in WIDTHS:
            text = render(view, width=width)
            assert max(len(line) for line in text.splitlines()) <= width, (kind, width)
            header, shapes = shape_cells(text)
            assert header in SHAPE_HEADERS, (kind, width, header)
            assert [squeezed(s) for s in shapes] == expected, (kind, width)
    assert "(B, H*W/1024 + 1, D)" in render(patch_embed.table(), width=60).replace("\n", "")


def test_at_120_columns_nothing_in_the_shape_column_is_clipped(gpt12):
    text = render(gpt12[1].table(), width=120)
    assert "output shape" in text and "output shap " not in text
    chunk = next(line for line in text.splitlines() if " chunk " in line)
    assert chunk.rstrip().endswith("(2, 16, 16), (2, 16, 16), (2, 16, 16)")


def test_code_gives_way_first_then_module_then_line():
    model = small_gpt(depth=12)
    with torch.no_grad(), shapetrace.trace(model, symbolic=False) as t:
        model(torch.randint(0, 50, (2, 16)))  # ops in two files: the line column says which
    view = t.table()
    rows = view.rows
    natural, _ = view.widths(rows)
    line, code, module = (next(i for i, c in enumerate(view.columns) if c.header == h) for h in ("line", "code", "module"))
    floors = {i: view.columns[i].floor for i in (line, code, module)}
    seen_cut = []
    tried = range(sum(natural) + 19, 59, -1)
    for width in tried:
        widths = fitted(view.columns, natural, width, rows).widths
        cut = {i for i in (line, code, module) if widths[i] < natural[i]}
        if module in cut:
            assert widths[code] <= floors[code], width  # the code went to its floor before the module gave way
        if line in cut:
            assert widths[module] <= floors[module] and widths[code] <= floors[code], width
        if widths[module] < floors[module]:  # below the floors: code first again
            assert widths[code] == 0, width
        seen_cut.append(cut)
    assert {code} in seen_cut and {code, module} in seen_cut and {code, module, line} in seen_cut
    narrowest = min(w for w, cut in zip(tried, seen_cut) if cut == {code})
    text = render(view, width=narrowest)
    assert "x = x + self.attn(self.norm1(x))" not in text and "blocks.11.attn.qkv" in text
    assert "…" in text and "test_widths.py:" in text


def test_a_failed_row_sets_its_own_colours():
    """Dark text on a dark background was unreadable on a light terminal: the row sets both."""
    x, w = torch.rand(2, 3), torch.rand(4, 5)
    with pytest.raises(RuntimeError), shapetrace.trace(symbolic=False) as t:
        x @ w
    console = Console(width=120, color_system="truecolor", force_terminal=True)
    lines = list(Segment.split_lines(console.render(t.table())))
    row = next(line for line in lines if any("✗ raised" in segment.text for segment in line))
    assert {(s.style.color.name, s.style.bgcolor.name) for s in row if s.text.strip()} == {("bright_white", "red3")}


# --- printing into pipes and terminals --------------------------------------------------------------

SCRIPT = textwrap.dedent(
    f"""\
    import sys
    sys.path.insert(0, {str(BENCH_MODELS.parent)!r})
    import torch, shapetrace
    from models import SmallGPT
    torch.manual_seed(0)
    model = SmallGPT(vocab=50, ctx=16, dim=16, depth=2, heads=2).eval()
    with torch.no_grad(), shapetrace.trace(model, symbolic=False) as t:
        model(torch.randint(0, 50, (2, 16)))
    t.print()
    """
)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "JUPYTER_COLUMNS")}
    env["PYTHONPATH"] = str(SOURCE)
    env["TERM"] = "xterm-256color"
    return env


def terminal(columns: int) -> tuple[int, int]:
    """A pseudo-terminal ``columns`` wide: (master, slave)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    return master, slave


def read_all(master: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the slave side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def table_lines(text: str) -> list[str]:
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("widths") / "gpt_print.py"
    path.write_text(SCRIPT)
    return path


@pytest.fixture(scope="module")
def natural(script) -> int:
    """How wide the script's table is laid out when nothing narrows it (wider than 160 columns)."""
    result = subprocess.run(
        [sys.executable, str(script)], stdin=subprocess.DEVNULL, capture_output=True,
        env={**child_env(), "COLUMNS": "400"}, timeout=300, check=True, text=True,
    )  # fmt: skip
    width = len(next(line for line in table_lines(result.stdout) if line.strip().startswith("─")))
    assert width > NO_TERMINAL_WIDTH
    return width


@pytest.mark.parametrize("columns", [60, 100, 220])
def test_into_a_pipe_from_a_terminal_the_terminal_width_is_kept(script, natural, columns):
    """``python script.py | less`` in a terminal: stdout is a pipe, stdin and stderr the terminal."""
    master, slave = terminal(columns)
    try:
        result = subprocess.run(
            [sys.executable, str(script)], stdin=slave, stdout=subprocess.PIPE, stderr=slave,
            env=child_env(), timeout=300, check=True, text=True,
        )  # fmt: skip
    finally:
        os.close(slave)
        os.close(master)
    lines = table_lines(result.stdout)
    assert "\x1b[" not in result.stdout  # a pipe gets no colours
    rule = next(line for line in lines if line.strip().startswith("─"))
    assert len(rule) == min(columns, natural)  # the grid takes the terminal's width
    assert max(len(line) for line in lines) <= columns
    chunk = next(i for i, line in enumerate(lines) if " chunk " in line)
    assert "(2,16,16),(2,16,16),(2,16,16)" in squeezed(" ".join(lines[chunk : chunk + 3]))  # wrapped or not


def test_into_a_pipe_with_no_terminal_160_columns(script, natural):
    result = subprocess.run(
        [sys.executable, str(script)], stdin=subprocess.DEVNULL, capture_output=True, env=child_env(),
        timeout=300, check=True, text=True,
    )  # fmt: skip
    lines = table_lines(result.stdout)
    rule = next(line for line in lines if line.strip().startswith("─"))
    assert len(rule) == NO_TERMINAL_WIDTH < natural and max(map(len, lines)) <= NO_TERMINAL_WIDTH
    narrow = subprocess.run(
        [sys.executable, str(script)], stdin=subprocess.DEVNULL, capture_output=True,
        env={**child_env(), "COLUMNS": "70"}, timeout=300, check=True, text=True,
    )  # fmt: skip
    assert max(map(len, table_lines(narrow.stdout))) <= 70


@pytest.mark.parametrize("columns", [60, 120, 220])
def test_in_a_terminal(script, natural, columns):
    """stdout is the terminal itself: colours, and the terminal's width."""
    master, slave = terminal(columns)
    process = subprocess.Popen(
        [sys.executable, str(script)], stdin=slave, stdout=slave, stderr=slave, env=child_env()
    )
    os.close(slave)
    output = read_all(master)
    os.close(master)
    assert process.wait(timeout=300) == 0
    assert "\x1b[" in output  # a terminal gets colours
    lines = table_lines(output)
    rule = next(line for line in lines if line.strip().startswith("─"))
    assert len(rule) == min(columns, natural)
    assert max(len(line) for line in lines) <= columns
    assert any("output shape" in line for line in lines)
