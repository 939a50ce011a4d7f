"""Comments in the function's own names: ``--write`` then ``--check`` is a fixed point, a block
used at several levels gets one comment, a list longer than the code is never written."""

from __future__ import annotations

import pytest
from comments_support import line_of

from shapetrace.comments import Status, check_comments, write_comments

pytest.importorskip("shapetrace.symbolic.engine")

UNET = """\
import torch
import torch.nn as nn


class Down(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.conv = nn.Conv2d(cin, 2 * cin, kernel_size=3, stride=2, padding=1)

    def forward(self, x):
        B, C, H, W = x.shape
        y = self.conv(x)
        return y.relu()


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.down1 = Down(8)
        self.down2 = Down(16)
        self.down3 = Down(32)

    def forward(self, x):
        return self.down3(self.down2(self.down1(x)))


def run():
    B, C, H, W = 2, 8, 64, 64
    x = torch.rand(B, C, H, W)
    return Encoder()(x)
"""


def _comment(path, needle: str) -> str | None:
    line = path.read_text().splitlines()[line_of(path, needle) - 1]
    return line.split("  # ", 1)[1] if "  # " in line else None


def test_a_block_used_at_every_level_gets_one_comment_in_its_names(traced):
    t, path = traced(UNET)
    report = write_comments(t)
    assert not report.notes
    # three calls, each on a smaller input: in Down's own names they are one shape
    assert _comment(path, "y = self.conv(x)") == "(B, 2*C, H/2, W/2)"
    assert _comment(path, "return y.relu()") == "(B, 2*C, H/2, W/2)"
    assert _comment(path, "x = torch.rand(B, C, H, W)") == "(B, C, H, W)"
    assert _comment(path, "return Encoder()(x)") == "(B, 64, H/8, W/8)"


def test_write_then_check_is_a_fixed_point(traced):
    t, path = traced(UNET)
    write_comments(t)
    t, _ = traced(path.read_text())
    report = check_comments(t)
    assert {c.status for c in report.checks} == {Status.FRESH}, report.lines()
    assert not write_comments(t).written  # a second write changes nothing


LOOP = """\
import torch
import torch.nn.functional as F


def run():
    img = torch.rand(1, 3, 4, 4)
    for s in (2, 4):
        z = img.repeat(1, 1, s, s)
    for size in (8, 16):
        short = F.interpolate(img, size=size, mode="bilinear", align_corners=False)
"""


def test_runs_no_expression_covers_get_their_alternatives_only_when_no_longer_than_the_code(traced):
    t, path = traced(LOOP)
    report = write_comments(t)
    assert _comment(path, "z = img.repeat") is None  # 26 characters of code, 29 of shapes
    assert report.notes == [
        f"model.py:{line_of(path, 'z = img.repeat')}: no comment: ran 2 different shapes ((1, 3, 8, 8) | "
        "(1, 3, 16, 16)), which no one expression in the function's names covers, and the list would be "
        "longer than the code"
    ]
    assert _comment(path, "short = F.interpolate") == "(1, 3, 8, 8) | (1, 3, 16, 16)"
    assert any("no comment" in line for line in report.lines())


DIVISIBLE = """\
import torch
import torch.nn as nn


class Stride(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, kernel_size=3, stride=4, padding=1)

    def forward(self, x):
        return self.conv(x)  # COMMENT


def run():
    B, C, H, W = 2, 3, SIZE, SIZE
    x = torch.rand(B, C, H, W)
    return Stride()(x)
"""


@pytest.mark.parametrize("comment", ["(B, C, H/4, W/4)", "(B, C, H//4, W//4)", "(B, C, (H - 1)//4 + 1, (W - 1)//4 + 1)"])
def test_check_reads_divisions_under_the_traces_divisibility(traced, comment):
    t, _ = traced(DIVISIBLE.replace("COMMENT", comment).replace("SIZE", "64"))
    assert t.symbolic.divisible == {"H": 4, "W": 4}
    (check,) = [c for c in check_comments(t).checks if c.comment == comment]
    assert check.status is Status.FRESH, check.message()


@pytest.mark.parametrize(
    ("comment", "status"),
    [("(B, C, (H - 1)//4 + 1, (W - 1)//4 + 1)", Status.FRESH), ("(B, C, H//4, W//4)", Status.STALE)],
)
def test_without_divisibility_only_the_exact_form_is_fresh(traced, comment, status):
    t, _ = traced(DIVISIBLE.replace("COMMENT", comment).replace("SIZE", "66"))
    assert t.symbolic.divisible == {}  # 66 is not a multiple of 4: nothing printed assumes it
    (check,) = [c for c in check_comments(t).checks if c.comment == comment]
    assert check.status is status and check.ran == "(B, C?, (H - 1)//4 + 1, (W - 1)//4 + 1)"  # 17, not 16


EINOPS = """\
import torch
from einops import rearrange


def run():
    B, C, H, W = 2, 8, 4, 4
    x = torch.rand(B, C, H, W)
    tokens = rearrange(x, "b c h w -> b (h w) c")
    for _ in range(2):
        x = x.relu()
    return tokens
"""


def test_a_library_call_is_one_run_and_a_loop_still_is_several(traced):
    pytest.importorskip("einops")  # a test dependency (pip install einops)
    from shapetrace.comments.files import runs_by_line

    t, path = traced(EINOPS)
    runs = runs_by_line(t)
    tokens = runs[(str(path), line_of(path, "tokens = rearrange"))]
    assert len(tokens) == 1 and [m.shape for m in tokens[0].outputs] == [(2, 16, 8)]  # not permute's (2, 4, 4, 8)
    assert len(runs[(str(path), line_of(path, "x = x.relu()"))]) == 2
    write_comments(t)
    # replayed op by op outside a module, einops' reshape gets plain numbers: B by value only
    assert _comment(path, "tokens = rearrange") == "(B?, H*W, C)"


CALLS = """\
import torch


def loss_of(x, y):
    err = (x - y) ** 2
    return err.mean()


def twice(x):
    return x * 2


def show(x):
    print(x.sum())


def run():
    x, y = torch.rand(2, 3), torch.rand(2, 3)
    loss = loss_of(x, y)
    a = twice(x)
    b = twice(y)
    show(x)  # nothing returned
    return loss, a, b
"""


def test_a_line_calling_a_function_only_it_calls_is_what_the_function_returned(traced):
    from shapetrace.comments.files import runs_by_line

    t, path = traced(CALLS)
    runs = runs_by_line(t)
    loss = runs[(str(path), line_of(path, "loss = loss_of(x, y)"))]
    assert [[m.shape for m in run.outputs] for run in loss] == [[()]]  # the mean, not the square
    assert (str(path), line_of(path, "a = twice(x)")) not in runs  # twice has two callers: not followed
    assert (str(path), line_of(path, "show(x)  #")) not in runs  # a bare call uses no value
