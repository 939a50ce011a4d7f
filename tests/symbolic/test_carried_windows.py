"""Windowed attention's ops (Swin's pad to whole windows, cyclic shift, window partition and
reverse, crop, patch merging; a patchify and unpatchify) are answered in the replay
(shapetrace/symbolic/carried.py: ``_view``, ``_rolled``, ``_padded``, ``_arange``, ``_pointwise``,
``_indexed``, ``_cat``): pads, shifts, slices, concatenations, masks and positions as torch's
fake ops make them; views with the sizes the code gave, after torch's own check of the element
count, where torch's decomposition would write them as divisions (``H//(H//2)`` for a 2)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_carried_spatial import _assumes_no_more_than_torch, _both, _fresh_run, _make
from torch import nn

import shapetrace
from shapetrace._private import torch_symbolic as ts
from shapetrace.symbolic.carried import carried


def _to_windows(m):
    """``(B, H, W, 8)`` padded at the end of H and W to whole windows of 7, as Swin's ``maybe_pad``."""
    x = m(("B", "H", "W", 8))
    height, width = x.shape[1], x.shape[2]
    return F.pad, (x, (0, 0, 0, (7 - width % 7) % 7, 0, (7 - height % 7) % 7)), {}


def _mask_rows(m):
    """Swin's mask: which rows of the padded image lie in the last window (``h_idx >= height - 7``)."""
    height = F.pad(m(("B", "H", "W", 8)), (0, 0, 0, 0, 0, 4)).shape[1]
    return torch.ge, (torch.arange(height), height - 7), {}


def _crop(m):
    """Swin's crop of the padded windows back to the image: ``x[:, :height, :width, :]``."""
    x = m(("B", "H", "W", 8))
    padded = F.pad(x, (0, 0, 0, 5, 0, 5))
    return torch.Tensor.__getitem__, (padded, (slice(None), slice(None, x.shape[1]), slice(None, x.shape[2]))), {}


def _merge_patches(m):
    """Swin's patch merging: the four interleaved quarters of an image padded to even sizes,
    concatenated along the channels (their sizes are written differently, equal here)."""
    x = m(("B", "H", "W", 8))
    with ts.python_dispatcher():  # torch's pad by sizes
        x = F.pad(x, (0, 0, 0, x.shape[2] % 2, 0, x.shape[1] % 2))
    quarters = [x[:, i::2, j::2, :] for i, j in ((0, 0), (1, 0), (0, 1), (1, 1))]
    return torch.cat, (quarters, -1), {}


CASES = {
    "pads that are sizes": _to_windows,
    "a cyclic shift": lambda m: (torch.roll, (m(("B", "H", "W", 8)),), {"shifts": (-3, -3), "dims": (1, 2)}),
    "a shift back, as a method": lambda m: (torch.Tensor.roll, (m(("B", "H", "W", 8)), (3, 3), (1, 2)), {}),
    "a roll of the flattened tensor": lambda m: (torch.roll, (m(("B", "H")), 5), {}),
    "positions up to a size": lambda m: (torch.arange, (F.pad(m(("B", "H")), (0, 3)).shape[1],), {}),
    "a comparison with a size": _mask_rows,
    "a crop to sizes": _crop,
    "every other row and column (Swin's patch merging)": lambda m: (
        torch.Tensor.__getitem__, (m(("B", "H", "W", 8)), (slice(None), slice(1, None, 2), slice(0, None, 2))), {}),
    "the last rows, a slice past the end": lambda m: (torch.Tensor.__getitem__, (m(("B", "H", 8)), (Ellipsis, slice(-3, None), slice(None, 40))), {}),
    "rows up to a number": lambda m: (torch.Tensor.__getitem__, (m(("B", "H", 8)), (slice(None), slice(4, 16))), {}),
    "patch merging's concatenation": _merge_patches,
    "a size subtracted from positions": lambda m: (torch.sub, (m(("H",), dtype=torch.int64), m(("W",)).shape[0]),
                                                   {}),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_pads_shifts_and_masks_are_torchs_output_and_guards(case):
    torchs, ours = _both(CASES[case])
    assert ours is not None, case
    assert ours[0] == torchs[0], case  # sizes, strides, offset, dtype, device, requires_grad, leaf
    _assumes_no_more_than_torch(ours[1], torchs[1], case)


def test_what_torch_decides_otherwise_runs_in_torch():
    run = _fresh_run()
    with run.running(grad=False):
        x = _make(run, ("B", "H", "W", 8))
        assert carried(torch.roll, (x, 1, 1, 2), {}) is None  # torch parses more arguments
        assert carried(torch.roll, (x, (1, 2), (1,)), {}) is None  # torch raises
        assert carried(torch.roll, (x, x.shape[1], 1), {}) is None  # a shift that is a size
        assert carried(torch.roll, (x.transpose(1, 2), 1, 1), {}) is None  # not contiguous
        assert carried(F.pad, (x, (0, 0, 0, x.shape[2] - 20)), {}) is not None
        assert carried(F.pad, (x, (0, 0, 0, 20 - x.shape[2])), {}) is None  # negative here: torch narrows
        assert carried(torch.arange, (x.shape[1], x.shape[1] + 4), {}) is None  # a symbolic start


def test_a_split_of_a_dim_keeps_the_sizes_the_code_gave():
    """``x.view(B, H//7, 7, W//7, 7, C)`` of a padded image: the sizes as given, contiguous
    strides, after torch's check that the element count is kept (a guard); torch's own view writes
    each 7 as ``Hp//(Hp//7)``, equal wherever the view succeeds."""
    for answer in ("torch", "carried"):
        run = _fresh_run()
        with run.running(grad=False):
            func, (x, pads), _ = _to_windows(lambda shape, run=run: _make(run, shape))
            with ts.python_dispatcher():  # as the replay runs torch's pad
                padded = F.pad(x, pads)
            batch, height, width, channels = padded.shape
            args = (padded, batch, height // 7, 7, width // 7, 7, channels)
            if answer == "torch":
                torchs = padded.view(*args[1:])
                torchs_guards = ts.guard_exprs(run.env)
            else:
                made = carried(torch.Tensor.view, args, {})
                assert made is not None
                before = len(ts.guard_exprs(run.env))
                ours = made()
                guards = ts.guard_exprs(run.env)
    assert (
        [ts.size_hint(s) for s in ours.shape] == [ts.size_hint(s) for s in torchs.shape] == [2, 5, 7, 4, 7, 8]
    )
    assert [ts.size_exprs(ours.shape)[i] for i in (2, 4, 5)] == [7, 7, 8]
    assert str(ts.size_exprs(torchs.shape)[2]).count("//") == 2  # torch's 7: Hp//(Hp//7)
    assert ts.size_exprs(ours.stride()) == ts.size_exprs(ours.contiguous().stride())
    assert len(guards) == before + 1 and any("Eq(" in str(g) for g in torchs_guards)  # the count's check


def test_a_view_whose_count_differs_or_whose_minus_one_matches_no_dims_runs_in_torch():
    run = _fresh_run()
    with run.running(grad=False):
        x = _make(run, ("B", "H", "W", 8))
        batch, height, width, _ = x.shape
        assert (
            carried(torch.Tensor.view, (x, batch, height // 2, 2, width, 8), {}) is not None
        )  # H = 30 is even
        assert (
            carried(torch.Tensor.view, (x, batch, height, width // 2, 2, 8), {}) is None
        )  # W: 23 // 2 * 2 != 23
        assert carried(torch.Tensor.view, (x, -1, 3, 8), {}) is None  # B*H*W/3 is no run of dims
        windows = _make(run, ("B", "H", 7, 8))
        assert carried(torch.Tensor.view, (windows, -1, height * 7, 8), {}) is not None  # B: a run by values


class WindowAttention(nn.Module):
    """Swin's windowed attention on an image padded to whole windows (transformers' SwinLayer, cut
    down): pad, shift, partition into windows, a mask of the shifted regions, attention per window,
    reverse, shift back, crop."""

    def __init__(self, dim: int = 16, window: int = 4) -> None:
        super().__init__()
        self.window, self.qkv, self.proj = window, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        w = self.window
        x = F.pad(x, (0, 0, 0, (w - W % w) % w, 0, (w - H % w) % w))  # (B, Hp, Wp, C)
        Hp, Wp = x.shape[1], x.shape[2]
        x = torch.roll(x, shifts=(-(w // 2), -(w // 2)), dims=(1, 2))  # (B, Hp, Wp, C)
        windows = (
            x.view(B, Hp // w, w, Wp // w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, C)
        )  # (N, w*w, C)
        rows = (torch.arange(Hp) >= Hp - w).long()  # (Hp,)
        q, k, v = self.qkv(windows).chunk(3, dim=-1)  # (N, w*w, C) each
        out = F.scaled_dot_product_attention(q, k, v) + rows.sum()  # (N, w*w, C)
        out = (
            out.view(-1, Hp // w, Wp // w, w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, Hp, Wp, C)
        )  # (B, Hp, Wp, C)
        out = torch.roll(out, shifts=(w // 2, w // 2), dims=(1, 2))  # (B, Hp, Wp, C)
        return self.proj(out[:, :H, :W, :].contiguous())  # (B, H, W, C)


def test_windowed_attention_keeps_the_window_as_written():
    model = WindowAttention(dim=24)
    x = torch.rand(2, 18, 12, 24)  # H pads to 20, W is whole windows
    with torch.no_grad(), shapetrace.trace(model, dims="B H W C") as t:  # the qkv projection fixes C to 24
        model(x)
    assert t.symbolic.state == "ran", t.symbolic.describe()
    views = [op.outputs[0].shape_text() for op in t.ops if op.op == "view"]
    padded = "(H + (4 - H % 4) % 4)//4"  # the windows along H, exact: 18 is no multiple of 4
    assert views == [
        f"(B, {padded}, 4, W/4, 4, C)",
        f"(B, {padded}, W/4, 4, 4, C?)",
    ]  # torch's: Hp//(Hp//4) for 4
    assert [op.outputs[0].shape_text() for op in t.ops if op.op == "roll"][
        0
    ] == "(B, H + (4 - H % 4) % 4, W, C)"
    assert t.ops[-1].outputs[0].shape_text() == "(B, H, W, C?)"
    assert not [op for op in t.ops if "//(" in op.outputs[0].shape_text()]


class Patchify(nn.Module):
    """A DiT's / MAE's patchify and unpatchify, written as views of ``H // p, p``."""

    def __init__(self, p: int = 2) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        p = self.p
        tokens = x.view(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)  # (B, H/p, W/p, C, p, p)
        tokens = tokens.reshape(B, (H // p) * (W // p), C * p * p)  # (B, H*W/p**2, C*p*p)
        image = tokens.view(B, H // p, W // p, C, p, p).permute(0, 3, 1, 4, 2, 5)  # (B, C, H/p, p, W/p, p)
        return image.reshape(B, C, H, W)  # (B, C, H, W)


def test_a_patchify_round_trip_keeps_the_patch_size_as_written():
    model = Patchify()
    x = torch.rand(3, 5, 8, 12)
    with torch.no_grad(), shapetrace.trace(model, dims="B C H W") as t:
        model(x)
    assert t.symbolic.state == "ran", t.symbolic.describe()
    shapes = [op.outputs[0].shape_text() for op in t.ops]
    assert shapes[0] == "(B, C, H/2, 2, W/2, 2)"  # was (B, C, H/2, H//(H//2), ...) by torch's view
    assert "(B, H*W/4, 4*C)" in shapes
    assert shapes[-1] == "(B, C, H, W)"
    assert not [s for s in shapes if "//(" in s]
