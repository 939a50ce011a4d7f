"""Helpers for the view tests: the benchmark models at test size, and rows as plain text."""

from __future__ import annotations

import importlib.util
import sys
from html.parser import HTMLParser
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

import shapetrace
from shapetrace.render.cells import plain
from shapetrace.render.grid import GridView

BENCH_MODELS = Path(__file__).resolve().parents[2] / "bench" / "models.py"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def bench_models():
    """``bench/models.py`` (SmallViT, SmallGPT), imported once."""
    name = "shapetrace_bench_models"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCH_MODELS)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def load_example(name: str):
    """``examples/<name>.py`` as a module, shared with the ``examples`` fixture (tests/conftest.py)."""
    module_name = f"shapetrace_examples.{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def small_gpt(depth: int = 12):
    torch.manual_seed(0)
    return bench_models().SmallGPT(vocab=50, ctx=16, dim=16, depth=depth, heads=2).eval()


def trace_gpt(model, runs: int = 1, with_model: bool = True):
    idx = torch.randint(0, 50, (2, 16))
    with torch.no_grad(), shapetrace.trace(model if with_model else None, symbolic=False) as t:
        for _ in range(runs):
            model(idx)
    return t


class DoubleConv(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())

    def forward(self, x):
        return self.net(x)                                      # (B, C', H, W)


class Down(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = DoubleConv(cin, cout)

    def forward(self, x):
        return self.conv(F.max_pool2d(x, 2))                    # (B, C', H//2, W//2)


class Up(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
        self.conv = DoubleConv(cin, cout)

    def forward(self, x, skip):
        x = self.up(x)                                          # (B, C/2, 2H, 2W)
        return self.conv(torch.cat([skip, x], dim=1))           # (B, C', 2H, 2W)


class UNet(nn.Module):
    """A small U-Net: three levels down, three up, a skip connection at each."""

    def __init__(self, channels: int = 3, classes: int = 2, width: int = 8) -> None:
        super().__init__()
        self.inc = DoubleConv(channels, width)
        self.down1, self.down2, self.down3 = Down(width, 2 * width), Down(2 * width, 4 * width), Down(4 * width, 8 * width)
        self.up1, self.up2, self.up3 = Up(8 * width, 4 * width), Up(4 * width, 2 * width), Up(2 * width, width)
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x):
        x1 = self.inc(x)                                        # (B, 8, H, W)
        x2 = self.down1(x1)                                     # (B, 16, H//2, W//2)
        x3 = self.down2(x2)                                     # (B, 32, H//4, W//4)
        x4 = self.down3(x3)                                     # (B, 64, H//8, W//8)
        x = self.up1(x4, x3)                                    # (B, 32, H//4, W//4)
        x = self.up2(x, x2)                                     # (B, 16, H//2, W//2)
        x = self.up3(x, x1)                                     # (B, 8, H, W)
        return self.head(x)                                     # (B, 2, H, W)


def cells(view: GridView) -> list[list[str]]:
    """Every row of a view as its cells' plain text."""
    return [[plain(c) for c in row.cells] for row in view.rows]


def render(renderable, width: int = 200) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


class _Rows(HTMLParser):
    """The text of every ``<td>``, row by row, and of the ``<th>``s."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.headers: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell)
            (self.rows[-1] if tag == "td" else self.headers).append(text)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def html_rows(document: str) -> tuple[list[str], list[list[str]]]:
    parser = _Rows()
    parser.feed(document)
    return parser.headers, [row for row in parser.rows if row]
